"""The benchmarks at a tiny size: the figures they return and print, and that what they compare agrees.

Only the structure and the agreement of the results are checked, never the speed (the targets live in
the benchmarks themselves). The peers a benchmark runs beside the workbook are optional packages
(airbench and torchvision; lingua-language-detector, py3langid, pycld2): where one is missing its part is
skipped, or the benchmark's row for it says how to install it.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "numpy_conv.py"


def _load_benchmark(path: Path, name: str):
    """The benchmark script ``path`` imported as module ``name`` (skipped where benchmarks/ is absent)."""
    if not path.is_file():
        pytest.skip("benchmarks/ is not part of the student release")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
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


CIFAR_REFERENCE = BENCHMARK.parent / "cifar_reference.py"


@pytest.fixture(scope="module")
def cifar_reference():
    return _load_benchmark(CIFAR_REFERENCE, "cifar_reference_benchmark")


def test_cifar_reference_trains_both_sides_at_a_tiny_size(cifar_reference, monkeypatch, tmp_path):
    reason = "airbench is not installed (pip install airbench==0.1.8 torchvision)"
    airbench = pytest.importorskip("airbench", reason=reason)
    import torch

    from course_lib.cnn import LAPTOP
    from tests.cnn.synthetic import learnable_split

    hyp = airbench.lib_airbench94.hyp  # airbench's own net and loader, made tiny through its settings
    monkeypatch.setitem(hyp["opt"], "batch_size", 16)
    for block, width in (("block1", 8), ("block2", 16), ("block3", 16)):
        monkeypatch.setitem(hyp["net"]["widths"], block, width)
    originals = (torch.nn.Module.half, torch.nn.Module.cuda, torch.Tensor.half, torch.cuda.Event)
    train, test = learnable_split(64, 0), learnable_split(32, 1)
    folder = cifar_reference.write_airbench_data(train, test, tmp_path, seed=0)
    saved = torch.load(folder / "cifar10" / "train.pt", weights_only=True)
    assert saved["images"].shape == (64, 32, 32, 3) and saved["classes"] == list(train.classes)
    assert sorted(saved["labels"].tolist()) == sorted(train.labels.tolist())  # the same images, shuffled
    theirs = cifar_reference.run_airbench(airbench, folder, epochs=1.5, seed=0, amp=True)  # bf16 if native
    assert (torch.nn.Module.half, torch.nn.Module.cuda, torch.Tensor.half, torch.cuda.Event) == originals
    settings = LAPTOP.override(batch_size=8, widths=(8, 16, 16), epochs=2, train_eval_size=16)
    ours = cifar_reference.run_workbook(settings, train, test, seed=0)
    assert theirs["steps"] == 6 and ours["steps"] == 16  # ceil(4 batches x 1.5 epochs); 8 x 2
    assert theirs["images"] == 96 and ours["images"] == 128
    for side in (ours, theirs):
        assert 0 <= side["test_accuracy"] <= 1 and side["train_s"] > 0 and side["tta_s"] > 0
    ratios = cifar_reference.compare(ours, theirs)
    assert ratios["accuracy_difference"] == pytest.approx(ours["test_accuracy"] - theirs["test_accuracy"])
    assert ratios["image_time_ratio"] == pytest.approx(ratios["train_time_ratio"] * 96 / 128)
    assert ratios["images_ratio"] == pytest.approx(128 / 96)
    with pytest.raises(FileNotFoundError, match="train.pt is missing"):
        cifar_reference.run_airbench(airbench, tmp_path / "empty", epochs=1, seed=0, amp=False)
    profile = cifar_reference.step_profile(airbench, settings, train, folder, rounds=2, seed=0)
    for what in cifar_reference.WHAT:
        for side in ("workbook", "airbench94"):
            timing = profile[f"{side} {what}"]
            assert 0 < timing["cpu"]["min"] <= timing["cpu"]["median"]
        ours, theirs = (profile[f"{side} {what}"]["wall"]["min"] for side in ("workbook", "airbench94"))
        assert profile[f"ratio {what}"]["wall"]["min"] == pytest.approx(ours / 8 / (theirs / 16))  # per image
    steps = {side: (e["steps"], e["trained_bias_steps"]) for side, e in profile["run estimate"].items()}
    assert steps == {"airbench94": (40, 12), "workbook, 1 epochs": (8, 8), "workbook, 2 epochs": (16, 16),
                     "workbook, 3 epochs": (24, 24)}  # 4 batches x 9.9 epochs (8 of ours); bias: 3 epochs


def test_cifar_reference_runs_only_airbenchs_forward_under_autocast(cifar_reference):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    wrapped = cifar_reference.autocast_forward(net, amp=True)
    assert wrapped is net and net(torch.ones(2, 4)).dtype == torch.float32  # float32 logits either way
    assert (torch.ones(3, 3) @ torch.ones(3, 3)).dtype == torch.float32  # nothing leaks out of the forward
    assert isinstance(net[0], torch.nn.Linear)  # indexed as airbench indexes its net


def test_cifar_reference_keeps_the_profiles_values_unless_an_option_is_given(cifar_reference):
    from course_lib.cnn import LAPTOP

    assert cifar_reference.chosen_settings(cifar_reference.parse_args([])) == LAPTOP
    chosen = cifar_reference.chosen_settings(cifar_reference.parse_args(
        ["--epochs", "3", "--train-size", "500", "--set", "lr=0.5", "--set", "optimizer=sgd_one_cycle"]))
    assert chosen == LAPTOP.override(epochs=3, train_size=500, lr=0.5, optimizer="sgd_one_cycle")


def test_cifar_reference_reads_settings_as_json(cifar_reference):
    assert cifar_reference.parse_setting("epochs=10") == ("epochs", 10)
    assert cifar_reference.parse_setting("architecture=vgg") == ("architecture", "vgg")
    assert cifar_reference.parse_setting("widths=[8, 16]") == ("widths", [8, 16])


LANGID_PEERS = BENCHMARK.parent / "langid_peers.py"
GPU_CHECK = BENCHMARK.parent / "gpu_check.py"


@pytest.fixture(scope="module")
def langid_peers():
    return _load_benchmark(LANGID_PEERS, "langid_peers_benchmark")


def test_langid_peers_prints_the_strong_model_beside_each_peer(langid_peers, data_root, capsys):
    figures = langid_peers.main(["--profile", "smoke", "--data-root", str(data_root), "--set",
                                 'languages=["eng", "deu", "fin"]', "--set", "max_per_language=30",
                                 "--set", "strong_features=300", "--set", "strong_epochs=2"])
    printed = capsys.readouterr().out
    table = figures["table"]
    assert list(table.index) == ["strong net", "linear SVM", "lingua", "langid.py", "CLD2"]
    assert figures["n_test"] == 18 and 0 <= table.loc["strong net", "accuracy"] <= 1
    for peer, module in (("lingua", "lingua"), ("langid.py", "py3langid"), ("CLD2", "pycld2")):
        installed = importlib.util.find_spec(module) is not None
        assert math.isnan(table.loc[peer, "accuracy"]) is not installed
        assert ("not installed: pip install" in table.loc[peer, "note"]) is not installed
    assert "strong net ahead of:" in printed and "errors / strong net's" in printed


@pytest.fixture(scope="module")
def gpu_check():
    return _load_benchmark(GPU_CHECK, "gpu_check_benchmark")


def test_gpu_check_dry_run_checks_every_override_and_needs_no_gpu(gpu_check, capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert all(task.name in printed for task in gpu_check.TASKS)
    assert sum(task.limit_s for task in gpu_check.TASKS) <= gpu_check.BUDGET_S
    with pytest.raises(ValueError, match="unknown parameter"):
        gpu_check.check_plan((gpu_check.Task("bad", "notebook", "02", {"epochz": 1}),), "offline")
    with pytest.raises(ValueError, match="epochs=0 is not valid"):
        gpu_check.check_plan((gpu_check.Task("bad", "sweep", "lm", {"epochs": 0}),), "offline")
    assert gpu_check.main(["--only", "no_such_task"]) == 2


def test_gpu_check_stops_before_running_anything_without_cuda(gpu_check, monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--only", "03_full", "--out", str(tmp_path / "out")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_gpu_check_summarises_rates_and_headlines(gpu_check):
    rates = gpu_check.throughputs({"train_time_s": 10.0, "train_size": 1000, "epochs": 2, "tokens_per_s": 5.0,
                                   "test_accuracy": 0.5, "amp": True})
    assert rates == {"train_time_s": 10.0, "tokens_per_s": 5.0, "images_per_s": 200.0}
    results = [{"task": "02_full", "ok": True, "seconds": 12.0, "peak_gpu_memory_mib": 2048.0,
                "mean_gpu_utilisation": 80.0, "throughput": rates, "headline": {"test_accuracy": 0.5}},
               {"task": "01_full", "ok": False, "skipped": True, "error": "skipped: 10 s left"}]
    table = gpu_check.summary_markdown(results, "NVIDIA H100", "offline")
    assert "| 02_full | ok | 12 | 2,048 | 80 | train_time_s 10.0" in table and "images_per_s 200.0" in table
    assert "| 01_full | skipped | 0 |  |  |  | skipped: 10 s left |" in table


def test_gpu_check_names_the_missing_data_of_a_task(gpu_check, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    by_name = {task.name: task for task in gpu_check.TASKS}
    assert "data missing" in gpu_check.missing_data(by_name["02_full_compile"])
    assert "wikitext-2" in gpu_check.missing_data(by_name["lm_sweep_full"])
