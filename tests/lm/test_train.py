"""Assignment 03 training: one run on the generic loop, its files, evaluation, optimizers (resuming and
divergence: test_faults)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.lm.models import build_model
from course_lib.lm.train import evaluate_loss, make_optimizer, perplexity, train_language_model
from tests.lm.synthetic import RANDOM, V, tiny


@pytest.mark.parametrize("model", ["lstm", "gpt1"])
def test_training_learns_a_predictable_stream(cyclic, model, tmp_path):
    settings = tiny(model=model, optimizer="adamw", epochs=4)
    result = train_language_model(settings, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3, 4]
    assert history[0]["valid_ppl"] < 15 and result.metrics["test_ppl"] < 2.0  # uniform guessing: 20
    assert result.metrics["tokens_per_s"] > 0 and result.metrics["peak_gpu_memory_mb"] is None
    assert history[1]["wall_time_s"] == pytest.approx(history[0]["epoch_time_s"] + history[1]["epoch_time_s"])
    args = json.loads((tmp_path / "args.json").read_text())
    assert args["model"] == model and args["learning_rate"] == 1e-2 and args["split"] == "offline"
    assert args["embeddings"] == "random" and args["parameters"] == result.metrics["parameters"]


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


def test_optimizers_by_name():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert make_optimizer("momentum", params, 0.1).param_groups[0]["momentum"] == 0.9
    assert make_optimizer("adamw", params, 0.1, weight_decay=0.5).param_groups[0]["weight_decay"] == 0.5
    with pytest.raises(ValueError, match=r"optimizer='rmsprop'.*'momentum'"):
        make_optimizer("rmsprop", params, 0.1)
