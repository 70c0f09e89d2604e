"""The training loop of one epoch and the evaluation loop, written by the student.

:func:`train_epoch` is the per-epoch function that :func:`course_lib.core.training.fit` calls
(``fit(..., train_epoch=train_epoch)``): :func:`~course_lib.cnn.cifar.train_cnn` trains every network of
this assignment with it, the course's recipe and the faster ones. :func:`evaluate_classifier` measures
a model on a whole split after every epoch of ``train_cnn``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


def train_epoch(model: nn.Module, batches: Iterable[Any],
                loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, int]], optimizer: Any) -> float:
    """One epoch of training; returns the running loss.

    Put the model in training mode (``model.train()``: dropout on, batch norm on batch statistics), then
    for every batch of ``batches`` (already on the model's device), in order:

    1. forward and loss: ``loss, n = loss_fn(model, batch)``, the batch's **mean** loss (a scalar tensor
       that requires grad) and the number of items it averages over;
    2. ``optimizer.zero_grad()``, so that only this batch's gradient is used;
    3. ``loss.backward()``;
    4. ``optimizer.step()`` (exactly one per batch).

    Returns the running loss as a float: the mean loss **per item** over the epoch, the sum of
    ``loss * n`` over the batches divided by the sum of ``n`` (the last batch may be smaller, so this
    is not the mean of the batch means); each batch's loss as computed before its step.
    """
    ### BEGIN SOLUTION
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * n
        count += n
    return total / max(count, 1)
    ### END SOLUTION


def evaluate_classifier(model: nn.Module, batches: Iterable[Batch]) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``model`` over every item of ``batches``.

    ``batches`` yields ``(x, y)``: inputs on the model's device and labels (B,) int64 class indices; the
    model maps ``x`` to logits (B, K). Evaluate in eval mode (``model.eval()``: dropout off, batch norm
    on its running statistics) and without building a graph (``torch.no_grad()``). Accuracy: the share
    of items whose highest logit is their label, counted over the whole split (correct items over all
    items, not the mean of per-batch accuracies); loss: ``F.cross_entropy`` of the float32 logits,
    summed over all items and divided by their number. The model is left in eval mode.
    """
    ### BEGIN SOLUTION
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x).float()
            correct += int((logits.argmax(dim=1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            count += len(y)
    if count == 0:
        raise ValueError("evaluate_classifier got no batches")
    return correct / count, loss_sum / count
    ### END SOLUTION
