"""Assignment 03 training, evaluation, sampling and the comparison of runs, on a synthetic corpus."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.assignments import get_assignment
from course_lib.lm.compare import compare_runs, run_grid, sweep_configs
from course_lib.lm.data import LMCorpus, Vocabulary
from course_lib.lm.embeddings import VocabEmbeddings, vocab_embeddings
from course_lib.lm.models import build_model
from course_lib.lm.sampling import generate, sample_next
from course_lib.lm.train import LMSettings, evaluate_loss, make_optimizer, perplexity, train_language_model

V = 20
RANDOM = VocabEmbeddings("random", None, None)
TINY = dict(epochs=2, batch_size=8, seq_len=16, hidden=32, d_model=32, n_heads=2, dropout=0.0, lr=1e-2)


@pytest.fixture(scope="module")
def cyclic() -> LMCorpus:
    """A stream cycling through 7 of 20 tokens: the next token is fully determined by the last one."""
    vocab = Vocabulary(tuple(f"w{i}" for i in range(V - 1)) + ("<unk>",))
    stream = torch.tensor([3, 1, 4, 15, 9, 2, 6] * 300)
    return LMCorpus("offline", vocab, stream[:1400], stream[1400:1750], stream[1750:])


@pytest.mark.parametrize("model", ["lstm", "gpt1"])
def test_training_learns_a_predictable_stream(cyclic, model, tmp_path):
    settings = LMSettings(model=model, optimizer="adamw", **{**TINY, "epochs": 4})
    result = train_language_model(settings, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3, 4]
    assert history[0]["valid_ppl"] < 15 and result.metrics["test_ppl"] < 2.0  # uniform guessing: 20
    assert result.metrics["tokens_per_s"] > 0 and result.metrics["peak_gpu_memory_mb"] is None
    assert history[1]["wall_time_s"] == pytest.approx(history[0]["epoch_time_s"] + history[1]["epoch_time_s"])
    args = json.loads((tmp_path / "args.json").read_text())
    assert args["model"] == model and args["learning_rate"] == 1e-2 and args["split"] == "offline"


def test_checkpointed_run_resumes_where_it_stopped(cyclic, tmp_path):
    one = LMSettings(model="lstm", **{**TINY, "epochs": 1}, checkpoint=True)
    first = train_language_model(one, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    two = LMSettings(model="lstm", **TINY, checkpoint=True)
    resumed = train_language_model(two, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    assert resumed.history.epochs[0]["valid_loss"] == first.history.epochs[0]["valid_loss"]
    assert len(resumed.history.epochs) == 2


def test_evaluate_loss_is_mean_token_cross_entropy(cyclic):
    torch.manual_seed(0)
    model = build_model("gpt1", V, 1, d_model=16, n_heads=2, max_len=8, dropout=0.0)
    ids = cyclic.valid[:41]  # 5 windows of 8 tokens
    x, y = ids[:40].view(5, 8), ids[1:41].view(5, 8)
    with torch.no_grad():
        expected = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item()
    assert evaluate_loss(model, ids, seq_len=8, batch_size=2) == pytest.approx(expected, rel=1e-5)
    assert perplexity(math.log(5.0)) == pytest.approx(5.0)
    assert perplexity(1e4) == math.inf


def test_settings_and_optimizers_reject_unknown_names():
    with pytest.raises(ValueError, match=r"optimizer='rmsprop'.*'momentum'"):
        LMSettings(optimizer="rmsprop")
    with pytest.raises(ValueError, match=r"model='rnn'"):
        LMSettings(model="rnn")
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert make_optimizer("momentum", params, 0.1).param_groups[0]["momentum"] == 0.9
    assert LMSettings(optimizer="sgd").learning_rate == 1.0 and LMSettings(model="gpt1").dropout_rate == 0.2


def test_unknown_embedding_source_lists_the_choices():
    with pytest.raises(ValueError, match=r"embeddings='word2vec'.*\['glove', 'random'\]"):
        vocab_embeddings(Vocabulary(("a", "<unk>")), "word2vec")


def test_sampling_follows_temperature_and_top_k():
    logits = torch.tensor([[0.0, math.log(3.0), -1.0, -2.0]]).repeat(4000, 1)
    draws = sample_next(logits, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(logits[0], 0)
    assert (draws == 1).float().mean().item() == pytest.approx(probs[1].item(), abs=0.03)
    top2 = sample_next(logits, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(top2.tolist()) == {0, 1}
    assert (top2 == 1).float().mean().item() == pytest.approx(0.75, abs=0.03)
    assert torch.all(sample_next(logits[:5], top_k=1) == 1)
    cold = sample_next(logits[:5], temperature=1e-3, generator=torch.Generator().manual_seed(0))
    assert torch.all(cold == 1)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(logits, top_k=0)


def test_generate_is_seeded_and_continues_the_prompt(cyclic):
    torch.manual_seed(0)
    model = build_model("gpt1", V, 1, d_model=16, n_heads=2, max_len=8, dropout=0.0)
    text = generate(model, cyclic.vocab, "w3 w1", max_tokens=12, seed=5)
    assert text.startswith("w3 w1 ") and len(text.split()) == 14  # longer than max_len: context is cropped
    assert generate(model, cyclic.vocab, "w3 w1", max_tokens=12, seed=5) == text


def test_sweep_has_the_twelve_required_configurations():
    configs = sweep_configs()
    combos = {(c["model"], c["optimizer"], c["num_layers"]) for c in configs}
    expected = {(m, o, 1) for m in ("lstm", "gpt1") for o in ("adam", "adamw", "sgd", "momentum")}
    expected |= {(m, "adamw", n) for m in ("lstm", "gpt1") for n in (2, 4)}
    assert len(configs) == 12 and combos == expected
    assert len({c["exp_id"] for c in configs}) == 12 and not any(c["grid"] for c in configs)
    assert get_assignment("03").sweeps["lm"]["compare"] == "course_lib.lm.compare.compare_runs"


def test_grid_runs_are_compared_from_their_files(cyclic, tmp_path):
    configs = [dict(exp_id="lstm-sgd-L1", model="lstm", optimizer="sgd", num_layers=1),
               dict(exp_id="gpt1-adamw-L1", model="gpt1", optimizer="adamw", num_layers=1)]
    base = {**TINY, "epochs": 1, "lr": None}
    runs = run_grid(configs, base, cyclic, RANDOM, device="cpu", runs_dir=tmp_path / "runs")
    comparison = compare_runs(runs, tmp_path / "cmp")
    assert list(comparison.table["exp_id"]) == ["gpt1-adamw-L1", "lstm-sgd-L1"]  # model, layers, optimizer
    ppl = dict(zip(comparison.table["exp_id"], comparison.table["best_valid_ppl"], strict=True))
    assert comparison.best["best_valid_ppl_exp"] == min(ppl, key=ppl.get)
    assert comparison.best["least_memory_exp"] is None  # CPU: no GPU memory measured
    for name in ("comparison.csv", "comparison.md", "best.json", "curves.png", "cost.png"):
        assert (tmp_path / "cmp" / name).exists(), name
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "tokens/s" in markdown and "| n/a |" in markdown
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        compare_runs(tmp_path / "cmp", tmp_path / "none")
