"""Assignment 05's settings (data, fine-tuning, concern pruning) with their defaults (the ``full`` profile),
its three profiles and its entry.

Also the choices the knobs are checked against (:data:`DATASETS`, :data:`SCORES`, :data:`LR_SCHEDULES`,
:data:`METHODS`) and the checks the library shares with them (:func:`check_ratio`, :func:`compile_patterns`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, knob

DATASETS = ("yahoo-answers-topics", "ag-news")
SCORES = ("ci", "wanda", "random")
"""Weight scores: the course's concern identification (default), a Wanda-style difference and the
concern-blind random baseline."""
LR_SCHEDULES = ("constant", "linear")
"""Learning-rate schedules after the warm-up: constant, or a linear decay to 0 at the last step."""
METHODS = ("unstructured", "structured")
DEFAULT_INCLUDE = (r"intermediate\.dense$", r"output\.dense$")
DEFAULT_EXCLUDE = (r"attention",)


def check_ratio(sparsity_ratio: float) -> float:
    """``sparsity_ratio`` if it lies in [0, 1), else a ``ValueError``."""
    if not 0.0 <= sparsity_ratio < 1.0:
        raise ValueError(f"sparsity_ratio={sparsity_ratio} is not valid; choose a value in [0, 1)")
    return sparsity_ratio


def compile_patterns(patterns: Sequence[str], what: str) -> list[re.Pattern]:
    """``patterns`` compiled; a ``ValueError`` naming ``what`` for an invalid regular expression."""
    if isinstance(patterns, str):
        raise TypeError(f"{what} must be a sequence of regular expressions, got the string {patterns!r}")
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise ValueError(f"{what} pattern {p!r} is not a valid regular expression: {exc}") from None
    return compiled


@dataclass(frozen=True)
class ModularizationSettings(Settings):
    """Every knob of assignment 05: the topic data, the fine-tuned classifier and the concern modules."""

    dataset: str = knob(default="yahoo-answers-topics", choices=DATASETS, doc="topic classification data set")
    model_name: str = knob(default="minilm", doc='"minilm" (offline), a local folder or a hub name, e.g. '
                                                 '"prajjwal1/bert-tiny"')
    max_length: int = knob(default=128, min=1, doc="tokens per question (longer ones are cut)")
    train_per_class: int | None = knob(default=None, min=1,
                                       doc="fine-tuning questions per class (None: the whole split)")
    epochs: int = knob(default=4, min=1, doc="fine-tuning epochs")
    lr: float = knob(default=1e-4, min=0.0, min_inclusive=False, doc="AdamW learning rate")
    lr_schedule: str = knob(default="linear", choices=LR_SCHEDULES,
                            doc='after the warm-up: "constant" or "linear" (decay to 0)')
    warmup_ratio: float = knob(default=0.1, min=0.0, max=1.0, max_inclusive=False,
                               doc="share of the steps with a linear warm-up, in [0, 1)")
    batch_size: int = knob(default=32, min=1, doc="questions per fine-tuning batch")
    length_pool: int = knob(default=16, min=0, doc="sort each run of length_pool shuffled batches by "
                                                   "question length (less padding; 0: plain shuffle)")
    freeze_layers: int = knob(default=0, min=0,
                              doc="lower encoder layers frozen with the embeddings (0: train all)")
    concerns: tuple[str | int, ...] | None = knob(default=None, doc="classes to modularize, names or indices "
                                                                    "(None: all)")
    num_samples: int | None = knob(default=64, min=1,
                                   doc="positive and negative samples per concern (None: all)")
    sparsity_ratio: float = knob(default=0.5, min=0.0, max=1.0, max_inclusive=False,
                                 doc="share of each weight row (unstructured) or of the intermediate neurons "
                                     "(structured) pruned, in [0, 1)")
    score: str = knob(default="ci", choices=SCORES,
                      doc='weight score: "ci" (the course\'s concern identification), "wanda" '
                          '(|W| (a+ - lambda a-)) or "random" (concern-blind, the baseline)')
    negative_weight: float = knob(default=0.5, min=0.0, doc='lambda of the "wanda" score (unused by "ci")')
    methods: tuple[str, ...] = knob(default=METHODS, choices=METHODS,
                                    doc="pruning methods, each gives one module per concern")
    include: tuple[str, ...] = knob(default=DEFAULT_INCLUDE,
                                    doc="regular expressions of the linear layers to prune")
    exclude: tuple[str, ...] = knob(default=DEFAULT_EXCLUDE,
                                    doc="regular expressions of the linear layers to leave alone")

    def check(self) -> None:
        if not self.methods:
            raise ValueError(f"methods=() is not valid; give at least one of {list(METHODS)}")
        if self.concerns == ():
            raise ValueError("concerns=() is not valid; give at least one class or None for all")
        compile_patterns(self.include, "include")
        compile_patterns(self.exclude, "exclude")


# the whole split, complete fine-tuning (every layer, warm-up and linear decay) and all ten concerns,
# for a GPU: the defaults
FULL = ModularizationSettings()
# 30 questions per class, 2 epochs at a constant rate with the lower 4 layers frozen, 3 concerns (~1 min
# on a CPU); 16 samples per concern and ratio 0.5 as in the course
SMOKE = ModularizationSettings(
    max_length=32, train_per_class=30, epochs=2, lr=3e-4, lr_schedule="constant", warmup_ratio=0.0,
    batch_size=16, length_pool=0, freeze_layers=4, concerns=("sports", "health", "computers & internet"),
    num_samples=16,
)
# the whole sample (all 1,000 training questions) and all ten concerns on a 2-core CPU in under 15 minutes:
# questions up to 128 tokens in batches of similar length, 5 epochs with warm-up and linear decay, the
# lower 4 layers frozen (chosen on 200 training questions held out, never on test); 16 samples per
# concern and ratio 0.5 as in the course
LAPTOP = ModularizationSettings(epochs=5, lr=3e-4, batch_size=16, freeze_layers=4, num_samples=16)

# the course's overall figure at ratio 0.5, zeros over every linear layer's weights and biases: MiniLM 0.328
# (half of the feed-forward weights, which are 2/3 of the linear weights; the rest is attention, pooler and
# head), the course's bert-tiny 0.317
OVERALL_SPARSITY = (0.3, 0.36)
# what a module must keep on the whole split (laptop and full): its concern, within 0.15 of the original
WHOLE_SPLIT_RANGES = {
    "mean_concern_recall": (0.5, 1.0), "sparsity": (0.49, 0.51), "overall_sparsity": OVERALL_SPARSITY,
    "concern_recall_minus_original": (-0.15, 0.3), "concern_f1_minus_original": (-0.15, 0.3),
    "concern_recall_minus_non_concern_accuracy": (0.0, 1.0), "concern_f1_minus_random": (0.0, 1.0),
}

ASSIGNMENT = Assignment(
    id="05",
    slug="concern_modularization",
    title="Concern modularization of a BERT topic classifier",
    datasets=("yahoo-answers-topics",),
    profiles={"smoke": SMOKE, "laptop": LAPTOP, "full": FULL},
    expected={
        "smoke": {
            "original_accuracy": (0.4, 0.8), "mean_pruned_accuracy": (0.3, 0.75),
            "mean_concern_recall": (0.6, 1.0), "sparsity": (0.49, 0.51), "overall_sparsity": OVERALL_SPARSITY,
            "mean_linear_cka_concern": (0.7, 0.995), "mean_linear_cka_non_concern": (0.5, 0.995),
            # the baseline is the original model: half the feed-forward weights go, its concern stays
            "concern_recall_minus_original": (-0.1, 0.3), "concern_f1_minus_original": (-0.1, 0.3),
            "concern_recall_minus_non_concern_accuracy": (0.2, 1.0),
            # the concern-blind baseline: the same ratio with random scores
            "concern_f1_minus_random": (0.05, 1.0),
        },
        # laptop, measured: accuracy 0.640, concern F1 0.653 (original 0.634, random pruning 0.561)
        "laptop": {"original_accuracy": (0.62, 0.9), "mean_pruned_accuracy": (0.4, 0.9),
                   "mean_linear_cka_concern": (0.6, 0.999), "mean_linear_cka_non_concern": (0.5, 0.999),
                   **WHOLE_SPLIT_RANGES},
        "full": {"original_accuracy": (0.55, 0.9), "mean_pruned_accuracy": (0.3, 0.9),
                 "mean_linear_cka_concern": (0.5, 0.999), "mean_linear_cka_non_concern": (0.4, 0.999),
                 **WHOLE_SPLIT_RANGES},
    },
    headline=("original_accuracy", "mean_pruned_accuracy", "mean_concern_recall", "sparsity",
              "overall_sparsity", "mean_linear_cka_concern", "mean_linear_cka_non_concern"),
    exercise_tests=("tests/modularization/test_similarity.py", "tests/modularization/test_activations.py",
                    "tests/modularization/test_pruning.py", "tests/modularization/test_masks.py"),
    points={"linear_cka": 2, "kernel_cka": 2, "cca_similarity": 3, "feature_sums": 2, "activation_stats": 4,
            "ci_coefficient": 2, "wanda_scores": 1, "keep_mask": 3, "apply_masks": 3, "overall_sparsity": 2},
)
