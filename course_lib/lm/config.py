"""Assignment 03's settings (data, architecture, optimisation, run options), its two profiles, its
twelve-configuration sweep and its entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_lib.core.assignment import Assignment, Sweep
from course_lib.core.settings import Settings, knob
from course_lib.lm.compare import compare_runs
from course_lib.lm.data import SPLITS
from course_lib.lm.embeddings import check_embeddings
from course_lib.lm.models import MODELS
from course_lib.lm.train import DEFAULT_DROPOUT, DEFAULT_LR, OPTIMIZERS


@dataclass(frozen=True)
class LMSettings(Settings):
    """Every knob of assignment 03; ``lr=None`` takes :data:`~course_lib.lm.train.DEFAULT_LR` of the
    optimizer and ``dropout=None`` :data:`~course_lib.lm.train.DEFAULT_DROPOUT` of the model."""

    exp_id: str | None = knob(doc="name of this configuration (a sweep sets it; None for a single run)")
    split: str = knob(choices=SPLITS, doc="WikiText-2 split: 'official' or 'offline' (see lm.data)")
    max_vocab: int | None = knob(min=2, doc="keep the most frequent train tokens, the rest <unk> (None: all)")
    train_tokens: int | None = knob(min=2, doc="train on the first tokens of the train part (None: all)")
    eval_tokens: int | None = knob(min=2, doc="evaluate on the first tokens of valid and test (None: all)")
    model: str = knob(choices=MODELS, doc="architecture: 'lstm' or 'gpt1'")
    optimizer: str = knob(choices=OPTIMIZERS, doc="adam, adamw, sgd or momentum (SGD + Nesterov 0.9)")
    num_layers: int = knob(min=1, doc="LSTM layers or GPT blocks")
    epochs: int = knob(min=1, doc="training epochs")
    batch_size: int = knob(min=1, doc="windows per mini-batch")
    seq_len: int = knob(min=1, doc="tokens per training window (the GPT's context length)")
    lr: float | None = knob(min=0.0, min_inclusive=False, doc="learning rate (None: the optimizer's default)")
    weight_decay: float = knob(min=0.0, doc="decoupled weight decay of adamw")
    grad_clip: float | None = knob(min=0.0, min_inclusive=False, doc="max gradient norm (None: no clipping)")
    hidden: int = knob(min=1, doc="LSTM hidden width")
    d_model: int = knob(min=1, doc="GPT width (a multiple of n_heads)")
    n_heads: int = knob(min=1, doc="GPT attention heads")
    dropout: float | None = knob(min=0.0, doc="dropout in [0, 1) (None: the model's default)")
    embeddings: str = knob(doc="initial word vectors: 'glove', 'random' or a glove.6B.<d>d.txt path")
    tie_weights: bool = knob(doc="the output layer reuses the embedding table")
    amp: bool = knob(doc="bf16 autocast on CUDA (ignored on the CPU)")
    checkpoint: bool = knob(doc="checkpoint every epoch and resume an interrupted run")
    grid: bool = knob(doc="after the single run, train the twelve configurations here (tiny) and compare")
    cpu_threads: int | None = knob(min=1, doc="torch CPU threads (None: torch's default)")

    def check(self) -> None:
        check_embeddings(self.embeddings)
        if self.dropout is not None and self.dropout >= 1.0:
            raise ValueError(f"dropout={self.dropout!r} is not valid; it must be < 1")
        if self.model == "gpt1" and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not valid for gpt1; it must be a multiple of "
                             f"n_heads={self.n_heads}")
        for name in ("train_tokens", "eval_tokens"):
            tokens = getattr(self, name)
            if tokens is not None and tokens <= self.seq_len:
                raise ValueError(f"{name}={tokens} is not valid; it must exceed seq_len={self.seq_len}")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def dropout_rate(self) -> float:
        """``dropout``, or the model's default."""
        return self.dropout if self.dropout is not None else DEFAULT_DROPOUT[self.model]

    def model_options(self) -> dict[str, Any]:
        """Constructor options of the chosen architecture."""
        common = dict(dropout=self.dropout_rate, tie_weights=self.tie_weights)
        if self.model == "lstm":
            return dict(hidden=self.hidden, **common)
        return dict(d_model=self.d_model, n_heads=self.n_heads, max_len=self.seq_len, **common)


# offline split, 2,000 words, one epoch on 16k tokens, one CPU thread; then the tiny twelve-run grid
SMOKE = LMSettings(
    exp_id=None, split="offline", max_vocab=2000, train_tokens=16384, eval_tokens=4096, model="lstm",
    optimizer="adamw", num_layers=1, epochs=1, batch_size=16, seq_len=32, lr=None, weight_decay=0.01,
    grad_clip=0.5, hidden=64, d_model=64, n_heads=2, dropout=0.1, embeddings="glove", tie_weights=False,
    amp=False, checkpoint=False, grid=True, cpu_threads=1,
)
# official split, full vocabulary, ten epochs on a GPU; the grid runs through `nox -s sweep -- lm`
FULL = LMSettings(
    exp_id=None, split="official", max_vocab=None, train_tokens=None, eval_tokens=None, model="lstm",
    optimizer="adamw", num_layers=1, epochs=10, batch_size=32, seq_len=64, lr=None, weight_decay=0.01,
    grad_clip=0.5, hidden=512, d_model=256, n_heads=4, dropout=None, embeddings="glove", tie_weights=False,
    amp=True, checkpoint=True, grid=False, cpu_threads=None,
)

# both models with adam, adamw, sgd and momentum at one layer, and with adamw at two and four layers;
# grid=False: a sweep run trains only itself
SWEEP_CONFIGS = tuple(
    {"exp_id": f"{m}-{o}-L{n}", "model": m, "optimizer": o, "num_layers": n, "grid": False}
    for m, o, n in [(m, o, 1) for m in ("lstm", "gpt1") for o in ("adam", "adamw", "sgd", "momentum")]
    + [(m, "adamw", n) for m in ("lstm", "gpt1") for n in (2, 4)]
)

ASSIGNMENT = Assignment(
    id="03",
    slug="language_models",
    title="Language models on WikiText-2: LSTM and mini GPT-1",
    datasets=("wikitext-2",),
    profiles={"smoke": SMOKE, "full": FULL},
    expected={
        "smoke": {"valid_ppl": (60.0, 1000.0), "test_ppl": (60.0, 1000.0),
                  "grid_best_valid_ppl": (50.0, 600.0)},
        "full": {"valid_ppl": (60.0, 140.0), "test_ppl": (50.0, 140.0)},
    },
    headline=("valid_ppl", "test_ppl"),
    exercise_tests=("tests/lm/test_models.py", "tests/lm/test_sampling.py", "tests/lm/test_train.py"),
    sweeps={"lm": Sweep(name="lm", configs=SWEEP_CONFIGS, compare=compare_runs)},
)
