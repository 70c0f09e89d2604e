"""core.device: seeding, device choice, CPU threads, autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.core.device import autocast, cpu_threads, seed_everything, select_device, set_cpu_threads


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


def test_autocast_is_a_no_op_on_the_cpu():
    with autocast("cpu", amp=True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


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
