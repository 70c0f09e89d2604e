"""Seeding, device selection, CPU threads, autocast, and the reproducibility record of every run."""

from __future__ import annotations

import functools
import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from course_lib.core.settings import check_choice

DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (CPU and CUDA); set cuDNN to deterministic mode if asked."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's ``mps``, then the CPU; asking for an absent one is an error."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "mps" and not _mps_available():
        raise RuntimeError("device='mps' was asked for but no Apple GPU is available; use 'auto' or 'cpu'")
    return torch.device(device)


def set_cpu_threads(n: int | None, device: torch.device | str = "cpu") -> int:
    """Set torch's intra-op thread count to ``n`` on the CPU; return the previous count.

    ``None`` (or a GPU device) leaves torch alone. One thread makes CPU results independent of the
    core count, and small models (MLPs, LSTMs on short sequences) run fastest single-threaded.
    This is the one place the workbook sets threads (``start_run`` calls it with ``cpu_threads``).
    """
    before = torch.get_num_threads()
    if n is None or torch.device(device).type != "cpu":
        return before
    if n < 1:
        raise ValueError(f"cpu_threads must be >= 1 or None, got {n}")
    torch.set_num_threads(n)
    return before


@contextmanager
def cpu_threads(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with :func:`set_cpu_threads` ``(n)``, then restore the previous count."""
    before = set_cpu_threads(n, device)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX) and oneDNN may use it: there bf16
    autocast about halves a convolution's time; elsewhere it would be emulated, and slower than float32."""
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(native and torch.backends.mkldnn.enabled and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(device: torch.device | str, amp: bool) -> torch.dtype:
    """What :func:`autocast` computes in: bfloat16 when ``amp``, on CUDA and on a CPU with native bf16
    (:func:`cpu_has_native_bf16`); float32 otherwise."""
    kind = torch.device(device).type
    native = kind == "cuda" or (kind == "cpu" and cpu_has_native_bf16())
    return torch.bfloat16 if amp and native else torch.float32


def autocast(device: torch.device | str, amp: bool):
    """bfloat16 autocast where :func:`amp_dtype` says so; a no-op context otherwise (float32)."""
    if amp_dtype(device, amp) == torch.bfloat16:
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()


def cpu_model() -> str:
    """The processor's name: Linux's ``model name`` (``platform.processor()`` is often empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def device_name(device: torch.device) -> str:
    """Human-readable name: the GPU model, or the CPU architecture and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple GPU (mps) on {platform.machine()}"
    return f"CPU {platform.machine()} x{os.cpu_count()} ({cpu_model()})"


_PACKAGES = ("torch", "numpy", "scikit-learn", "skorch", "transformers", "pandas")


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (or course_lib), ``None`` outside git."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(device: torch.device, seed: int) -> dict:
    """Package versions, python, device name, seed and git commit, for ``run_record.json``."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "device": str(device),
        "device_name": device_name(device),
        "seed": seed,
        "git_commit": git_commit(),
    }
