"""Assignment 03 training: the loss and perplexity, the unigram baseline, the evaluation loops, one run on
the generic loop and its files, optimizers, the schedule (resuming and divergence: test_faults). The
checks of the exercises themselves are in ``tests/lm/checks.py``."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.core.training import fit
from course_lib.lm.config import FULL
from course_lib.lm.data import LMCorpus, NextTokenWindows
from course_lib.lm.models import build_model, model_options
from course_lib.lm.train import (
    CarriedState,
    evaluate_loss,
    evaluate_stateful_loss,
    lm_loss,
    make_optimizer,
    next_token_loss,
    perplexity,
    plateau_schedule,
    train_language_model,
    unigram_perplexity,
)
from tests.lm.checks import (
    LOSS_REFERENCE,
    check_carried_state,
    check_evaluate_loss,
    check_next_token_loss,
    check_next_token_windows,
    check_unigram_perplexity,
    loss_example,
)
from tests.lm.synthetic import RANDOM, TRAINED_MODELS, V, tiny


@pytest.mark.exercise("NextTokenWindows.__getitem__")
def test_windows_are_inputs_and_their_shifted_targets():
    check_next_token_windows(NextTokenWindows)


@pytest.mark.exercise("NextTokenWindows.__getitem__")
def test_a_loader_of_windows_reads_the_stream_once_in_order():
    ids = torch.randint(0, V, (50,), generator=torch.Generator().manual_seed(3))
    batches = list(torch.utils.data.DataLoader(NextTokenWindows(ids, 7), batch_size=3))
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert x.shape == y.shape == (7, 7)
    assert torch.equal(x.flatten(), ids[:49]) and torch.equal(y.flatten(), ids[1:50])


def test_the_loss_reference_value_is_pytorchs_cross_entropy():
    logits, targets = loss_example()
    assert F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1)).item() == pytest.approx(LOSS_REFERENCE)


@pytest.mark.exercise("next_token_loss")
def test_next_token_loss_is_the_mean_cross_entropy_of_the_shifted_targets():
    check_next_token_loss(next_token_loss)


@pytest.mark.exercise("next_token_loss")
@pytest.mark.parametrize(("p_right", "vocab"), [(1 / 20, 20), (0.5, 5), (0.9, 3)])
def test_perplexity_of_the_loss_is_one_over_the_probability_of_the_right_token(p_right, vocab):
    """Logits that give the right token probability p at every position: loss -ln p, perplexity 1 / p
    (uniform logits: p = 1 / V, perplexity V)."""
    targets = torch.randint(0, vocab, (3, 6), generator=torch.Generator().manual_seed(2))
    others = (1 - p_right) / (vocab - 1)
    logits = torch.full((3, 6, vocab), math.log(others)).scatter(-1, targets.unsqueeze(-1), math.log(p_right))
    loss = next_token_loss(logits, targets)
    assert loss.item() == pytest.approx(-math.log(p_right), rel=1e-5)
    assert perplexity(loss.item()) == pytest.approx(1 / p_right, rel=1e-5)


@pytest.mark.exercise("next_token_loss")
def test_lm_loss_scores_a_batch_of_windows_and_counts_its_tokens():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(V, 8), torch.nn.Linear(8, V))
    x, y = torch.randint(0, V, (3, 5)), torch.randint(0, V, (3, 5))
    loss, count = lm_loss(model, (x, y))
    assert count == 15
    expected = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("model", TRAINED_MODELS)
def test_training_learns_a_predictable_stream(cyclic, model, tmp_path):
    settings = tiny(model=model, optimizer="adamw", epochs=4)
    result = train_language_model(settings, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3, 4]
    assert history[0]["valid_ppl"] < 15 and result.metrics["test_ppl"] < 2.0  # uniform guessing: 20
    assert result.metrics["tokens_per_s"] > 0 and result.metrics["peak_gpu_memory_mb"] is None
    best = min(history, key=lambda e: e["valid_ppl"])
    assert result.metrics["best_epoch"] == best["epoch"]
    assert result.metrics["train_ppl_at_best"] == best["train_ppl"]
    assert result.metrics["unigram_valid_ppl"] > 6.0  # 7 tokens equally often: no use of the order
    stateful = result.metrics["valid_ppl_stateful"]
    assert (stateful is None) == (model == "gpt1") and (stateful is None or stateful < 2.0)
    assert history[1]["wall_time_s"] == pytest.approx(history[0]["epoch_time_s"] + history[1]["epoch_time_s"])
    args = json.loads((tmp_path / "args.json").read_text())
    assert args["model"] == model and args["learning_rate"] == 1e-2 and args["split"] == "offline"
    assert args["embeddings"] == "random" and args["parameters"] == result.metrics["parameters"]


@pytest.mark.exercise("evaluate_loss")
def test_evaluate_loss_is_the_mean_over_tokens_in_eval_mode():
    check_evaluate_loss(evaluate_loss)


@pytest.mark.exercise("evaluate_loss")
def test_evaluate_loss_is_mean_token_cross_entropy(cyclic):
    torch.manual_seed(0)
    model = build_model("gpt1", V, 1, d_model=16, n_heads=2, max_len=8, dropout=0.0)
    ids = cyclic.valid[:41]  # 5 windows of 8 tokens
    x, y = ids[:40].view(5, 8), ids[1:41].view(5, 8)
    with torch.no_grad():
        expected = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).item()
    assert evaluate_loss(model, ids, seq_len=8, batch_size=2) == pytest.approx(expected, rel=1e-5)


@pytest.mark.exercise("perplexity")
def test_perplexity_is_exp_of_the_mean_loss_and_inf_on_overflow():
    assert perplexity(math.log(5.0)) == pytest.approx(5.0)
    assert perplexity(2.0) == pytest.approx(7.3891, abs=1e-4) and perplexity(0.0) == 1.0
    assert perplexity(1e4) == math.inf


@pytest.mark.exercise("CarriedState.__call__")
def test_carried_state_continues_each_lane_and_detaches_the_state():
    check_carried_state(CarriedState)


@pytest.mark.exercise("CarriedState.__call__")
def test_stateful_evaluation_carries_the_lstm_state_across_windows():
    torch.manual_seed(0)
    model = build_model("lstm", V, 1, hidden=8, dropout=0.0, emb_dim=4)
    ids = torch.randint(0, V, (2 * 12 + 1,))
    lanes = ids[:24].view(2, 12)  # two contiguous lanes, read in windows of 5, 5 and 2 tokens
    with torch.no_grad():
        logits, _ = model(lanes)  # one pass over each whole lane = the state carried
    expected = F.cross_entropy(logits.reshape(-1, V), ids[1:25].view(2, 12).reshape(-1)).item()
    assert evaluate_stateful_loss(model, ids, seq_len=5, batch_size=2) == pytest.approx(expected, rel=1e-5)
    assert evaluate_stateful_loss(model, ids, seq_len=5, batch_size=2) != pytest.approx(
        evaluate_loss(model, ids, seq_len=5, batch_size=2), rel=1e-4)
    with pytest.raises(ValueError, match="too short for 30 lanes"):
        evaluate_stateful_loss(model, ids, seq_len=5, batch_size=30)


@pytest.mark.exercise("unigram_perplexity")
def test_unigram_perplexity_is_add_one_smoothed_frequency():
    check_unigram_perplexity(unigram_perplexity)
    train, valid = torch.tensor([0, 0, 1]), torch.tensor([0, 2])
    # counts + 1 = (3, 2, 1) over 6: p(0) = 1/2, p(2) = 1/6
    assert unigram_perplexity(train, valid, 3) == pytest.approx(math.sqrt(12.0))


def test_optimizers_by_name():
    params = [torch.nn.Parameter(torch.zeros(2))]
    group = make_optimizer("momentum", params, 0.1, 5e-4).param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, False, 5e-4)
    assert make_optimizer("momentum", params, 0.1, momentum=0.5, nesterov=True).param_groups[0]["nesterov"]
    assert make_optimizer("sgd", params, 0.1, 5e-4).param_groups[0]["weight_decay"] == 5e-4
    assert make_optimizer("adam", params, 0.1, 5e-4).param_groups[0]["weight_decay"] == 0  # as the course
    assert make_optimizer("adamw", params, 0.1, weight_decay=0.5).param_groups[0]["weight_decay"] == 0.5
    with pytest.raises(ValueError, match=r"optimizer='rmsprop'.*'momentum'"):
        make_optimizer("rmsprop", params, 0.1)


@pytest.mark.exercise("CarriedState.__call__")
def test_stateful_training_is_truncated_bptt_over_contiguous_lanes(cyclic, tmp_path):
    """train_language_model with stateful_training gives, step by step, the losses of a hand-rolled
    truncated-BPTT loop: 4 lanes of the stream, windows of 5, the state carried and detached."""
    settings = tiny(model="lstm", optimizer="sgd", lr=0.5, batch_size=4, seq_len=5, hidden=8,
                    stateful_training=True, grad_clip=0.25, weight_decay=0.0, epochs=2)
    result = train_language_model(settings, cyclic, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    torch.manual_seed(0)
    model = build_model("lstm", V, 1, **model_options(settings))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    lanes = (cyclic.train.numel() - 1) // 4
    data = cyclic.train[: lanes * 4 + 1]
    x_all, y_all = data[:-1].view(4, lanes), data[1:].view(4, lanes)
    expected = []
    for _ in range(2):
        state = None  # every epoch starts from a zero state
        for start in range(0, lanes, 5):
            logits, state = model(x_all[:, start : start + 5], state)
            state = tuple(t.detach() for t in state)
            loss = F.cross_entropy(logits.reshape(-1, V), y_all[:, start : start + 5].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
            expected.append(loss.item())
    got = [v for e in result.history.epochs for v in e["step_losses"]]
    assert len(got) == len(expected) == 2 * 70
    assert got == pytest.approx(expected, rel=1e-5)


def test_plateau_schedule_divides_lr_after_an_epoch_without_a_new_best():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=20.0)
    losses = iter([5.0, 4.0, 4.5, 3.0, 3.0, 2.0])  # no new best after epochs 3 and 5 (equal is no better)
    batches = [torch.ones(2, 2)]

    def loss_fn(m, batch):  # a constant loss: only the schedule moves
        return 0.0 * m(batch).sum() + 1.0

    history = fit(model, batches, loss_fn=loss_fn, optimizer=optimizer,
                  epochs=6, evaluate=lambda m: {"valid_loss": next(losses)}, progress=False,
                  schedule=plateau_schedule(optimizer, 4.0))
    assert history.column("lr") == [20.0, 20.0, 20.0, 5.0, 5.0, 1.25]  # each epoch's lr, before the step
    assert plateau_schedule(optimizer, 1.0) is None  # factor 1: constant
    with pytest.raises(ValueError, match="PlateauSchedule reads 'valid_loss' from evaluate"):
        fit(model, batches, loss_fn=loss_fn, optimizer=optimizer, epochs=1,
            schedule=plateau_schedule(optimizer, 4.0))


@pytest.mark.parametrize(("losses", "lrs"), [
    ([5.0, 4.0, 3.0, 2.0, 1.0], [20.0, 20.0, 20.0, 20.0, 5.0]),  # always better: the anneal alone
    ([5.0, 4.0, 3.0, 3.5, 2.0], [20.0, 20.0, 20.0, 20.0, 5.0]),  # the plateau rule fires first: no second cut
    ([5.0, 5.5, 3.0, 2.0, 1.0], [20.0, 20.0, 5.0, 5.0, 1.25]),   # a plateau earlier, then the anneal
])
def test_plateau_schedule_anneals_the_last_epochs(losses, lrs):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=20.0)
    values = iter(losses)
    schedule = plateau_schedule(optimizer, 4.0, epochs=5, anneal_epochs=1)
    history = fit(model, [torch.ones(2, 2)], loss_fn=lambda m, batch: 0.0 * m(batch).sum() + 1.0,
                  optimizer=optimizer, epochs=5, evaluate=lambda m: {"valid_loss": next(values)},
                  progress=False, schedule=schedule)
    assert history.column("lr") == lrs
    assert schedule.anneal_after == 4
    restored = plateau_schedule(torch.optim.SGD(model.parameters(), lr=20.0), 4.0)
    restored.load_state_dict(schedule.state_dict())  # what a checkpoint keeps
    assert (restored.epochs, restored.best) == (5, min(losses))


@pytest.mark.exercise("CarriedState.__call__")
def test_the_full_profile_runs_on_the_cpu_at_tiny_size(cyclic, tmp_path):
    """FULL's code path (its optimizer, default lr and dropout, batch 32, windows of 64, amp, checkpoint)
    on the CPU for one epoch, only its model sizes shrunk."""
    stream = torch.tensor([3, 1, 4, 15, 9, 2, 6] * 1200)
    corpus = LMCorpus("official", cyclic.vocab, stream[:6000], stream[6000:7200], stream[7200:])
    settings = FULL.override(hidden=16, d_model=16, n_heads=2, epochs=1)
    assert settings.amp and settings.checkpoint and settings.max_vocab is None
    result = train_language_model(settings, corpus, RANDOM, device="cpu", run_dir=tmp_path, progress=False)
    assert result.metrics["epochs"] == 1 and len(result.history.epochs[0]["step_losses"]) == 2  # 93 windows
    assert math.isfinite(result.metrics["valid_ppl"]) and result.metrics["valid_ppl_stateful"] < V
    assert (tmp_path / "checkpoint.pt").exists()
