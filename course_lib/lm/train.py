"""Training one language model on the generic loop, and the files each run leaves behind.

A run writes ``args.json`` (its settings) and ``history.json`` (one record per epoch: train/valid loss
and perplexity, wall time, tokens/s, peak GPU memory) into its folder, and returns flat metrics
(final and best validation perplexity, the epoch of the best and the train perplexity there, test
perplexity, the LSTM's stateful perplexities, the unigram baseline, throughput) for ``metrics.json``.
A run's checkpoint and the grid's finished runs are keyed by :func:`checkpoint_key`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib.core.digests import code_digest
from course_lib.core.io import atomic_write_json
from course_lib.core.training import History, Schedule, count_parameters, divergence_limit, fit, move_to
from course_lib.lm.config import OPTIMIZERS, LMSettings
from course_lib.lm.data import ContiguousLanes, LMCorpus, NextTokenWindows
from course_lib.lm.embeddings import VocabEmbeddings
from course_lib.lm.models import build_model, logits_of, model_options


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0, *, momentum: float = 0.9,
                   nesterov: bool = False) -> torch.optim.Optimizer:
    """``adam`` (no weight decay), ``adamw`` (decoupled weight decay), ``sgd`` (plain, L2 weight decay) or
    ``momentum`` (SGD with ``momentum``, Nesterov's if ``nesterov``, L2 weight decay), as the course set
    them up."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    raise ValueError(f"optimizer={name!r} is not valid; choose one of {list(OPTIMIZERS)}")


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The language-model loss: the mean next-token cross-entropy, in nats per token, a scalar tensor.

    ``logits`` (B, T, V): the model's scores at each of the T positions of B windows; ``targets`` (B, T),
    int64 token ids, **already shifted**: ``targets[b, t]`` is the token that follows input token t of
    window b (the data pipeline cut each window of T + 1 tokens into inputs and targets), so position t's
    logits are scored against ``targets[b, t]`` as they are: do not shift again. There is no padding and
    nothing is ignored: all B x T positions count, each once, and the loss is their **average** (not
    their sum): ``-1/(B T) sum_{b,t} log softmax(logits[b, t])[targets[b, t]]``. Computed in float32
    whatever the logits' dtype (``logits.float()``). ``exp`` of it is the batch's perplexity.
    """
    ### BEGIN SOLUTION
    log_probs = logits.float().log_softmax(dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -picked.mean()
    ### END SOLUTION


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """``fit``'s loss of a batch of windows (x, y), both (B, T): :func:`next_token_loss` of the model's
    logits against y, and the batch's token count."""
    x, y = batch
    return next_token_loss(logits_of(model(x)), y), y.numel()


class CarriedState:
    """The loss of a recurrent model reading :class:`~course_lib.lm.data.ContiguousLanes`: each chunk
    starts from the state the previous chunk ended in, detached (truncated backpropagation through
    time), or from zeros on a chunk marked ``first``. Used as ``fit``'s ``loss_fn``; the state lives
    only within one pass over the lanes, so nothing of it needs checkpointing."""

    def __init__(self) -> None:
        self.state: tuple[torch.Tensor, ...] | None = None

    def __call__(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, bool]
                 ) -> tuple[torch.Tensor, int]:
        """A chunk ``(x, y, first)``, x and y (B, T) (row b continues row b of the previous chunk) ->
        (:func:`next_token_loss` of ``model(x, state)``'s logits against y, the chunk's B x T tokens).

        ``state`` is ``None`` (zeros) when ``first`` is true, else ``self.state``; the state the model
        returns is kept in ``self.state`` **detached** (each tensor of the tuple), so the next chunk starts
        from it while the gradient stops at the chunk's edge."""
        ### BEGIN SOLUTION
        x, y, first = batch
        logits, state = model(x, None if first else self.state)
        self.state = tuple(t.detach() for t in state)
        return next_token_loss(logits, y), y.numel()
        ### END SOLUTION


@torch.no_grad()
def evaluate_loss(model: nn.Module, ids: torch.Tensor, *, seq_len: int, batch_size: int = 64,
                  device: torch.device | str = "cpu") -> float:
    """The mean cross-entropy per token (nats) of the stream ``ids`` (N,), a float.

    Reads the windows of :class:`~course_lib.lm.data.NextTokenWindows` ``(ids, seq_len)`` in batches of
    ``batch_size`` (a ``DataLoader``, not shuffled; the last batch may be smaller), each moved to
    ``device``, and scores them with :func:`next_token_loss` in eval mode (dropout off), then puts the
    model back in the mode it was in. The result is the average over every **token**, not over batches:
    each batch's mean weighted by its token count.
    """
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in DataLoader(NextTokenWindows(ids, seq_len), batch_size=batch_size):
        x, y = x.to(device), y.to(device)
        total += float(next_token_loss(logits_of(model(x)), y)) * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count
    ### END SOLUTION


@torch.no_grad()
def evaluate_stateful_loss(model: nn.Module, ids: torch.Tensor, *, seq_len: int, batch_size: int = 16,
                           device: torch.device | str = "cpu") -> float:
    """Mean cross-entropy per token (nats) of the stream ``ids`` (N,) read as ``batch_size`` contiguous
    lanes (B, N // B) in chunks of ``seq_len`` (:class:`~course_lib.lm.data.ContiguousLanes`), the
    recurrent state carried from one chunk to the next (the standard evaluation of a recurrent language
    model; ``model(x, state)`` -> (logits, state))."""
    lanes = ContiguousLanes(ids, batch_size, seq_len)
    was_training = model.training
    model.eval()
    carried, total = CarriedState(), 0.0
    for batch in lanes:
        loss, tokens = carried(model, move_to(batch, torch.device(device)))
        total += float(loss) * tokens
    model.train(was_training)
    return total / lanes.tokens


def unigram_perplexity(train_ids: torch.Tensor, eval_ids: torch.Tensor, vocab_size: int) -> float:
    """Perplexity on ``eval_ids`` (M,) of the unigram model of ``train_ids`` (N,), a float: the baseline a
    language model must beat by using the context.

    The unigram model gives every token w the same probability wherever it stands, its add-one smoothed
    frequency in the training tokens: ``p(w) = (count(w) + 1) / (N + vocab_size)`` for each of the
    ``vocab_size`` ids (a word never seen in training keeps a small probability). Its perplexity is
    ``exp(-mean over the M eval tokens of log p(token))``.
    """
    ### BEGIN SOLUTION
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    log_p = (counts / counts.sum()).log()
    return math.exp(-float(log_p[eval_ids].mean()))
    ### END SOLUTION


class PlateauSchedule(Schedule):
    """The learning rate of a run, the one place it changes: divided by ``factor`` after every epoch
    whose validation loss (``metric``) is not below the lowest so far (pytorch/examples' ``lr /= 4``),
    and after epoch ``anneal_after`` once more unless that epoch has just divided it (the last epochs
    at a lower rate, an annealing phase)."""

    metric = "valid_loss"

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float, anneal_after: int | None = None):
        if factor <= 1.0:
            raise ValueError(f"factor={factor!r} is not valid; it must be > 1 (1 is a constant rate)")
        self.optimizer, self.scale, self.anneal_after = optimizer, 1.0 / factor, anneal_after
        self.best, self.epochs = math.inf, 0

    def _divide(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = group["lr"] * self.scale

    def after_epoch(self, record: Mapping[str, Any]) -> None:
        self.epochs += 1
        value = float(record[self.metric])
        improved = value < self.best
        if improved:
            self.best = value
        if not improved or self.epochs == self.anneal_after:
            self._divide()

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "epochs": self.epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.epochs = float(state["best"]), int(state["epochs"])


def plateau_schedule(optimizer: torch.optim.Optimizer, factor: float, *, epochs: int = 0,
                     anneal_epochs: int = 0) -> PlateauSchedule | None:
    """The :class:`PlateauSchedule` dividing the learning rate by ``factor``, with ``anneal_epochs``
    once more before the last ``anneal_epochs`` of the ``epochs``; ``None`` for ``factor=1`` (a
    constant learning rate)."""
    if factor == 1.0:
        return None
    return PlateauSchedule(optimizer, factor, epochs - anneal_epochs if anneal_epochs else None)


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy per token in nats), a float; ``math.inf``, never an ``OverflowError``, for a
    loss too large for the exponential (a diverged run: ``math.exp`` overflows above about 709.78)."""
    ### BEGIN SOLUTION
    return math.exp(mean_loss) if mean_loss < 700 else math.inf
    ### END SOLUTION


@dataclass
class LMResult:
    """A finished run: the trained model, its per-epoch history and flat metrics."""

    settings: LMSettings
    model: nn.Module
    history: History
    metrics: dict[str, Any]


def checkpoint_key(settings: LMSettings, corpus: LMCorpus, embeddings: VocabEmbeddings, *, seed: int,
                   device: torch.device | str) -> dict[str, Any]:
    """Everything that determines a run: every knob, the seed, the corpus digest (its split's ids and
    vocabulary), the initial word vectors, the device and the code of ``course_lib.lm``."""
    return {"settings": settings.to_dict(), "seed": seed, "corpus": corpus.digest(),
            "embeddings": embeddings.digest(), "device": str(torch.device(device)),
            "code": code_digest("course_lib.lm", "course_lib.core.training")}


def _cut(ids: torch.Tensor, n: int | None) -> torch.Tensor:
    return ids if n is None else ids[:n]


def _write_args(run_dir: Path, settings: LMSettings, corpus: LMCorpus, embeddings: VocabEmbeddings,
                model: nn.Module, seed: int, device: torch.device) -> None:
    """``run_dir/args.json``: every knob, the values derived from them, the data and the model's size."""
    atomic_write_json(run_dir / "args.json", {
        **settings.to_dict(), "learning_rate": settings.learning_rate, "dropout_rate": settings.dropout_rate,
        "train_tokens_used": settings.train_tokens_used, "eval_tokens_used": settings.eval_tokens_used,
        "seed": seed, "split": corpus.split,
        "split_description": corpus.description, "embeddings": embeddings.source,
        "embedding_coverage": embeddings.coverage, "parameters": count_parameters(model),
        "device": str(device),
    })


def _training_batches(settings: LMSettings, train_ids: torch.Tensor, seed: int) -> tuple[Any, Any]:
    """``(loader, loss_fn)`` for ``fit``: contiguous lanes with the state carried across windows
    (``settings.stateful_training``), else shuffled windows (seeded with ``seed``) and :func:`lm_loss`."""
    if settings.stateful_training:
        return ContiguousLanes(train_ids, settings.batch_size, settings.seq_len), CarriedState()
    windows = NextTokenWindows(train_ids, settings.seq_len)
    return DataLoader(windows, batch_size=settings.batch_size, shuffle=True, drop_last=True,
                      generator=torch.Generator().manual_seed(seed)), lm_loss


def _run_metrics(settings: LMSettings, model: nn.Module, history: History, ids: dict[str, torch.Tensor],
                 vocab_size: int, evaluate_kw: dict[str, Any]) -> dict[str, Any]:
    """The flat metrics of a finished run (see :func:`train_language_model`); ``ids`` holds the
    ``train``, ``valid`` and ``test`` token streams it used."""
    test_loss = evaluate_loss(model, ids["test"], **evaluate_kw)
    last = history.last()
    best = min(history.epochs, key=lambda e: e["valid_ppl"])
    memory = [m for m in history.column("peak_gpu_memory_mb") if m is not None]
    stateful: dict[str, float | None] = {part: None for part in ("valid", "test")}
    if settings.model == "lstm":
        stateful = {part: perplexity(evaluate_stateful_loss(model, ids[part], **evaluate_kw))
                    for part in ("valid", "test")}
    return {
        "valid_ppl": last["valid_ppl"],
        "best_valid_ppl": best["valid_ppl"],
        "best_epoch": best["epoch"],
        "train_ppl_at_best": best["train_ppl"],
        "test_ppl": perplexity(test_loss),
        "valid_ppl_stateful": stateful["valid"],
        "test_ppl_stateful": stateful["test"],
        "unigram_valid_ppl": unigram_perplexity(ids["train"], ids["valid"], vocab_size),
        "train_ppl": last["train_ppl"],
        "epochs": len(history.epochs),
        "train_time_s": last["wall_time_s"],
        "tokens_per_s": sum(history.column("items_per_s")) / len(history.epochs),
        "peak_gpu_memory_mb": max(memory) if memory else None,
        "parameters": count_parameters(model),
    }


def train_language_model(settings: LMSettings, corpus: LMCorpus, embeddings: VocabEmbeddings, *,
                         device: torch.device | str, run_dir: str | os.PathLike, seed: int = 0,
                         progress: bool | None = None) -> LMResult:
    """Train ``settings.model`` on ``corpus`` with ``fit`` and write args.json and history.json.

    Trains on shuffled windows, or with ``settings.stateful_training`` on contiguous lanes with the
    state carried across windows (:class:`CarriedState`); with ``settings.lr_plateau_factor`` > 1 the
    learning rate is divided by it after every epoch without a new best validation loss, and once more
    before the last ``settings.lr_anneal_epochs`` epochs (:class:`PlateauSchedule`). A grid configuration
    (``exp_id`` set) reads the grid's token counts (``settings.train_tokens_used``, ``eval_tokens_used``).
    Evaluates validation loss/perplexity each epoch and test perplexity at the end. ``progress=None``
    shows a bar unless ``TQDM_DISABLE=1``. With ``settings.checkpoint`` an interrupted run resumes
    exactly from ``run_dir/checkpoint.pt`` when that was written for the same :func:`checkpoint_key`
    (else it trains from the start, with a notice). Raises ``TrainingDiverged`` when a batch or
    validation loss exceeds ``divergence_limit(len(corpus.vocab))`` (3 x the uniform model's loss) or
    is not finite.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    torch.manual_seed(seed)
    model = build_model(settings.model, len(corpus.vocab), settings.num_layers, pretrained=embeddings.matrix,
                        **model_options(settings))
    _write_args(run_dir, settings, corpus, embeddings, model, seed, device)
    ids = {p: _cut(getattr(corpus, p), n) for p, n in (
        ("train", settings.train_tokens_used), ("valid", settings.eval_tokens_used),
        ("test", settings.eval_tokens_used))}
    loader, loss_fn = _training_batches(settings, ids["train"], seed)
    optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.learning_rate,
                               settings.weight_decay, momentum=settings.momentum, nesterov=settings.nesterov)
    evaluate_kw: dict[str, Any] = {"seq_len": settings.seq_len, "batch_size": settings.batch_size,
                                   "device": device}

    def evaluate(m: nn.Module) -> dict[str, float]:
        loss = evaluate_loss(m, ids["valid"], **evaluate_kw)
        return {"valid_loss": loss, "valid_ppl": perplexity(loss)}

    history = fit(model, loader, loss_fn=loss_fn, optimizer=optimizer, epochs=settings.epochs, device=device,
                  evaluate=evaluate, grad_clip=settings.grad_clip, amp=settings.amp,
                  schedule=plateau_schedule(optimizer, settings.lr_plateau_factor, epochs=settings.epochs,
                                            anneal_epochs=settings.lr_anneal_epochs),
                  progress=progress, max_loss=divergence_limit(len(corpus.vocab)),
                  checkpoint_path=run_dir / "checkpoint.pt" if settings.checkpoint else None,
                  checkpoint_key=checkpoint_key(settings, corpus, embeddings, seed=seed, device=device),
                  desc=f"{settings.model} {settings.optimizer} L{settings.num_layers}")
    for record in history.epochs:
        record["train_ppl"] = perplexity(record["train_loss"])
        record["wall_time_s"] = sum(e["epoch_time_s"] for e in history.epochs[: record["epoch"]])
    atomic_write_json(run_dir / "history.json", history.epochs)
    metrics = _run_metrics(settings, model, history, ids, len(corpus.vocab), evaluate_kw)
    return LMResult(settings, model, history, metrics)
