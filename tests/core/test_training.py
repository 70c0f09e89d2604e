"""core.training: the generic loop, checkpoints and resume, and the shared measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.core.training import (
    RateSchedule,
    Schedule,
    TrainingDiverged,
    accuracy,
    count_parameters,
    fit,
    load_checkpoint,
    train_one_epoch,
)


def _regression(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)


def _mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x).squeeze(-1), y)


def test_fit_learns_and_records_history(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=5, progress=False,
               evaluate=lambda m: {"valid_loss": 1.0})
    losses = hist.column("train_loss")
    assert len(losses) == 5 and losses[-1] < 0.05 < losses[0]
    last = hist.last()
    assert last["valid_loss"] == 1.0 and last["epoch_time_s"] > 0 and last["items_per_s"] > 0
    assert last["peak_gpu_memory_mb"] is None
    assert list(hist.to_frame().index) == [1, 2, 3, 4, 5]


def test_fit_stops_on_exploding_loss():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)  # diverges
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=20, progress=False)


def test_fit_stops_on_nan_loss():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDiverged, match="nan"):
        fit(model, _regression(), loss_fn=lambda m, b: _mse(m, b) * math.nan, optimizer=opt,
            epochs=1, progress=False)


def test_fit_clips_gradients():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    hist = fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=3, grad_clip=0.01,
               progress=False)
    assert all(math.isfinite(v) for v in hist.column("train_loss"))


def test_fit_resumes_from_checkpoint_identically(tmp_path):
    def make():
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        return model, torch.optim.Adam(model.parameters(), lr=0.05)

    model, opt = make()
    straight = fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=4, progress=False)

    ckpt = tmp_path / "ckpt.pt"
    model, opt = make()
    fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=2, checkpoint_path=ckpt,
        progress=False)
    assert load_checkpoint(ckpt)["epoch"] == 2
    model, opt = make()  # a fresh process: resumes at epoch 3
    resumed = fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=4,
                  checkpoint_path=ckpt, progress=False)
    assert resumed.column("epoch") == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.column("train_loss"), straight.column("train_loss"),
                               rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


class _EpochAwareLoader:
    """The regression batches, recording every epoch ``fit`` announces through ``set_epoch``."""

    def __init__(self) -> None:
        self.batches, self.announced = _regression(), []

    def set_epoch(self, epoch: int) -> None:
        self.announced.append(epoch)

    def __iter__(self):
        return iter(self.batches)


def test_fit_tells_an_epoch_aware_loader_each_epoch_also_when_resuming(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    for epochs, expected in [(2, [1, 2]), (4, [3, 4])]:  # the second call resumes after epoch 2
        model = nn.Linear(4, 1)
        loader = _EpochAwareLoader()
        fit(model, loader, loss_fn=_mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=epochs,
            checkpoint_path=ckpt, progress=False)
        assert loader.announced == expected


class _Counting(Schedule):
    """Counts the calls ``fit`` makes and keeps them in checkpoints."""

    def __init__(self) -> None:
        self.steps, self.epochs = 0, []

    def after_step(self) -> None:
        self.steps += 1

    def after_epoch(self, record) -> None:
        self.epochs.append(record["epoch"])

    def state_dict(self):
        return {"steps": self.steps, "epochs": list(self.epochs)}

    def load_state_dict(self, state) -> None:
        self.steps, self.epochs = state["steps"], list(state["epochs"])


def test_fit_moves_the_schedule_after_every_step_and_every_epoch_and_resumes_it(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    for epochs, steps, seen in [(2, 2 * 8, [1, 2]), (3, 3 * 8, [1, 2, 3])]:  # the second call resumes
        model = nn.Linear(4, 1)
        schedule = _Counting()
        fit(model, _regression(), loss_fn=_mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=epochs, schedule=schedule, checkpoint_path=ckpt, progress=False)
        assert (schedule.steps, schedule.epochs) == (steps, seen)
    schedule.metric = "valid_loss"
    with pytest.raises(ValueError, match="_Counting reads 'valid_loss' from evaluate"):
        fit(model, _regression(), loss_fn=_mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1, schedule=schedule)


def test_rate_schedule_sets_each_groups_rate_from_its_factor_of_the_step():
    w, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w], "lr": 1.0}, {"params": [b], "lr": 0.5}])
    schedule = RateSchedule(opt, [lambda step: 1.0 / (step + 1), lambda step: 2.0 ** step])
    rates = []
    for _ in range(3):
        rates.append([g["lr"] for g in opt.param_groups])
        schedule.after_step()
    assert rates == [[1.0, 0.5], [0.5, 1.0], [1.0 / 3, 2.0]]
    again = RateSchedule(torch.optim.SGD([w], lr=1.0), lambda step: 1.0)
    again.load_state_dict(schedule.state_dict())
    assert (again.step, again.base_lrs) == (3, [1.0, 0.5])
    with pytest.raises(ValueError, match="2 factors for 1 parameter groups"):
        RateSchedule(torch.optim.SGD([w], lr=1.0), [lambda step: 1.0] * 2)


def test_fit_calls_the_epoch_function_it_is_given():
    """A hand-written epoch (as a student writes it) trains exactly as the library's default."""

    def my_epoch(model, batches, loss_fn, optimizer):
        losses = []
        for batch in batches:
            loss, n = loss_fn(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return sum(losses) / len(losses)  # every batch has 32 items

    runs = []
    for train_epoch in (train_one_epoch, my_epoch):
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        runs.append(fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=2, grad_clip=0.5,
                        progress=False, train_epoch=train_epoch))
    assert runs[0].column("step_losses") == runs[1].column("step_losses")
    assert runs[0].column("train_loss") == pytest.approx(runs[1].column("train_loss"), rel=1e-12)


def test_count_parameters_and_accuracy():
    layer = nn.Linear(4, 3)
    assert count_parameters(layer) == 15
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 12 and count_parameters(layer, trainable_only=False) == 15
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    assert accuracy(torch.tensor([1, 1]), torch.tensor([1, 0])) == 0.5
    with pytest.raises(ValueError, match="differ"):
        accuracy(np.zeros(3), np.zeros(4))


@pytest.mark.fault("recovery")
def test_resume_is_exact_with_a_shuffling_loader_and_every_generator(tmp_path):
    """Killed after epoch 2 and resumed in a fresh process: the same batches, dropout masks, numpy and
    python draws, hence the same losses as an uninterrupted run."""
    import random

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 4, generator=g), torch.randn(96, generator=g)

    def make():
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                            generator=torch.Generator().manual_seed(1))
        return model, torch.optim.Adam(model.parameters(), lr=0.01), loader

    def loss(model, batch):  # draws from numpy and python too
        noise = float(np.random.rand()) * 1e-3 + random.random() * 1e-3
        return _mse(model, batch) + noise

    model, opt, loader = make()
    straight = fit(model, loader, loss_fn=loss, optimizer=opt, epochs=4, progress=False)
    ckpt = tmp_path / "ckpt.pt"
    model, opt, loader = make()
    fit(model, loader, loss_fn=loss, optimizer=opt, epochs=2, checkpoint_path=ckpt, progress=False)
    model, opt, loader = make()
    resumed = fit(model, loader, loss_fn=loss, optimizer=opt, epochs=4, checkpoint_path=ckpt, progress=False)
    assert resumed.column("train_loss") == straight.column("train_loss")


@pytest.mark.fault("clear_error")
def test_divergence_guard_stops_above_the_uniform_limit():
    from course_lib.core.training import divergence_limit

    assert divergence_limit(10) == pytest.approx(3 * math.log(10))
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 10, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = nn.Linear(4, 10)
    opt = torch.optim.SGD(model.parameters(), lr=1e4)  # any optimizer: the guard is on the loss itself

    def ce(m, batch):
        return nn.functional.cross_entropy(m(batch[0]), batch[1])

    with pytest.raises(TrainingDiverged, match=r"limit 6\.908"):
        fit(model, loader, loss_fn=ce, optimizer=opt, epochs=3, max_loss=divergence_limit(10), progress=False)
    model = nn.Linear(4, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(TrainingDiverged, match=r"valid_loss became inf after epoch 1"):
        fit(model, loader, loss_fn=ce, optimizer=opt, epochs=2, max_loss=divergence_limit(10), progress=False,
            evaluate=lambda m: {"valid_loss": math.inf})


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("fault", ["other_key", "truncated", "other_model"])
def test_stale_or_damaged_checkpoints_are_never_resumed(tmp_path, fault, capsys):
    ckpt = tmp_path / "ckpt.pt"

    def run(key, model=None, epochs=2):
        torch.manual_seed(0)
        model = model or nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        return fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=epochs, checkpoint_path=ckpt,
                   checkpoint_key=key, progress=False)

    fresh = run({"lr": 0.05})
    if fault == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:100])
        again = run({"lr": 0.05})
    elif fault == "other_key":
        again = run({"lr": 0.01})
    else:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        again = fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=2, checkpoint_path=ckpt,
                    checkpoint_key={"lr": 0.05}, progress=False)
    out = capsys.readouterr().out
    assert "training from the start" in out and out.count("\n") == 1
    assert again.column("epoch") == [1, 2]  # trained afresh, not served the old history
    if fault != "other_model":
        assert again.column("train_loss") == fresh.column("train_loss")


def test_every_step_loss_is_kept_and_curved():
    from course_lib.core.training import History

    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    hist = fit(model, _regression(), loss_fn=_mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               epochs=2, progress=False)
    steps = [e["step_losses"] for e in hist.epochs]
    assert [len(s) for s in steps] == [8, 8] and np.isclose(np.mean(steps[0]), hist.epochs[0]["train_loss"])
    assert "step_losses" not in hist.to_frame().columns
    toy = History([{"epoch": 1, "step_losses": [4.0, 2.0, 6.0]}, {"epoch": 2, "step_losses": [8.0]}])
    assert toy.step_curve() == ([1 / 3, 2 / 3, 1.0, 2.0], [4.0, 2.0, 6.0, 8.0])
    assert toy.step_curve(2, scale=0.5) == ([2 / 3, 1.0, 2.0], [1.5, 3.0, 4.0])
    with pytest.raises(ValueError, match="every=0"):
        toy.step_curve(0)
