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


def _load_benchmark(path: Path, name: str):
    """The benchmark script ``path`` imported as module ``name`` (skipped where benchmarks/ is absent)."""
    if not path.is_file():
        pytest.skip("benchmarks/ is not part of the student release")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def numpy_conv_benchmark():
    return _load_benchmark(BENCHMARK, "numpy_conv_benchmark")


OPERATIONS = ("conv", "max pool", "average pool")
RATIOS = ("min_ratio", "median_ratio", "paired_ratio")


def test_numpy_conv_benchmark_tiny(numpy_conv_benchmark, capsys):
    figures = numpy_conv_benchmark.main(["--batch", "2", "--size", "6", "--rounds", "3", "--loop-rounds", "1",
                                         "--sample-ms", "1", "--threads", "1", "--runs", "1"])
    printed = capsys.readouterr().out
    assert figures["threads"]["requested"] == figures["threads"]["torch"] == 1
    assert figures["threads"]["blas"] and all(entry.endswith(" 1") for entry in figures["threads"]["blas"])
    assert isinstance(figures["machine"], str) and figures["machine"] in printed
    [run] = figures["runs"]
    for op in OPERATIONS:
        blocks, alternate = run["blocks"][op], run["alternate"][op]
        for result, timed in ((blocks, [("torch", 3), ("fast", 3), ("loop", 1)]),
                              (alternate, [("torch", 3), ("fast", 3)])):
            assert set(result) >= {name for name, _ in timed}
            for name, rounds in timed:
                r = result[name]
                assert r["rounds"] == rounds
                assert 0 < r["min_s"] <= r["median_s"]
                assert all(math.isfinite(r[key]) and r[key] > 0 for key in RATIOS)
            assert all(result["torch"][key] == 1 for key in RATIOS)
        assert "loop" not in alternate and "target_met" not in alternate
        speedup = blocks["loop"]["median_s"] / blocks["fast"]["median_s"]
        assert blocks["fast_vs_loop"] == pytest.approx(speedup)
        assert set(blocks["max_abs_error"]) == {"fast", "loop"}
        assert max(blocks["max_abs_error"].values()) < 1e-10
        assert isinstance(blocks["target_met"], bool)
        for pattern in ("blocks", "alternate"):  # one run: the range is that run's median
            ratio = run[pattern][op]["fast"]["median_ratio"]
            assert figures["range"][pattern][op] == {"min": ratio, "median": ratio, "max": ratio}
    assert figures["targets_met"] == all(run["blocks"][op]["target_met"] for op in OPERATIONS)
    assert "threads: torch 1, numpy BLAS" in printed and "all targets: " in printed
    assert "[alternate]" in printed and "over 1 run(s): min / median / max" in printed


def test_numpy_conv_range_spans_the_runs(numpy_conv_benchmark):
    def run(ratio: float) -> dict:
        return {pattern: {op: {"fast": {"median_ratio": ratio}} for op in OPERATIONS}
                for pattern in ("blocks", "alternate")}

    spread = numpy_conv_benchmark.spread([run(0.9), run(1.2), run(0.8)])
    assert spread["blocks"]["conv"] == {"min": 0.8, "median": 0.9, "max": 1.2}
    assert spread["alternate"]["average pool"]["max"] == 1.2


LM_REFERENCE = BENCHMARK.parent / "lm_reference.py"
FAKE_MAIN = '''import sys
args = sys.argv[1:]
epochs = int(args[args.index("--epochs") + 1])
for e in range(1, epochs + 1):
    print(f"| epoch {e:3d} |   200/  310 batches | lr 20.00 | ms/batch {100.0 * e:5.2f} | loss  6.00 "
          "| ppl   400.00")
    print(f"| end of epoch {e:3d} | time: 60.00s | valid loss  5.50 | valid ppl   {300.0 - e:6.2f}")
print("| End of training | test loss  5.40 | test ppl   210.50")
'''


@pytest.fixture(scope="module")
def lm_reference_benchmark():
    return _load_benchmark(LM_REFERENCE, "lm_reference_benchmark")


def test_lm_reference_writes_the_offline_split_as_the_workbook_reads_it(lm_reference_benchmark, tmp_path):
    from course_lib.core.data import require
    from course_lib.lm.data import load_wikitext2

    root = require("wikitext-2")
    vocab_size = lm_reference_benchmark.write_offline_split(root, tmp_path)
    corpus = load_wikitext2("offline", folder=root)
    assert vocab_size == len(corpus.vocab)
    words = {w for part in ("train", "valid", "test") for w in (tmp_path / f"{part}.txt").read_text().split()}
    assert words <= set(corpus.vocab.stoi)  # unseen words were written as <unk>
    train_words = (tmp_path / "train.txt").read_text().split()
    assert len(train_words) + len((tmp_path / "train.txt").read_text().splitlines()) == len(corpus.train)


def test_lm_reference_reads_the_reference_log(lm_reference_benchmark, tmp_path):
    folder = tmp_path / "examples" / "word_language_model"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(FAKE_MAIN)
    figures = lm_reference_benchmark.run_reference(tmp_path / "examples", tmp_path, epochs=3, threads=1)
    assert figures["valid_ppl"] == 297.0 and figures["test_ppl"] == 210.5
    assert math.isclose(figures["tokens_per_s"], sum(20 * 35 / (ms / 1000) for ms in (100, 200, 300)) / 3)
    (folder / "main.py").write_text(FAKE_MAIN.replace("End of training", "stopped"))  # no test line
    with pytest.raises(RuntimeError, match="unexpected output"):
        lm_reference_benchmark.run_reference(tmp_path / "examples", tmp_path, epochs=3, threads=1)
