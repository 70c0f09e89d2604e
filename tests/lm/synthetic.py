"""A predictable synthetic corpus and tiny settings for the assignment-03 tests."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.core.assignment import Sweep
from course_lib.core.sweep import SweepOutcome
from course_lib.lm.compare import compare_runs, load_run
from course_lib.lm.config import SMOKE, LMSettings
from course_lib.lm.data import LMCorpus, Vocabulary
from course_lib.lm.embeddings import VocabEmbeddings
from course_lib.lm.grid import run_grid_in_process

V = 20
MODELS = ["lstm", pytest.param("gpt1", marks=pytest.mark.exercise("MiniGPT1.forward"))]
"""The two models as parametrize cases, the GPT marked with the exercise that completes it (the LSTM is
given whole)."""
TRAINED_MODELS = [pytest.param("lstm", marks=pytest.mark.exercise("CarriedState.__call__")),
                  pytest.param("gpt1", marks=pytest.mark.exercise("evaluate_loss"))]
"""The two models as parametrize cases of a test that trains them (``train_language_model``), each marked
with the last exercise the training needs (the LSTM's metrics include its stateful evaluation)."""
RANDOM = VocabEmbeddings("random", None, None)
TINY = dict(epochs=2, batch_size=8, seq_len=16, hidden=32, d_model=32, n_heads=2, dropout=0.0, lr=1e-2,
            train_tokens=None, eval_tokens=None, grid=False)


def tiny(**values) -> LMSettings:
    """The smoke profile shrunk to seconds on :func:`cyclic_corpus`, with ``values`` replaced."""
    return dataclasses.replace(SMOKE, **{**TINY, **values})


def cyclic_corpus() -> LMCorpus:
    """A stream cycling through 7 of 20 tokens: the next token is fully determined by the last one."""
    vocab = Vocabulary(tuple(f"w{i}" for i in range(V - 1)) + ("<unk>",))
    stream = torch.tensor([3, 1, 4, 15, 9, 2, 6] * 300)
    return LMCorpus("offline", vocab, stream[:1400], stream[1400:1750], stream[1750:])


GRID_CONFIGS = (dict(exp_id="lstm-sgd-L1", model="lstm", optimizer="sgd", num_layers=1),
                dict(exp_id="gpt1-adamw-L1", model="gpt1", optimizer="adamw", num_layers=1))


def tiny_grid(corpus: LMCorpus, runs_dir, configs=GRID_CONFIGS) -> tuple[SweepOutcome, list[str]]:
    """The in-process grid of ``configs`` (one epoch each) on ``corpus``, and the engine's lines."""
    lines: list[str] = []
    sweep = Sweep("lm", configs, compare_runs, load_run)
    outcome = run_grid_in_process(sweep, tiny(epochs=1, lr=None), corpus, RANDOM,
                                  device="cpu", runs_dir=runs_dir, seed=0, profile="smoke", log=lines.append)
    return outcome, lines
