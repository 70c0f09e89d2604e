"""The one place per assignment: notebook, data sets, profiles and expected metric ranges.

The nox sessions, the tests and the report all read :data:`ASSIGNMENTS`; adding an assignment means
adding its notebook and one :class:`Assignment` entry here.

Profiles: ``smoke`` is a small CPU run (seconds to a minute); ``full`` is the real run for a GPU.
``expected`` gives, per profile, the closed range each headline metric must fall in; the notebook
tests assert the ``smoke`` ranges on every CI run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILES = ("smoke", "full")


@dataclass(frozen=True)
class Assignment:
    """One assignment: its id ``NN``, notebook slug, data sets and per-profile settings."""

    id: str
    slug: str
    title: str
    datasets: tuple[str, ...]
    profiles: dict[str, dict[str, Any]]
    expected: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    headline: tuple[str, ...] = ()
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Experiment grids: name -> {"configs": [{"exp_id": ..., **params}], "compare": "mod.func"}."""

    @property
    def name(self) -> str:
        """``NN_slug``, the notebook's stem and its build folder name."""
        return f"{self.id}_{self.slug}"

    @property
    def notebook(self) -> Path:
        """Notebook path relative to the repository root."""
        return Path("notebooks") / f"{self.name}.ipynb"

    def settings(self, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The profile's parameters with non-``None`` ``overrides`` applied on top."""
        check_profile(profile)
        merged = dict(self.profiles[profile])
        for key, value in (overrides or {}).items():
            if value is not None:
                merged[key] = value
        return merged


def check_profile(profile: str) -> str:
    """Return ``profile`` if valid, else raise listing the valid profiles."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not valid; choose one of {list(PROFILES)}")
    return profile


ASSIGNMENTS: dict[str, Assignment] = {
    a.id: a
    for a in [
        # -- 01 language identification ------------------------------------------------------
        Assignment(
            id="01",
            slug="language_identification",
            title="Language identification with character n-grams and skorch",
            datasets=("langid-sentences",),
            profiles={"smoke": {}, "full": {}},
            expected={},
            headline=(),
        ),
        # -- 02 CNNs -------------------------------------------------------------------------
        Assignment(
            id="02",
            slug="cnn",
            title="Convolutions from scratch in numpy, and a CNN on CIFAR-10",
            datasets=("cifar10-jpg|cifar-10-batches-py",),
            profiles={
                "smoke": {
                    "train_size": 4000, "test_size": 1000, "epochs": 2, "batch_size": 128,
                    "lr": 0.05, "widths": (16, 32, 64), "augment": False, "amp": False,
                },
                "full": {
                    "train_size": None, "test_size": None, "epochs": 30, "batch_size": 512,
                    "lr": 0.4, "widths": (64, 128, 256), "augment": True, "amp": True,
                },
            },
            expected={
                "smoke": {"test_accuracy": (0.25, 0.75)},
                "full": {"test_accuracy": (0.93, 1.0)},
            },
            headline=("test_accuracy",),
        ),
        # -- 03 language models --------------------------------------------------------------
        Assignment(
            id="03",
            slug="language_models",
            title="Language models on WikiText-2: LSTM and mini GPT-1",
            datasets=("wikitext-2",),
            profiles={"smoke": {}, "full": {}},
            expected={},
            headline=(),
        ),
        # -- 04 question answering -----------------------------------------------------------
        Assignment(
            id="04",
            slug="question_answering",
            title="Extractive question answering on SQuAD v1.1 with a coattention network",
            datasets=("squad-v1.1",),
            profiles={"smoke": {}, "full": {}},
            expected={},
            headline=(),
        ),
        # -- 05 concern modularization -------------------------------------------------------
        Assignment(
            id="05",
            slug="concern_modularization",
            title="Concern modularization of a BERT topic classifier",
            datasets=("yahoo-answers-topics",),
            profiles={"smoke": {}, "full": {}},
            expected={},
            headline=(),
        ),
    ]
}


def get_assignment(key: str) -> Assignment:
    """Look up an assignment by id (``"02"``) or name (``"02_cnn"``); unknown keys list the valid."""
    for a in ASSIGNMENTS.values():
        if key in (a.id, a.name, a.slug):
            return a
    valid = [a.name for a in ASSIGNMENTS.values()]
    raise KeyError(f"unknown assignment {key!r}; choose one of {valid}")
