"""The notebook's in-process grid: a sweep's configurations trained in this process on one corpus, through
the core sweep engine (one folder per configuration, skipped when finished with the same run key:
settings, seed, corpus, embeddings, device and code)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from course_lib.core.assignment import Sweep
from course_lib.core.io import atomic_write_json
from course_lib.core.sweep import SweepOutcome, run_sweep
from course_lib.lm.config import LMSettings
from course_lib.lm.data import LMCorpus
from course_lib.lm.embeddings import VocabEmbeddings
from course_lib.lm.train import checkpoint_key, train_language_model

SHARED = ("split", "max_vocab", "embeddings")
"""Knobs that fix the corpus and embeddings, which every configuration of the grid shares."""


def run_grid_in_process(sweep: Sweep, base: LMSettings, corpus: LMCorpus, embeddings: VocabEmbeddings, *,
                        device: torch.device | str, runs_dir: str | os.PathLike, seed: int, profile: str,
                        log: Callable[[str], None] | None = None) -> SweepOutcome:
    """Train each configuration of ``sweep`` (``base`` overridden by it; with its ``exp_id`` it reads
    ``base.grid_train_tokens`` and ``base.grid_eval_tokens`` when set, as any run with an ``exp_id`` does)
    into ``runs_dir/<exp_id>/`` (args.json, history.json, metrics.json) and compare the finished runs into
    ``runs_dir/<sweep.name>_comparison`` (``outcome.comparison``).

    A folder that finished with the same profile and :func:`~course_lib.lm.train.checkpoint_key` (settings,
    seed, corpus digest, embeddings, device, code) is not trained again; one whose run files do not
    load (truncated, malformed, missing fields) is trained again with a notice. ``log`` receives the
    engine's line per configuration (``None``: not shown). A configuration that changes one of
    :data:`SHARED` is refused before anything runs.
    """

    def settings_of(config: Mapping[str, Any]) -> LMSettings:
        settings = base.override(**config)
        changed = [k for k in SHARED if getattr(settings, k) != getattr(base, k)]
        if changed:
            raise ValueError(f"{config['exp_id']}: {changed} cannot change within an in-process grid "
                             "(every configuration shares one corpus and its embeddings)")
        return settings

    def key_of(config: Mapping[str, Any]) -> dict[str, Any]:
        settings = settings_of(config)
        return {"profile": profile, **checkpoint_key(settings, corpus, embeddings, seed=seed, device=device)}

    def train_one(config: Mapping[str, Any], folder: Path) -> None:
        result = train_language_model(settings_of(config), corpus, embeddings, device=device, run_dir=folder,
                                      seed=seed, progress=False)
        atomic_write_json(folder / "metrics.json", result.metrics)

    for config in sweep.configs:  # every configuration is checked before the first one runs
        key_of(config)
    return run_sweep(sweep, runs_dir, train_one, key_of, log=log or (lambda message: None))
