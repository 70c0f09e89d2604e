"""benchmarks/numpy_conv.py at a tiny size: the figures it returns and prints, and that the candidates agree.

Only the structure and the agreement of the results are checked, never the speed (the targets live in
the benchmark itself).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "numpy_conv.py"


@pytest.fixture(scope="module")
def numpy_conv_benchmark():
    if not BENCHMARK.is_file():
        pytest.skip("benchmarks/ is not part of the student release")
    spec = importlib.util.spec_from_file_location("numpy_conv_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OPERATIONS = ("conv", "max pool", "average pool")
RATIOS = ("min_ratio", "median_ratio", "paired_ratio")


def test_numpy_conv_benchmark_tiny(numpy_conv_benchmark, capsys):
    figures = numpy_conv_benchmark.main(["--batch", "2", "--size", "6", "--rounds", "3", "--loop-rounds", "1",
                                         "--sample-ms", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    assert figures["threads"]["requested"] == figures["threads"]["torch"] == 1
    assert figures["threads"]["blas"] and all(entry.endswith(" 1") for entry in figures["threads"]["blas"])
    assert isinstance(figures["machine"], str) and figures["machine"] in printed
    for op in OPERATIONS:
        result = figures[op]
        for name, rounds in [("torch", 3), ("fast", 3), ("loop", 1)]:
            r = result[name]
            assert r["rounds"] == rounds
            assert 0 < r["min_s"] <= r["median_s"]
            assert all(math.isfinite(r[key]) and r[key] > 0 for key in RATIOS)
        assert all(result["torch"][key] == 1 for key in RATIOS)
        speedup = result["loop"]["median_s"] / result["fast"]["median_s"]
        assert result["fast_vs_loop"] == pytest.approx(speedup)
        assert set(result["max_abs_error"]) == {"fast", "loop"}
        assert max(result["max_abs_error"].values()) < 1e-10
        assert isinstance(result["target_met"], bool)
    assert figures["targets_met"] == all(figures[op]["target_met"] for op in OPERATIONS)
    assert "threads: torch 1, numpy BLAS" in printed and "all targets: " in printed
