"""One generic training loop for every assignment, and the measures every assignment shares.

``fit`` runs epochs and keeps the machinery around them: a per-epoch :class:`History` (train loss,
evaluation metrics, wall time, throughput, peak GPU memory), an atomic :class:`Checkpoint` after every
epoch from which an interrupted run resumes exactly (every random state included), a
:class:`DivergenceGuard` that stops with a clear message when the loss turns non-finite or explodes, and
a :class:`Schedule` that changes the learning rate (or ends training) after each step or epoch.
One epoch's pass over the batches is a function of its own, :func:`train_one_epoch` by default
(forward, loss, backward, step, running loss): an assignment may pass one its students wrote.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.core.cache import DAMAGE
from course_lib.core.device import autocast
from course_lib.core.io import atomic_save_torch, jsonable

Batch = Any
LossFn = Callable[[nn.Module, Batch], "torch.Tensor | tuple[torch.Tensor, int]"]


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
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())  # the legacy tuple
    kind, keys, pos, has_gauss, gauss = state
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


class Schedule:
    """What changes as training goes, the learning rate or whether training goes on: :func:`fit` calls
    :meth:`after_step` after every optimizer step and :meth:`after_epoch` after every epoch's evaluation,
    and keeps :meth:`state_dict` in its checkpoints. A subclass overrides what it needs; ``metric``
    names the evaluated metric its :meth:`after_epoch` reads (``fit`` refuses it without ``evaluate``)."""

    metric: str | None = None

    def after_step(self) -> None:
        """After every optimizer step."""

    def after_epoch(self, record: Mapping[str, Any]) -> None:
        """After every epoch, with its record (train loss, learning rate, evaluated metrics)."""

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""


class RateSchedule(Schedule):
    """Each parameter group's learning rate is its rate at construction times ``factor(step)``, ``step``
    counting the optimizer steps taken (0 before the first): set now and after every step. ``factors`` is
    one function for every group or one per group (e.g. a one-cycle or warmup-then-decay curve)."""

    def __init__(self, optimizer: torch.optim.Optimizer,
                 factors: Callable[[int], float] | Sequence[Callable[[int], float]]) -> None:
        groups = optimizer.param_groups
        self.factors = list(factors) if isinstance(factors, Sequence) else [factors] * len(groups)
        if len(self.factors) != len(groups):
            raise ValueError(f"{len(self.factors)} factors for {len(groups)} parameter groups; "
                             "give one per group")
        self.optimizer, self.base_lrs, self.step = optimizer, [group["lr"] for group in groups], 0
        self._apply()

    def _apply(self) -> None:
        for group, base, factor in zip(self.optimizer.param_groups, self.base_lrs, self.factors, strict=True):
            group["lr"] = base * factor(self.step)

    def after_step(self) -> None:
        self.step += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step, self.base_lrs = int(state["step"]), list(state["base_lrs"])


def divergence_limit(num_classes: int, factor: float = 3.0) -> float:
    """``factor x log(num_classes)``: a loss this far above the uniform model's means training diverged."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return factor * math.log(num_classes)


@dataclass
class DivergenceGuard:
    """Stops a run whose loss diverged: a training step's loss that is not finite, exceeds
    ``explode_factor`` times the first step's loss (of this call of ``fit``) or exceeds ``max_loss``; an
    evaluated ``*loss`` metric that is not finite or exceeds ``max_loss``."""

    explode_factor: float = 1e3
    max_loss: float | None = None
    first_loss: float | None = None

    def check_step(self, value: float, epoch: int, step: int) -> None:
        """Raise :class:`TrainingDiverged` if step ``step`` (0-based) of ``epoch`` has diverged."""
        if self.first_loss is None:
            self.first_loss = max(abs(value), 1e-8)
        if not math.isfinite(value) or value > self.explode_factor * self.first_loss or (
                self.max_loss is not None and value > self.max_loss):
            limit = f", limit {self.max_loss:.4g}" if self.max_loss is not None else ""
            raise TrainingDiverged(f"training loss became {value:.4g} at epoch {epoch}, step {step} "
                                   f"(first loss {self.first_loss:.4g}{limit}); lower the learning rate or "
                                   "set grad_clip")

    def check_evaluated(self, record: Mapping[str, Any], epoch: int) -> None:
        """Raise :class:`TrainingDiverged` if an evaluated ``*loss`` of ``epoch``'s record has diverged."""
        for key, value in record.items():
            if not key.endswith("loss") or not isinstance(value, float):
                continue
            if not math.isfinite(value) or (self.max_loss is not None and value > self.max_loss):
                limit = f" (limit {self.max_loss:.4g})" if self.max_loss is not None else ""
                raise TrainingDiverged(f"{key} became {value:.4g} after epoch {epoch}{limit}; lower the "
                                       "learning rate or set grad_clip")


@dataclass
class Checkpoint:
    """A run's checkpoint file and its ``key`` (what determines the run: settings, data and code
    digests): written atomically after every epoch, resumed from when it fits."""

    path: Path
    key: Mapping[str, Any] | None = None

    def resume(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule | None,
               loader: Any, device: torch.device) -> History:
        """Load the checkpoint into ``model``, ``optimizer``, ``schedule`` and every random state
        (``loader``'s generator included) and return its history, when it was written with ``key`` and
        fits ``model`` (:func:`resumable_checkpoint`); else change nothing and return an empty history."""
        state = resumable_checkpoint(self.path, self.key, model, device)
        if state is None:
            return History()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None and state.get("schedule") is not None:
            schedule.load_state_dict(state["schedule"])
        restore_random_state(state["random"], loader)
        return History(list(state["history"]))

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule | None,
             history: History, loader: Any) -> None:
        """Write the state after the last epoch of ``history``."""
        save_checkpoint(self.path, {
            "key": jsonable(self.key),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "epoch": history.last()["epoch"],
            "history": history.epochs,
            "random": random_state(loader),
        })


class TrainingOptimizer:
    """The optimizer as an epoch function sees it: ``zero_grad()`` as torch's; ``step()`` first clips the
    gradient norm to ``grad_clip`` (when set), then steps, then moves the schedule on by one step."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, grad_clip: float | None,
                 schedule: Schedule | None) -> None:
        self.optimizer, self.model, self.grad_clip, self.schedule = optimizer, model, grad_clip, schedule

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (each with its current ``"lr"``)."""
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.after_step()


class EpochMeter:
    """One epoch's measures. Its :meth:`loss_fn`, what the epoch function calls, runs the assignment's
    loss (under autocast when ``amp``), lets ``guard`` check it, and keeps every step's loss and the
    items seen; :meth:`record` makes the epoch's record when the epoch ends."""

    def __init__(self, epoch: int, loss_fn: LossFn, device: torch.device, amp: bool, guard: DivergenceGuard,
                 bar: Any) -> None:
        self.epoch, self._loss_fn, self.device, self.amp, self.guard, self.bar = (
            epoch, loss_fn, device, amp, guard, bar)
        self.step_losses: list[float] = []
        self.items = 0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.started = time.perf_counter()

    def batches(self) -> Iterator[Batch]:
        """The progress bar's batches, moved to the device."""
        return (move_to(batch, self.device) for batch in self.bar)

    def loss_fn(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        """``(mean loss of the batch, items it averages over)``, checked and recorded."""
        with autocast(self.device, self.amp):
            out = self._loss_fn(model, batch)
        loss, n = out if isinstance(out, tuple) else (out, _batch_size(batch))
        value = float(loss.detach())
        self.guard.check_step(value, self.epoch, len(self.step_losses))
        self.step_losses.append(value)
        self.items += n
        self.bar.set_postfix(loss=f"{value:.4f}")
        return loss, n

    def record(self, train_loss: float, lr: float) -> dict[str, Any]:
        """The epoch's record: ``epoch``, ``train_loss``, ``lr``, ``epoch_time_s``, ``items_per_s``,
        ``peak_gpu_memory_mb`` (``None`` off CUDA) and ``step_losses``."""
        self.bar.close()
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - self.started
        return {"epoch": self.epoch, "train_loss": train_loss, "lr": lr, "epoch_time_s": elapsed,
                "items_per_s": self.items / elapsed if elapsed > 0 else float("nan"),
                "peak_gpu_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else None,
                "step_losses": self.step_losses}


StepLoss = Callable[[nn.Module, Batch], tuple[torch.Tensor, int]]
EpochFn = Callable[[nn.Module, Iterable[Batch], StepLoss, TrainingOptimizer], float]
"""``train_epoch(model, batches, loss_fn, optimizer) -> mean training loss``, see :func:`train_one_epoch`."""


def train_one_epoch(model: nn.Module, batches: Iterable[Batch], loss_fn: StepLoss,
                    optimizer: TrainingOptimizer) -> float:
    """One pass over ``batches`` (already on the model's device, the model in training mode): for each
    batch, ``loss, n = loss_fn(model, batch)`` (the batch's mean loss and the number of items it
    averages over), then zero the gradients, backpropagate and take an optimizer step. Returns the
    running loss: the mean loss per item over the epoch (sum of ``loss * n`` over sum of ``n``)."""
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * n
        count += n
    return total / max(count, 1)


def _evaluated(model: nn.Module, evaluate: Callable[[nn.Module], Mapping[str, float]]) -> Mapping[str, float]:
    """``evaluate(model)`` in eval mode without gradients."""
    model.eval()
    with torch.no_grad():
        return evaluate(model)


def fit(model: nn.Module, train_loader: Iterable[Batch], *, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
        epochs: int, device: torch.device | str = "cpu",
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None, schedule: Schedule | None = None,
        grad_clip: float | None = None, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_key: Mapping[str, Any] | None = None, amp: bool = False, max_loss: float | None = None,
        progress: bool | None = None, desc: str = "train", train_epoch: EpochFn = train_one_epoch) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Each epoch, ``train_epoch(model, batches, loss_fn, optimizer)`` (:func:`train_one_epoch` unless an
    assignment passes its own, e.g. one its students wrote) makes one pass over ``train_loader``'s
    batches, moved to ``device``, and returns the running loss (the record's ``train_loss``). The
    ``loss_fn`` it is handed runs this ``loss_fn(model, batch)`` (the batch's mean loss, or
    ``(loss, n_items)`` where ``n_items`` counts what throughput is measured in: tokens, images), with
    bfloat16 autocast when ``amp`` (on CUDA, or a CPU with native bf16), and records every step's loss;
    the ``optimizer`` it is handed clips the gradient norm to ``grad_clip`` and moves ``schedule`` on
    after every step (:class:`TrainingOptimizer`). Then ``evaluate(model)`` (eval mode, no grad) adds
    its metrics to the epoch's record and ``schedule.after_epoch(record)`` runs.
    A ``train_loader`` with a ``set_epoch(epoch)`` method (1-based) is told each epoch before it is
    iterated, so what it serves may depend on the epoch and a resumed run gets the same batches.
    With ``checkpoint_path`` a :class:`Checkpoint` keyed by ``checkpoint_key`` is written after every
    epoch, and one that fits is resumed from exactly; a stale or damaged one is ignored with a
    one-line notice. A :class:`DivergenceGuard` with ``max_loss`` (for classifiers
    :func:`divergence_limit`: far above the uniform model's loss) raises :class:`TrainingDiverged`.
    ``progress=None`` shows a progress bar unless the environment sets ``TQDM_DISABLE=1``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if schedule is not None and schedule.metric is not None and evaluate is None:
        raise ValueError(f"{type(schedule).__name__} reads {schedule.metric!r} from evaluate; pass evaluate")
    device = torch.device(device)
    model.to(device)
    checkpoint = Checkpoint(Path(checkpoint_path), checkpoint_key) if checkpoint_path is not None else None
    history = checkpoint.resume(model, optimizer, schedule, train_loader, device) if checkpoint else History()
    guard = DivergenceGuard(max_loss=max_loss)
    stepping = TrainingOptimizer(optimizer, model, grad_clip, schedule)
    set_epoch = getattr(train_loader, "set_epoch", None)
    for epoch in range(len(history.epochs) + 1, epochs + 1):
        if set_epoch is not None:
            set_epoch(epoch)
        model.train()
        bar = tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False,
                   disable=not progress_enabled(progress))
        meter = EpochMeter(epoch, loss_fn, device, amp, guard, bar)
        train_loss = train_epoch(model, meter.batches(), meter.loss_fn, stepping)
        record = meter.record(float(train_loss), optimizer.param_groups[0]["lr"])
        if evaluate is not None:
            record.update(_evaluated(model, evaluate))
            guard.check_evaluated(record, epoch)
        if schedule is not None:
            schedule.after_epoch(record)
        history.epochs.append(record)
        if checkpoint is not None:
            checkpoint.save(model, optimizer, schedule, history, train_loader)
    return history
