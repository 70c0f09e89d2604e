"""core.device: seeding, device choice, CPU threads, autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.core.device import (
    autocast,
    cpu_threads,
    seed_everything,
    select_device,
    set_cpu_threads,
)


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
    with pytest.raises(ValueError, match=r"'gpu'.*\['auto', 'cpu', 'cuda', 'mps'\]"):
        select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            select_device("cuda")


def test_cpu_threads_are_set_in_one_place_and_restored():
    before = torch.get_num_threads()
    with cpu_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    assert set_cpu_threads(None) == before and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="cpu_threads must be >= 1"):
        set_cpu_threads(0)


@pytest.mark.parametrize(("native", "amp", "dtype"), [
    (True, True, torch.bfloat16), (False, True, torch.float32), (True, False, torch.float32)])
def test_autocast_on_the_cpu_only_where_bf16_is_native(monkeypatch, native, amp, dtype):
    from course_lib.core import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    with autocast("cpu", amp=amp):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == dtype


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from course_lib.core import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    assert select_device("auto").type == "mps" and select_device("mps").type == "mps"
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    assert select_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="no Apple GPU is available"):
        select_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"


def test_the_cpu_is_named_in_the_device_name():
    from course_lib.core.device import cpu_model, device_name

    assert cpu_model().strip() and cpu_model() in device_name(torch.device("cpu"))
