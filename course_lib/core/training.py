"""One generic training loop for every assignment, and the measures every assignment shares.

``fit`` runs epochs over a DataLoader with a progress bar, records a per-epoch history (train loss,
evaluation metrics, wall time, throughput, peak GPU memory), clips gradients on request, stops with a
clear message when the loss turns non-finite or explodes, and writes an atomic checkpoint after every
epoch from which an interrupted run resumes.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.core.cache import DAMAGE
from course_lib.core.device import autocast
from course_lib.core.io import atomic_save_torch, jsonable

Batch = Any
LossFn = Callable[[nn.Module, Batch], "torch.Tensor | tuple[torch.Tensor, int]"]


SCHEDULER_INTERVALS = ("epoch", "step")


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exploded; the message says when and what to try."""


@dataclass
class History:
    """Per-epoch records, one dict per epoch (``epoch`` counts from 1): ``train_loss``, ``lr``, times,
    ``step_losses`` (every training step's loss, in order) and the evaluated metrics."""

    epochs: list[dict[str, Any]] = field(default_factory=list)

    def column(self, key: str) -> list[Any]:
        """The values of ``key`` over epochs (``None`` where an epoch lacks it)."""
        return [e.get(key) for e in self.epochs]

    def last(self) -> dict[str, Any]:
        """The most recent epoch's record."""
        if not self.epochs:
            raise IndexError("history is empty: no epoch has finished")
        return self.epochs[-1]

    def to_frame(self):
        """The history as a pandas DataFrame indexed by epoch (without the per-step losses)."""
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in e.items() if k != "step_losses"} for e in self.epochs]
                            ).set_index("epoch")

    def step_curve(self, every: int = 1, scale: float = 1.0) -> tuple[list[float], list[float]]:
        """The training loss step by step: ``(x, loss)`` with x in epochs (step i of n in epoch e at
        ``e - 1 + (i + 1) / n``), each point the mean of ``every`` consecutive steps (the last group of an
        epoch may be shorter), times ``scale``."""
        if every < 1:
            raise ValueError(f"every={every!r} is not valid; it must be >= 1")
        xs: list[float] = []
        ys: list[float] = []
        for record in self.epochs:
            losses = record.get("step_losses") or []
            n = len(losses)
            for start in range(0, n, every):
                group = losses[start:start + every]
                xs.append(record["epoch"] - 1 + (start + len(group)) / n)
                ys.append(scale * sum(group) / len(group))
        return xs, ys


def progress_enabled(progress: bool | None = None) -> bool:
    """``progress`` if given, else ``True`` unless the environment sets ``TQDM_DISABLE=1``.

    Read here because tqdm's notebook bars (``tqdm.auto`` in Jupyter) ignore that variable.
    """
    if progress is not None:
        return progress
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("1", "true", "yes")


def move_to(batch: Batch, device: torch.device) -> Batch:
    """Move tensors inside (nested) tuples, lists and dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def _batch_size(batch: Batch) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        return _batch_size(next(iter(batch.values())))
    if isinstance(batch, list | tuple) and batch:
        return _batch_size(batch[0])
    return 1


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def accuracy(predictions: Any, labels: Any) -> float:
    """Share of ``predictions`` equal to ``labels`` (arrays or tensors of class indices, (N,))."""
    predictions, labels = torch.as_tensor(predictions), torch.as_tensor(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ")
    if labels.numel() == 0:
        raise ValueError("accuracy of an empty set of labels")
    return float((predictions == labels).double().mean())


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` ``state`` atomically (never half-written)."""
    return atomic_save_torch(path, state)


def loader_generator(loader: Any) -> torch.Generator | None:
    """The ``torch.Generator`` that orders ``loader``'s batches (a DataLoader's or its sampler's, or a
    ``generator`` attribute of a custom loader), ``None`` when it draws from the global generator."""
    for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
    return None


def random_state(loader: Any = None) -> dict[str, Any]:
    """Every random state a run draws from, as tensors (so ``weights_only`` loading reads them):
    torch (CPU and CUDA), numpy, python, and ``loader``'s generator."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    generator = loader_generator(loader)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                  "gauss": gauss},
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "loader": generator.get_state() if generator is not None else None,
    }


def restore_random_state(state: dict[str, Any], loader: Any = None) -> None:
    """Put back what :func:`random_state` recorded (the inverse, for an exact resume)."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
    generator = loader_generator(loader)
    if generator is not None and state["loader"] is not None:
        generator.set_state(state["loader"].cpu())


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def resumable_checkpoint(path: str | os.PathLike, key: Mapping[str, Any] | None, model: nn.Module,
                         device: torch.device, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it loads, was written with ``key`` and fits ``model``; else ``None``
    (a missing file silently, a damaged or stale one with a one-line notice)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path, map_location=device)
        stored = state["model"]
    except DAMAGE as err:
        log(f"checkpoint {path.name} is damaged ({type(err).__name__}); training from the start")
        return None
    if state.get("key") != jsonable(key):
        log(f"checkpoint {path.name} was made by other settings, data or code; training from the start")
        return None
    if state_mismatch(model, stored) is not None:
        log(f"checkpoint {path.name} does not fit this model; training from the start")
        return None
    return state


def state_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Why ``state`` (a state dict) does not fit ``model``: missing or unexpected names, or the first
    tensor of another shape or dtype; ``None`` when it fits."""
    expected = model.state_dict()
    if state.keys() != expected.keys():
        missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
        return f"tensors do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
    for name, tensor in state.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            return (f"{name} is {tuple(tensor.shape)} {tensor.dtype}, "
                    f"the model's {tuple(want.shape)} {want.dtype}")
    return None


def divergence_limit(num_classes: int, factor: float = 3.0) -> float:
    """``factor x log(num_classes)``: a loss this far above the uniform model's means training diverged."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return factor * math.log(num_classes)


def _check_evaluated_losses(record: Mapping[str, Any], max_loss: float | None, epoch: int) -> None:
    for key, value in record.items():
        if not key.endswith("loss") or not isinstance(value, float):
            continue
        if not math.isfinite(value) or (max_loss is not None and value > max_loss):
            raise TrainingDiverged(f"{key} became {value:.4g} after epoch {epoch}"
                                   + (f" (limit {max_loss:.4g})" if max_loss is not None else "")
                                   + "; lower the learning rate or set grad_clip")


def fit(
    model: nn.Module,
    train_loader: Iterable[Batch],
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: torch.device | str = "cpu",
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    scheduler: Any = None,
    grad_clip: float | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_key: Mapping[str, Any] | None = None,
    scheduler_interval: str = "epoch",
    scheduler_metric: str | None = None,
    amp: bool = False,
    explode_factor: float = 1e3,
    max_loss: float | None = None,
    progress: bool | None = None,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    ``loss_fn(model, batch)`` returns the mean loss of a batch already moved to ``device``, or
    ``(loss, n_items)`` where ``n_items`` counts what throughput is measured in (tokens, images).
    ``evaluate(model)`` returns metrics added to each epoch's record (called in eval mode, no grad).
    ``scheduler.step()`` is called once per epoch, or after every optimizer step with
    ``scheduler_interval="step"`` (e.g. OneCycleLR); with ``scheduler_metric``, once per epoch as
    ``scheduler.step(record[scheduler_metric])``, an evaluated metric (e.g. ReduceLROnPlateau on
    ``"valid_loss"``). With ``checkpoint_path``, a checkpoint is written
    atomically after every epoch (model, optimizer, scheduler, history, every random state and
    ``checkpoint_key``, what determines the run: settings, data and code digests), and an existing one
    is resumed from exactly when its key and shapes match; a stale or damaged one is ignored with a
    one-line notice.
    A ``train_loader`` with a ``set_epoch(epoch)`` method (1-based) is told each epoch before it is
    iterated, so what it serves may depend on the epoch and a resumed run gets the same batches.
    ``amp`` uses bfloat16 autocast on CUDA (ignored on CPU). ``progress=None`` shows a progress bar
    unless the environment sets ``TQDM_DISABLE=1`` (as the tests do).
    Raises :class:`TrainingDiverged` when a batch loss is non-finite, exceeds ``explode_factor``
    times the first batch's loss, or exceeds ``max_loss`` (for classifiers
    :func:`divergence_limit`: far above the uniform model's loss); also when an evaluated ``*loss``
    metric is non-finite or above ``max_loss``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if scheduler_interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"scheduler_interval={scheduler_interval!r} is not valid; "
                         f"choose one of {list(SCHEDULER_INTERVALS)}")
    if scheduler_metric is not None and (evaluate is None or scheduler_interval != "epoch"):
        raise ValueError(f"scheduler_metric={scheduler_metric!r} needs evaluate and "
                         "scheduler_interval='epoch'")
    device = torch.device(device)
    model.to(device)
    history = History()
    start_epoch = 1
    state = resumable_checkpoint(checkpoint_path, checkpoint_key, model, device) if checkpoint_path else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History(list(state["history"]))
        restore_random_state(state["random"], train_loader)
        start_epoch = int(state["epoch"]) + 1
    first_loss: float | None = None
    set_epoch = getattr(train_loader, "set_epoch", None)
    for epoch in range(start_epoch, epochs + 1):
        if set_epoch is not None:
            set_epoch(epoch)
        model.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        total, count, items = 0.0, 0, 0
        step_losses: list[float] = []
        bar = tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False,
                   disable=not progress_enabled(progress))
        for step, batch in enumerate(bar):
            batch = move_to(batch, device)
            with autocast(device, amp):
                out = loss_fn(model, batch)
            loss, n = out if isinstance(out, tuple) else (out, _batch_size(batch))
            value = float(loss.detach())
            if first_loss is None:
                first_loss = max(abs(value), 1e-8)
            if not math.isfinite(value) or value > explode_factor * first_loss or (
                    max_loss is not None and value > max_loss):
                limit = f", limit {max_loss:.4g}" if max_loss is not None else ""
                raise TrainingDiverged(
                    f"training loss became {value:.4g} at epoch {epoch}, step {step} "
                    f"(first loss {first_loss:.4g}{limit}); lower the learning rate or set grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            step_losses.append(value)
            total += value * n
            count += n
            items += n
            bar.set_postfix(loss=f"{value:.4f}")
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_time_s": elapsed,
            "items_per_s": items / elapsed if elapsed > 0 else float("nan"),
            "peak_gpu_memory_mb": (
                torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
            ),
            "step_losses": step_losses,
        }
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(model))
            _check_evaluated_losses(record, max_loss, epoch)
        if scheduler is not None and scheduler_interval == "epoch":
            if scheduler_metric is None:
                scheduler.step()
            else:
                scheduler.step(record[scheduler_metric])
        history.epochs.append(record)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "key": jsonable(checkpoint_key),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "epoch": epoch,
                    "history": history.epochs,
                    "random": random_state(train_loader),
                },
            )
    return history
