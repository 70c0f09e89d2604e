"""One generic training loop for every assignment.

``fit`` runs epochs over a DataLoader with a progress bar, records a per-epoch history (train loss,
evaluation metrics, wall time, throughput, peak GPU memory), clips gradients on request, stops with a
clear message when the loss turns non-finite or explodes, and writes an atomic checkpoint after every
epoch from which an interrupted run resumes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

Batch = Any
LossFn = Callable[[nn.Module, Batch], "torch.Tensor | tuple[torch.Tensor, int]"]


SCHEDULER_INTERVALS = ("epoch", "step")


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exploded; the message says when and what to try."""


@dataclass
class History:
    """Per-epoch records: a list of flat dicts, one per epoch (``epoch`` counts from 1)."""

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
        """The history as a pandas DataFrame indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.epochs).set_index("epoch")


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


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    return torch.load(path, map_location=map_location, weights_only=True)


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
    scheduler_interval: str = "epoch",
    amp: bool = False,
    explode_factor: float = 1e3,
    progress: bool | None = None,
    desc: str = "train",
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    ``loss_fn(model, batch)`` returns the mean loss of a batch already moved to ``device``, or
    ``(loss, n_items)`` where ``n_items`` counts what throughput is measured in (tokens, images).
    ``evaluate(model)`` returns metrics added to each epoch's record (called in eval mode, no grad).
    ``scheduler.step()`` is called once per epoch, or after every optimizer step with
    ``scheduler_interval="step"`` (e.g. OneCycleLR). With ``checkpoint_path``, an existing checkpoint
    is resumed from and a new one is written atomically after every epoch.
    ``amp`` uses bfloat16 autocast on CUDA (ignored on CPU). ``progress=None`` shows a progress bar
    unless the environment sets ``TQDM_DISABLE=1`` (as the tests do).
    Raises :class:`TrainingDiverged` when a batch loss is non-finite or exceeds ``explode_factor``
    times the first batch's loss.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if scheduler_interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"scheduler_interval={scheduler_interval!r} is not valid; "
                         f"choose one of {list(SCHEDULER_INTERVALS)}")
    device = torch.device(device)
    model.to(device)
    history = History()
    start_epoch = 1
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History(list(state["history"]))
        torch.set_rng_state(state["rng_cpu"])
        start_epoch = int(state["epoch"]) + 1
    use_amp = amp and device.type == "cuda"
    first_loss: float | None = None
    for epoch in range(start_epoch, epochs + 1):
        model.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        total, count, items = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False,
                   disable=not progress_enabled(progress))
        for step, batch in enumerate(bar):
            batch = move_to(batch, device)
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
            with autocast:
                out = loss_fn(model, batch)
            loss, n = out if isinstance(out, tuple) else (out, _batch_size(batch))
            value = float(loss.detach())
            if first_loss is None:
                first_loss = max(abs(value), 1e-8)
            if not math.isfinite(value) or value > explode_factor * first_loss:
                raise TrainingDiverged(
                    f"training loss became {value:.4g} at epoch {epoch}, step {step} "
                    f"(first loss {first_loss:.4g}); lower the learning rate or set grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
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
        }
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                record.update(evaluate(model))
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        history.epochs.append(record)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "epoch": epoch,
                    "history": history.epochs,
                    "rng_cpu": torch.get_rng_state(),
                },
            )
    return history
