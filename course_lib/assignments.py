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

from course_lib.validation import check_choice

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
    exercise_tests: tuple[str, ...] = ()
    """Test files that check the fenced exercises (the release test runs them on both versions)."""
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
    check_choice("profile", profile, PROFILES)
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
            profiles={
                # languages=None: the default 26 (course's six + 20); source "auto" prefers WiLI-2018.
                "smoke": {
                    "source": "langid-sentences", "languages": None, "max_per_language": 120,
                    "epochs": 6, "batch_size": 128, "cv_folds": 2, "grid_epochs": 6, "grid_max_train": None,
                    "n_jobs": 1,
                    "grid": {"analyzer": ["char", "char_wb"], "ngram_range": [[2, 2], [1, 3]],
                             "max_features": [300], "nonlinearity": ["relu"], "width": [64],
                             "optimizer": {"adam": [0.003]}},
                    "strong_features": 20000, "strong_epochs": 4,
                },
                "full": {
                    "source": "langid-sentences", "languages": None, "max_per_language": None,
                    "epochs": 10, "batch_size": 128, "cv_folds": 2, "grid_epochs": 6, "grid_max_train": 6000,
                    "n_jobs": 2,
                    "grid": {"analyzer": ["char", "char_wb"], "ngram_range": [[2, 2], [1, 3]],
                             "max_features": [100, 1000], "nonlinearity": ["relu", "tanh"],
                             "width": [64, 256], "optimizer": {"sgd": [0.1], "adam": [0.003]}},
                    "strong_features": 30000, "strong_epochs": 5,
                },
            },
            expected={
                "smoke": {"n_languages": (26, 26), "test_accuracy_baseline": (0.07, 0.6),
                          "test_accuracy_grid": (0.45, 0.95), "test_accuracy_best": (0.95, 1.0)},
                "full": {"n_languages": (26, 26), "test_accuracy_baseline": (0.3, 0.8),
                         "test_accuracy_grid": (0.85, 1.0), "test_accuracy_best": (0.97, 1.0)},
            },
            headline=("n_languages", "test_accuracy_baseline", "test_accuracy_grid", "test_accuracy_best"),
            exercise_tests=("tests/test_langid.py",),
        ),
        # -- 02 CNNs -------------------------------------------------------------------------
        Assignment(
            id="02",
            slug="cnn",
            title="Convolutions from scratch in numpy, and a CNN on CIFAR-10",
            datasets=("cifar10-jpg|cifar-10-batches-py",),
            profiles={
                # the course's plain CNN on 4,000 + 1,000 images, one CPU thread (~15 s of training)
                "smoke": {
                    "train_size": 4000, "test_size": 1000, "epochs": 2, "batch_size": 64,
                    "lr": 0.1, "widths": (16, 32, 64), "convs_per_block": 1, "stem": None,
                    "residual": False, "dropout": 0.25, "logit_scale": 1.0, "weight_decay": 5e-4,
                    "label_smoothing": 0.0, "augment": False, "amp": False, "cpu_threads": 1,
                    "benchmark_batch": 2,
                },
                # ResNet-9-like (stem 64, residual blocks 128/256/512) for a GPU; not measured yet
                "full": {
                    "train_size": None, "test_size": None, "epochs": 30, "batch_size": 512,
                    "lr": 0.4, "widths": (128, 256, 512), "convs_per_block": 1, "stem": 64,
                    "residual": True, "dropout": 0.0, "logit_scale": 0.125, "weight_decay": 5e-4,
                    "label_smoothing": 0.2, "augment": True, "amp": True, "cpu_threads": None,
                    "benchmark_batch": 16,
                },
            },
            expected={
                "smoke": {"test_accuracy": (0.25, 0.6), "conv_max_abs_error": (0.0, 1e-9)},
                "full": {"test_accuracy": (0.93, 1.0), "conv_max_abs_error": (0.0, 1e-9)},
            },
            headline=("test_accuracy", "conv_max_abs_error"),
            exercise_tests=("tests/test_numpy_cnn.py",),
        ),
        # -- 03 language models --------------------------------------------------------------
        Assignment(
            id="03",
            slug="language_models",
            title="Language models on WikiText-2: LSTM and mini GPT-1",
            datasets=("wikitext-2",),
            profiles={
                "smoke": {
                    "exp_id": None, "split": "offline", "max_vocab": 2000, "train_tokens": 16384,
                    "eval_tokens": 4096,
                    "model": "lstm", "optimizer": "adamw", "num_layers": 1, "epochs": 1,
                    "batch_size": 16, "seq_len": 32, "lr": None, "hidden": 64, "d_model": 64,
                    "n_heads": 2, "dropout": 0.1, "embeddings": "glove", "tie_weights": False,
                    "amp": False, "checkpoint": False, "grid": True, "cpu_threads": 1,
                },
                "full": {
                    "exp_id": None, "split": "official", "max_vocab": None, "train_tokens": None,
                    "eval_tokens": None,
                    "model": "lstm", "optimizer": "adamw", "num_layers": 1, "epochs": 10,
                    "batch_size": 32, "seq_len": 64, "lr": None, "hidden": 512, "d_model": 256,
                    "n_heads": 4, "dropout": None, "embeddings": "glove", "tie_weights": False,
                    "amp": True, "checkpoint": True, "grid": False, "cpu_threads": None,
                },
            },
            expected={
                "smoke": {"valid_ppl": (60.0, 1000.0), "test_ppl": (60.0, 1000.0),
                          "grid_best_valid_ppl": (50.0, 600.0)},
                "full": {"valid_ppl": (60.0, 140.0), "test_ppl": (50.0, 140.0)},
            },
            headline=("valid_ppl", "test_ppl"),
            exercise_tests=("tests/test_lm_models.py", "tests/test_lm_training.py"),
            sweeps={"lm": {
                "configs": [
                    {"exp_id": f"{m}-{o}-L{n}", "model": m, "optimizer": o, "num_layers": n, "grid": False}
                    for m, o, n in [(m, o, 1) for m in ("lstm", "gpt1") for o in ("adam", "adamw", "sgd",
                                                                                   "momentum")]
                    + [(m, "adamw", n) for m in ("lstm", "gpt1") for n in (2, 4)]
                ],
                "compare": "course_lib.lm.compare.compare_runs",
            }},
        ),
        # -- 04 question answering -----------------------------------------------------------
        Assignment(
            id="04",
            slug="question_answering",
            title="Extractive question answering on SQuAD v1.1 with a coattention network",
            datasets=("squad-v1.1",),
            profiles={
                "smoke": {
                    "train_articles": 38, "test_articles": 10, "hidden": 32, "epochs": 1,
                    "bilstm_epochs": 1, "batch_size": 32, "lr": 0.005, "train_window": 48,
                    "max_iters": 4, "dropout": 0.0, "max_answer_len": 15, "cpu_threads": 1,
                    "amp": False,
                },
                "full": {
                    "train_articles": 38, "test_articles": 10, "hidden": 200, "epochs": 20,
                    "bilstm_epochs": 20, "batch_size": 64, "lr": 0.001, "train_window": None,
                    "max_iters": 4, "dropout": 0.3, "max_answer_len": 15, "cpu_threads": None,
                    "amp": False,
                },
            },
            expected={
                # smoke: 1 epoch on 38 dev articles; the DCN must beat the sliding window (13.2 F1)
                "smoke": {"f1": (14.0, 60.0), "exact_match": (7.0, 50.0),
                          "f1_minus_baseline_f1": (2.0, 50.0), "baseline_f1": (8.0, 16.0),
                          "bilstm_f1": (10.0, 60.0)},
                # full on the offline split (few articles); with the official train set expect ~65-75 F1
                "full": {"f1": (30.0, 85.0), "exact_match": (20.0, 75.0),
                         "f1_minus_baseline_f1": (15.0, 75.0), "baseline_f1": (8.0, 16.0),
                         "bilstm_f1": (25.0, 85.0)},
            },
            headline=("exact_match", "f1", "baseline_f1", "f1_minus_baseline_f1", "bilstm_f1"),
            exercise_tests=("tests/test_qa.py",),
        ),
        # -- 05 concern modularization -------------------------------------------------------
        Assignment(
            id="05",
            slug="concern_modularization",
            title="Concern modularization of a BERT topic classifier",
            datasets=("yahoo-answers-topics",),
            profiles={
                "smoke": {
                    "dataset": "yahoo-answers-topics", "model_name": "minilm", "max_length": 32,
                    "train_per_class": 30, "epochs": 2, "lr": 3e-4, "batch_size": 16, "freeze_layers": 4,
                    "concerns": ("sports", "health", "computers & internet"), "num_samples": 16,
                    "sparsity_ratio": 0.3, "negative_weight": 0.5,
                    "methods": ("unstructured", "structured"),
                    "include": (r"intermediate\.dense$", r"output\.dense$"), "exclude": ("attention",),
                },
                "full": {
                    "dataset": "yahoo-answers-topics", "model_name": "minilm", "max_length": 128,
                    "train_per_class": None, "epochs": 4, "lr": 1e-4, "batch_size": 32, "freeze_layers": 0,
                    "concerns": None, "num_samples": 64,
                    "sparsity_ratio": 0.3, "negative_weight": 0.5,
                    "methods": ("unstructured", "structured"),
                    "include": (r"intermediate\.dense$", r"output\.dense$"), "exclude": ("attention",),
                },
            },
            expected={
                "smoke": {
                    "original_accuracy": (0.4, 0.8), "mean_pruned_accuracy": (0.3, 0.75),
                    "mean_concern_recall": (0.6, 1.0), "sparsity": (0.29, 0.31),
                    "mean_linear_cka_concern": (0.7, 0.995), "mean_linear_cka_non_concern": (0.5, 0.995),
                },
                "full": {
                    "original_accuracy": (0.55, 0.9), "mean_pruned_accuracy": (0.3, 0.9),
                    "mean_concern_recall": (0.5, 1.0), "sparsity": (0.29, 0.31),
                    "mean_linear_cka_concern": (0.5, 0.999), "mean_linear_cka_non_concern": (0.4, 0.999),
                },
            },
            headline=("original_accuracy", "mean_pruned_accuracy", "mean_concern_recall", "sparsity",
                      "mean_linear_cka_concern", "mean_linear_cka_non_concern"),
            exercise_tests=("tests/test_similarity.py", "tests/test_modularization.py"),
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
