"""Core: data root resolution, seeding, device choice, run setup, atomic records, training loop."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.assignments import ASSIGNMENTS, PROFILES, get_assignment
from course_lib.data import resolve_data_root
from course_lib.recording import atomic_save_npy, atomic_write_json, flat_metrics, settings_digest
from course_lib.reproducibility import seed_everything, select_device
from course_lib.runs import read_metrics, start_run
from course_lib.training import TrainingDiverged, fit, load_checkpoint


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert resolve_data_root() == (tmp_path / "env").resolve()
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert resolve_data_root() == (tmp_path / "data").resolve()


def test_seed_everything_repeats_all_generators():
    def draw():
        seed_everything(123)
        return np.random.rand(), torch.rand(1).item(), __import__("random").random()

    assert draw() == draw()
    with pytest.raises(TypeError, match="seed"):
        seed_everything("1")


def test_select_device_validates():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match=r"'gpu'.*\['auto', 'cpu', 'cuda'\]"):
        select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            select_device("cuda")


def test_start_run_validates_and_records(tmp_path):
    with pytest.raises(ValueError, match=r"profile='fast'.*\['smoke', 'full'\]"):
        start_run("02", profile="fast", output_dir=tmp_path)
    with pytest.raises(ValueError, match="device='tpu'"):
        start_run("02", device="tpu", output_dir=tmp_path)
    with pytest.raises(KeyError, match="02_cnn"):
        start_run("99", output_dir=tmp_path)
    threads = torch.get_num_threads()
    run = start_run("02", profile="smoke", device="cpu", output_dir=tmp_path, seed=7,
                    overrides={"epochs": 5, "lr": None, "cpu_threads": 1})
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    assert run.config["epochs"] == 5
    assert run.config["lr"] == ASSIGNMENTS["02"].profiles["smoke"]["lr"]
    record = json.loads((tmp_path / "run_record.json").read_text())
    assert record["seed"] == 7 and record["profile"] == "smoke"
    assert record["packages"]["torch"] == torch.__version__.split("+")[0]
    assert "device_name" in record and "git_commit" in record
    run.record_metrics(test_accuracy=np.float32(0.5), n=3)
    run.record_metrics(extra=1.5)
    assert read_metrics(tmp_path) == {"test_accuracy": 0.5, "n": 3, "extra": 1.5}


def test_metrics_must_be_flat():
    with pytest.raises(TypeError, match="flat"):
        flat_metrics({"a": {"b": 1}})
    assert flat_metrics({"x": float("nan")}) == {"x": None}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"v": np.int64(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_npy_cache_and_settings_digest(tmp_path):
    atomic_save_npy(tmp_path / "a.npy", np.arange(5))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]
    a = settings_digest({"lr": 0.1, "widths": (16, 32)})
    assert a == settings_digest({"widths": [16, 32], "lr": 0.1}) and len(a) == 12
    assert a != settings_digest({"lr": 0.2, "widths": (16, 32)})


def test_every_assignment_entry_is_complete():
    for a in ASSIGNMENTS.values():
        assert set(a.profiles) == set(PROFILES), a.name
        assert a.headline and set(a.expected) == set(PROFILES), a.name
        for profile in PROFILES:
            assert set(a.headline) <= set(a.expected[profile]), a.name
        assert get_assignment(a.name) is a


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


def test_fit_steps_scheduler_per_batch_or_per_epoch():
    for interval, expected in [("step", 3 * 8), ("epoch", 3)]:
        model = nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1000)
        fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=3, scheduler=sched,
            scheduler_interval=interval, progress=False)
        assert sched.last_epoch == expected, interval
    with pytest.raises(ValueError, match=r"'batch'.*\['epoch', 'step'\]"):
        fit(model, _regression(), loss_fn=_mse, optimizer=opt, epochs=1, scheduler_interval="batch")
