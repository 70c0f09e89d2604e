"""course_lib.cnn.loops, the student's training loop of one epoch and evaluation loop: their contracts on
small problems solved here by hand, the overfitting sanity check on 64 images, the loops as fit runs
them; wrong-but-runnable variants fail with clear messages."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.cnn.course_vgg import CourseVGG
from course_lib.cnn.loops import evaluate_classifier, train_epoch
from course_lib.core.training import fit
from tests.cnn import checks
from tests.cnn.synthetic import learnable_split


def _images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    split = learnable_split(n, seed)
    return torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(split.labels)


@pytest.mark.exercise("train_epoch")
@pytest.mark.parametrize("sizes", [(4, 4, 2), (3,), (5, 1)])
def test_train_epoch_steps_once_per_batch_and_returns_the_mean_loss_per_item(sizes):
    checks.check_train_epoch(train_epoch, sizes)


@pytest.mark.exercise("train_epoch")
def test_train_epoch_is_what_fit_runs():
    """fit hands train_epoch its own loss function and optimizer (which clips and schedules): the record
    holds every step's loss and the running loss is their per-item mean."""
    model, batches, loss_fn, reference = checks.loop_problem((4, 4, 2))
    history = fit(model, batches, loss_fn=lambda m, b: loss_fn(m, b)[0],
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, train_epoch=train_epoch,
                  progress=False)
    record = history.last()
    assert len(record["step_losses"]) == 3, f"expected 3 step losses, got {record['step_losses']}"
    assert abs(record["train_loss"] - reference["loss"]) < 1e-5, (
        f"expected the running loss {reference['loss']:.6f}, got {record['train_loss']:.6f}")
    assert torch.allclose(model.weight, reference["weight"], atol=1e-6)


@pytest.mark.exercise("evaluate_classifier")
@pytest.mark.parametrize("correct_per_batch", [((4, 4), (2, 4), (1, 2)), ((0, 3),), ((1, 1), (5, 5))])
def test_evaluate_classifier_over_the_whole_split_in_eval_mode(correct_per_batch):
    checks.check_evaluate(evaluate_classifier, correct_per_batch)


@pytest.mark.exercise("evaluate_classifier")
def test_course_vgg_overfits_64_images():
    """The sanity check: with Adam, the course's network at an eighth of its widths (no dropout) reaches
    100% training accuracy on 64 images within 40 epochs of the student's loop."""
    x, y = _images(64)
    torch.manual_seed(0)
    model = CourseVGG([120.0] * 3, [60.0] * 3, width=0.125, dropout=0.0)
    checks.check_overfits(model, train_epoch, evaluate_classifier, x, y)


# ---- wrong-but-runnable variants: the same checks reject each, naming what was expected --------------


def _never_steps(model, batches, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        total, count = total + loss.item() * n, count + n
    return total / count


def _forgets_zero_grad(model, batches, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * n, count + n
    return total / count


def _sums_the_losses(model, batches, loss_fn, optimizer):
    model.train()
    total = 0.0
    for batch in batches:
        loss, _ = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def _mean_of_batch_means(model, batches, loss_fn, optimizer):
    model.train()
    losses = []
    for batch in batches:
        loss, _ = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _stays_in_eval_mode(model, batches, loss_fn, optimizer):
    total, count = 0.0, 0
    for batch in batches:
        loss, n = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * n, count + n
    return total / count


def _tiny_cnn() -> nn.Module:
    """A small CNN defined here (not the student's), to show the overfitting check on the wrong loops."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 64, 10))


def _reference_accuracy(model, batches):
    model.eval()
    with torch.no_grad():
        x, y = batches[0]
        return (model(x).argmax(1) == y).double().mean().item(), 0.0


@pytest.mark.parametrize("wrong, message", [
    (_never_steps, r"expected 3 optimizer steps \(one per batch\), got 0"),
    (_forgets_zero_grad, r"expected the weights after 3 SGD steps, each on its own batch's gradient, to be "
                         r"\[.*\], got \[.*\] \(zero the gradients before every backward\)"),
    (_sums_the_losses, r"expected the running loss \d\.\d{6} \(the mean loss per item over the epoch: "
                       r"sum\(loss \* n\) / sum\(n\) over batches of \[4, 4, 2\] items\), got"),
    (_mean_of_batch_means, r"expected the running loss \d\.\d{6} \(the mean loss per item"),
    (_stays_in_eval_mode, r"expected the model in training mode for every batch \(call model.train\(\)\)"),
])
def test_wrong_training_loops_fail_the_loop_check(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_train_epoch(wrong)


def test_a_loop_that_never_steps_fails_the_overfitting_check():
    x, y = _images(64)
    with pytest.raises(AssertionError, match=r"expected 100% training accuracy on 64 images within 5 epochs, "
                                             r"got at best \d+%"):
        checks.check_overfits(_tiny_cnn(), _never_steps, _reference_accuracy, x.float() / 255, y,
                              max_epochs=5)


def _left_in_training_mode(model, batches):
    correct, loss_sum, count = 0, 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            count += len(y)
    return correct / count, loss_sum / count


def _with_gradients(model, batches):
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    for x, y in batches:
        logits = model(x).detach()
        correct += int((logits.argmax(1) == y).sum())
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        count += len(y)
    return correct / count, loss_sum / count


def _mean_of_batch_accuracies(model, batches):
    model.eval()
    accuracies, losses = [], []
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            accuracies.append((logits.argmax(1) == y).float().mean().item())
            losses.append(F.cross_entropy(logits, y).item())
    return sum(accuracies) / len(accuracies), sum(losses) / len(losses)


def _summed_loss(model, batches):
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            count += len(y)
    return correct / count, loss_sum


@pytest.mark.parametrize("wrong, message", [
    (_left_in_training_mode, r"expected the model in eval mode \(model.eval\(\)\) while evaluating"),
    (_with_gradients, r"expected the forward passes under torch.no_grad\(\)"),
    (_mean_of_batch_accuracies, r"expected accuracy 0.7000 \(7 of 10 items correct over the whole split\), "
                                r"got 0.6667"),
    (_summed_loss, r"expected the mean cross-entropy per item \d\.\d{6} \(summed over all 10 items, divided "
                   r"by 10\), got"),
])
def test_wrong_evaluation_loops_fail_the_evaluation_check(wrong, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_evaluate(wrong)
