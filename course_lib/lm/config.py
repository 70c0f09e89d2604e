"""Assignment 03's settings (data, architecture, optimisation, run options) with their defaults, its three
profiles, its sweeps (the course's twelve configurations, and the workbook's tuned variant) and its entry.

Declarations and the checks between settings only: the code that uses them (``lm.models``, ``lm.train``)
imports this module, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_lib.core.assignment import Assignment, Sweep
from course_lib.core.settings import Settings, knob
from course_lib.lm.compare import compare_runs, load_run
from course_lib.lm.data import SPLITS
from course_lib.lm.embeddings import check_embeddings

MODELS = ("lstm", "gpt1")
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum")
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 1.0, "momentum": 0.1}
"""Each optimizer's learning rate when ``lr`` is None."""
DEFAULT_DROPOUT = {"lstm": 0.5, "gpt1": 0.2}
"""Each model's dropout when ``dropout`` is None."""


@dataclass(frozen=True)
class LMSettings(Settings):
    """Every knob of assignment 03 with its default (the defaults are the ``full`` profile: the official
    split, an AdamW LSTM for ten epochs on a GPU); ``lr=None`` takes :data:`DEFAULT_LR` of the optimizer
    and ``dropout=None`` :data:`DEFAULT_DROPOUT` of the model."""

    exp_id: str | None = knob(default=None, doc="name of this configuration (a sweep sets it; None: a single "
                                                 "run)")
    split: str = knob(default="official", choices=SPLITS,
                      doc="WikiText-2 split: 'official' or 'offline' (see lm.data)")
    max_vocab: int | None = knob(default=None, min=2,
                                 doc="keep the most frequent train tokens, the rest <unk> (None: all)")
    train_tokens: int | None = knob(default=None, min=2,
                                    doc="train on the first tokens of the train part (None: all)")
    eval_tokens: int | None = knob(default=None, min=2,
                                   doc="evaluate on the first tokens of valid and test (None: all)")
    model: str = knob(default="lstm", choices=MODELS, doc="architecture: 'lstm' or 'gpt1'")
    optimizer: str = knob(default="adamw", choices=OPTIMIZERS,
                          doc="adam, adamw, sgd or momentum (SGD + Nesterov 0.9)")
    num_layers: int = knob(default=1, min=1, doc="LSTM layers or GPT blocks")
    epochs: int = knob(default=10, min=1, doc="training epochs")
    batch_size: int = knob(default=32, min=1,
                           doc="windows per mini-batch (with stateful_training: contiguous lanes)")
    seq_len: int = knob(default=64, min=1, doc="tokens per training window (the GPT's context length)")
    lr: float | None = knob(default=None, min=0.0, min_inclusive=False,
                            doc="learning rate (None: the optimizer's default)")
    weight_decay: float = knob(default=0.01, min=0.0,
                               doc="weight decay: adamw decoupled, sgd and momentum L2, adam none")
    momentum: float = knob(default=0.9, min=0.0, max=1.0, max_inclusive=False,
                           doc="momentum of the 'momentum' optimizer, in [0, 1)")
    nesterov: bool = knob(default=False, doc="the 'momentum' optimizer uses Nesterov's momentum")
    lr_plateau_factor: float = knob(default=1.0, min=1.0,
                                    doc="divide lr by this after an epoch whose validation loss is not the "
                                        "lowest so far (1: constant lr)")
    lr_anneal_epochs: int = knob(default=0, min=0,
                                 doc="the last epochs run at lr divided once more by lr_plateau_factor, an "
                                     "annealing phase (0: none)")
    stateful_training: bool = knob(default=False,
                                   doc="LSTM: train on batch_size contiguous lanes in order, the hidden "
                                       "state carried (detached) across windows; False: shuffled windows")
    grad_clip: float | None = knob(default=0.5, min=0.0, min_inclusive=False,
                                   doc="max gradient norm (None: no clipping)")
    hidden: int = knob(default=512, min=1, doc="LSTM hidden width")
    d_model: int = knob(default=256, min=1, doc="GPT width (a multiple of n_heads)")
    n_heads: int = knob(default=4, min=1, doc="GPT attention heads")
    norm_first: bool = knob(default=False,
                            doc="GPT blocks pre-norm x + f(LN(x)) (False: GPT-1's post-norm LN(x + f(x)))")
    dropout: float | None = knob(default=None, min=0.0, max=1.0, max_inclusive=False,
                                 doc="dropout in [0, 1) (None: the model's default)")
    embeddings: str = knob(default="glove", doc="initial word vectors: 'glove', 'random' or a "
                                                "glove.6B.<d>d.txt path")
    emb_dim: int | None = knob(default=None, min=1,
                               doc="width of a random embedding table (None: 50 for the LSTM, d_model for "
                                   "the GPT); pretrained vectors bring their own")
    tie_weights: bool = knob(default=False, doc="the output layer reuses the embedding table")
    amp: bool = knob(default=True, doc="bf16 autocast on CUDA and on a CPU with native bf16 (float32 "
                                       "elsewhere)")
    checkpoint: bool = knob(default=True, doc="checkpoint every epoch and resume an interrupted run")
    grid: bool = knob(default=False,
                      doc="after the single run, train a sweep's configurations here (tiny) and compare")
    grid_sweep: str = knob(default="lm", choices=("lm", "lm_tuned"),
                           doc="the sweep the in-notebook grid trains")
    grid_train_tokens: int | None = knob(default=None, min=2,
                                         doc="train tokens of a grid configuration (a run with an exp_id, "
                                             "in the notebook's grid or alone) (None: train_tokens)")
    grid_eval_tokens: int | None = knob(default=None, min=2, doc="valid and test tokens of a grid "
                                                                 "configuration (None: eval_tokens)")
    gpt_beside: bool = knob(default=False, doc="also train a GPT of the LSTM's parameter count on the same "
                                               "tokens, and compare")
    reference_beside: bool = knob(default=False,
                                  doc="also train pytorch/examples' word_language_model recipe on the same "
                                      "tokens (lm.train_reference), and print the ratios to it")
    cpu_threads: int | None = knob(default=None, min=1, doc="torch CPU threads (None: torch's default)")

    def check(self) -> None:
        check_embeddings(self.embeddings)
        if self.model == "gpt1" and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not valid for gpt1; it must be a multiple of "
                             f"n_heads={self.n_heads}")
        if self.lr_anneal_epochs >= self.epochs:
            raise ValueError(f"lr_anneal_epochs={self.lr_anneal_epochs} is not valid; it must be below "
                             f"epochs={self.epochs}")
        if self.lr_anneal_epochs and self.lr_plateau_factor == 1.0:
            raise ValueError(f"lr_anneal_epochs={self.lr_anneal_epochs} needs lr_plateau_factor > 1 (the "
                             "factor it divides by); got 1.0")
        if self.stateful_training and self.model != "lstm":
            raise ValueError(f"stateful_training=True is not valid for model={self.model!r}: only the LSTM "
                             "has a state to carry")
        for name in ("train_tokens", "eval_tokens", "grid_train_tokens", "grid_eval_tokens"):
            tokens = getattr(self, name)
            if tokens is not None and tokens <= self.seq_len:
                raise ValueError(f"{name}={tokens} is not valid; it must exceed seq_len={self.seq_len}")
        self.check_tokens()

    def token_knobs(self, grid: bool | None = None) -> tuple[str, str]:
        """The knobs that fix the train tokens and the valid/test tokens a run reads: for a grid
        configuration (``grid``; None: when ``exp_id`` is set) ``grid_train_tokens`` and
        ``grid_eval_tokens`` where they are set, else ``train_tokens`` and ``eval_tokens``."""
        grid = self.exp_id is not None if grid is None else grid
        train = "grid_train_tokens" if grid and self.grid_train_tokens is not None else "train_tokens"
        evals = "grid_eval_tokens" if grid and self.grid_eval_tokens is not None else "eval_tokens"
        return train, evals

    def tokens_used(self, grid: bool | None = None) -> tuple[int | None, int | None]:
        """``(train, valid and test)`` tokens a run reads (None: all), by :meth:`token_knobs`."""
        train, evals = self.token_knobs(grid)
        return getattr(self, train), getattr(self, evals)

    @property
    def train_tokens_used(self) -> int | None:
        """The train tokens this run reads (:meth:`tokens_used`; None: all)."""
        return self.tokens_used()[0]

    @property
    def eval_tokens_used(self) -> int | None:
        """The valid and test tokens this run reads (:meth:`tokens_used`; None: all)."""
        return self.tokens_used()[1]

    def grid_settings(self) -> tuple[LMSettings, ...]:
        """The settings of every configuration of the in-notebook grid (``grid_sweep``); none without
        ``grid``."""
        if not self.grid:
            return ()
        return tuple(self.override(**config) for config in SWEEP_CONFIGS[self.grid_sweep])

    def check_tokens(self, train: int | None = None, valid: int | None = None,
                     test: int | None = None) -> None:
        """Refuse a batch that the tokens this run (and each grid configuration) reads cannot fill, naming
        the knobs and the fix: a training epoch without a single optimizer step, or an LSTM whose
        stateful evaluation has fewer tokens than lanes. ``train``/``valid``/``test``: the corpus's token
        counts, once the data is known; without them only the counts the settings fix are checked."""
        train_knob, eval_knob = self.token_knobs()
        n_train, source = self._tokens_read(train_knob, train, "train")
        if n_train is not None:
            self._check_train_batches(n_train, source)
        for part, available in (("valid", valid), ("test", test)):
            n_eval, source = self._tokens_read(eval_knob, available, part)
            if self.model == "lstm" and n_eval is not None and n_eval <= self.batch_size:
                raise ValueError(f"batch_size={self.batch_size} is not valid with {source}: the LSTM's "
                                 "stateful evaluation reads batch_size lanes of at least one token each; "
                                 f"lower batch_size below {n_eval:,} or give {eval_knob} above "
                                 f"{self.batch_size}")
        for config in SWEEP_CONFIGS[self.grid_sweep] if self.grid else ():
            try:
                self.override(**config).check_tokens(train, valid, test)
            except ValueError as err:
                raise ValueError(f"grid configuration {config['exp_id']} (grid_sweep={self.grid_sweep!r}): "
                                 f"{err}") from None

    def _tokens_read(self, name: str, available: int | None, part: str) -> tuple[int | None, str]:
        """The tokens of ``part`` a run reads when the knob ``name`` fixes them (None: all) and the part has
        ``available`` tokens (None: not known yet), and where that count comes from, for errors."""
        fixed = getattr(self, name)
        if fixed is not None and (available is None or fixed <= available):
            return fixed, f"{name}={fixed}"
        if available is None:
            return None, ""
        return available, f"the {available:,} {part} tokens of the {self.split!r} split ({name}={fixed})"

    def _check_train_batches(self, n_train: int, source: str) -> None:
        size, length = self.batch_size, self.seq_len
        if self.stateful_training:
            if n_train - 1 < size:
                raise ValueError(f"batch_size={size} is not valid with {source}: stateful_training reads "
                                 "batch_size contiguous lanes of at least one token each; lower batch_size "
                                 f"below {n_train:,} or train on more tokens")
            return
        windows = (n_train - 1) // length
        if windows < size:
            raise ValueError(f"batch_size={size} is not valid with {source}: {n_train:,} tokens make "
                             f"{windows:,} windows of seq_len={length}, fewer than one batch, so an epoch "
                             f"would take no optimizer step; lower batch_size to at most {windows:,} or "
                             f"train on at least {size * length + 1:,} tokens")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def dropout_rate(self) -> float:
        """``dropout``, or the model's default."""
        return self.dropout if self.dropout is not None else DEFAULT_DROPOUT[self.model]


# (model, optimizer, layers) of the twelve configurations in the course's order: each model with adam, adamw,
# sgd and momentum at one layer, then adamw at two and four layers
GRID = tuple([(m, o, 1) for m in MODELS for o in OPTIMIZERS]
             + [(m, "adamw", n) for m in MODELS for n in (2, 4)])

# The course's twelve, exactly as set: lr 1e-3 for every optimizer, constant, momentum 0.9 (not Nesterov),
# weight decay 5e-4 (adamw, sgd, momentum), batch 16, ten epochs, shuffled windows; grid=False and
# gpt_beside=False, reference_beside=False: a sweep run trains only itself.
ALONE = dict(grid=False, gpt_beside=False, reference_beside=False)
COURSE = dict(lr=1e-3, lr_plateau_factor=1.0, lr_anneal_epochs=0, stateful_training=False, momentum=0.9,
              nesterov=False, weight_decay=5e-4, batch_size=16, epochs=10, **ALONE)
# The workbook's tuned variant: each optimizer at its own learning rate (DEFAULT_LR: sgd 1.0, momentum 0.1),
# Nesterov momentum, weight decay 0.01 on adamw only; batch size and epochs from the profile.
SWEEP_CONFIGS: dict[str, tuple[dict[str, Any], ...]] = {
    "lm": tuple({"exp_id": f"{m}-{o}-L{n}", "model": m, "optimizer": o, "num_layers": n, **COURSE}
                for m, o, n in GRID),
    "lm_tuned": tuple(
        {"exp_id": f"tuned-{m}-{o}-L{n}", "model": m, "optimizer": o, "num_layers": n, "lr": DEFAULT_LR[o],
         "lr_plateau_factor": 1.0, "lr_anneal_epochs": 0, "stateful_training": False, "momentum": 0.9,
         "nesterov": True, "weight_decay": 0.01 if o == "adamw" else 0.0, **ALONE}
        for m, o, n in GRID),
}
"""The configurations of each sweep, by name."""

# full: the defaults (official split, full vocabulary, ten epochs on a GPU); its grid is too large for one
# notebook: each configuration is a run of its own (exp_id), compared from the run folders
FULL = LMSettings()
# offline split, 2,000 words, five epochs on 64k tokens, tied weights, one CPU thread; then the course's
# twelve configurations here, tiny (8k train tokens each)
SMOKE = LMSettings(
    split="offline", max_vocab=2000, train_tokens=65536, eval_tokens=4096, epochs=5, batch_size=16,
    seq_len=32, lr=3e-3, hidden=64, d_model=64, n_heads=2, dropout=0.1, tie_weights=True, amp=False,
    checkpoint=False, grid=True, grid_train_tokens=8192, cpu_threads=1,
)
# the LSTM of pytorch/examples' word_language_model (2 x 200, batch 20, windows of 35) on the offline split
# with its whole vocabulary, trained its way (plain SGD at 20, lr / 4 on a plateau, clip 0.25, the state
# carried across windows), with tied weights and a last epoch at lr / 4 (valid 175.3 against 191.3
# without it, state carried), five epochs on two CPU cores; beside it a GPT of the same size (d_model
# 156: the LSTM's parameter count at 2 blocks, also the width of the sweep's GPTs) and pytorch/examples'
# recipe itself on the same tokens; the sweep on 32k train and 32k eval tokens per configuration
LAPTOP = LMSettings(
    split="offline", optimizer="sgd", num_layers=2, epochs=5, batch_size=20, seq_len=35, lr=20.0,
    weight_decay=0.0, grad_clip=0.25, hidden=200, d_model=156, lr_plateau_factor=4.0, lr_anneal_epochs=1,
    stateful_training=True, dropout=0.2, embeddings="random", emb_dim=200, tie_weights=True, amp=False,
    grid_train_tokens=32768, grid_eval_tokens=32768, gpt_beside=True, reference_beside=True, cpu_threads=2,
)
# The GPT beside the LSTM (gpt_beside): the workbook's recipe for it (AdamW 1e-3, weight decay 0.01, clip 1,
# its default dropout 0.2, lr / 4 on a plateau and in the last epoch), on shuffled windows; its width
# matches the LSTM's size (lm.models.matching_gpt).
GPT_BESIDE = dict(model="gpt1", stateful_training=False, optimizer="adamw", lr=1e-3, weight_decay=0.01,
                  grad_clip=1.0, dropout=0.2, lr_plateau_factor=4.0)

ASSIGNMENT = Assignment(
    id="03",
    slug="language_models",
    title="Language models on WikiText-2: LSTM and mini GPT-1",
    datasets=("wikitext-2",),
    profiles={"smoke": SMOKE, "laptop": LAPTOP, "full": FULL},
    expected={
        # the smoke LSTM must beat the unigram model of its training tokens (about 99) by a clear margin
        "smoke": {"valid_ppl": (25.0, 70.0), "test_ppl": (30.0, 80.0), "valid_ppl_stateful": (25.0, 70.0),
                  "unigram_valid_ppl": (90.0, 110.0), "unigram_minus_valid_ppl": (20.0, 100.0),
                  "grid_best_valid_ppl": (50.0, 150.0), "grid_unigram_minus_best_valid_ppl": (5.0, 100.0)},
        # the laptop LSTM must reach 190 with the state carried; measured: 175.3 (windowed 185.9), test
        # 172.2, the GPT beside it 228.9; the unigram model of the 217k training tokens is about 570
        "laptop": {"valid_ppl_stateful": (120.0, 190.0), "test_ppl_stateful": (120.0, 195.0),
                   "valid_ppl": (120.0, 220.0), "test_ppl": (120.0, 220.0),
                   "unigram_valid_ppl": (560.0, 580.0), "gpt_valid_ppl": (180.0, 270.0)},
        "full": {"valid_ppl": (60.0, 140.0), "test_ppl": (50.0, 140.0)},
    },
    headline=("valid_ppl", "test_ppl"),
    exercise_tests=("tests/lm/test_models.py", "tests/lm/test_sampling.py", "tests/lm/test_train.py"),
    points={"NextTokenWindows.__getitem__": 1, "LayerNorm.__init__": 1, "LayerNorm.forward": 3,
            "TokenPositionEmbedding.forward": 2,
            "CausalSelfAttention.attention_weights": 4, "CausalSelfAttention.forward": 2,
            "GPTBlock.forward": 2, "MiniGPT1.forward": 1, "next_token_loss": 3, "perplexity": 1,
            "unigram_perplexity": 2, "evaluate_loss": 2, "CarriedState.__call__": 2, "sample_next": 2,
            "generate": 2},
    sweeps={name: Sweep(name=name, configs=configs, compare=compare_runs, load=load_run)
            for name, configs in SWEEP_CONFIGS.items()},
)
