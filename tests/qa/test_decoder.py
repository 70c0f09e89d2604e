"""The exercises of the dynamic pointing decoder (one round, the loop over rounds) and the span loss, with
wrong-but-runnable variants each check rejects. The decoder's scorers and its rounds are replaced by
scripted stand-ins here, so each check needs no other exercise and says exactly which step differs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.qa.models import (
    DecoderRound,
    DynamicPointingDecoder,
    PointerRounds,
    gather_rows,
    masked_fill_min,
    span_loss,
)
from tests.qa.checks import assert_check_fails, assert_close_to, assert_equal_to

MIN = torch.finfo(torch.float32).min

# ------------------------------------------------------------------------------------------- one round


class ScriptedScorer(nn.Module):
    """Stands in for a highway maxout network: returns fixed ``scores`` (B, m) and records its arguments."""

    def __init__(self, scores: torch.Tensor):
        super().__init__()
        self.scores, self.calls = scores, []

    def forward(self, U, h, u_s, u_e, projected=None):
        self.calls.append({"h": h, "u_s": u_s, "u_e": u_e, "projected": projected})
        return self.scores.clone()


def rows_of(U: torch.Tensor, u: torch.Tensor) -> list:
    """For each example b, the position t with ``U[b, t] == u[b]`` (None when no row matches)."""
    return [next((t for t in range(U.shape[1]) if torch.equal(U[b, t], u[b])), None)
            for b in range(U.shape[0])]


def step_case():
    """A decoder with scripted scorers, and a round's inputs: 3 examples of 6, 4 and 2 real positions
    whose padding the scorers rate highest (and whose real scores are all negative in example 2)."""
    torch.manual_seed(0)
    decoder = DynamicPointingDecoder(hidden=3, pool=2)
    alpha = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.5, 0.4],
                          [0.2, 0.1, 0.3, 0.8, 2.0, 2.5],
                          [-0.5, -0.2, 1.0, 3.0, 0.0, 0.7]])
    beta = torch.tensor([[0.3, 0.2, 0.1, 0.6, 0.4, 0.5],
                         [0.9, 0.1, 0.3, 0.2, 1.5, 2.0],
                         [-0.3, -0.4, 0.0, 0.5, 2.0, 0.1]])
    decoder.hmn_start, decoder.hmn_end = ScriptedScorer(alpha), ScriptedScorer(beta)
    mask = torch.arange(6) < torch.tensor([6, 4, 2]).unsqueeze(1)
    U = torch.randn(3, 6, 6)
    state = (torch.randn(3, 3), torch.randn(3, 3))
    s, e = torch.tensor([2, 0, 1]), torch.tensor([4, 2, 0])
    projected = (torch.randn(3, 6, 6), torch.randn(3, 6, 6))
    return decoder, alpha, beta, U, mask, state, s, e, projected


def check_step(step_fn):
    """One round: the LSTM input and state, what each scorer reads, the masked scores and their argmaxes."""
    decoder, alpha, beta, U, mask, state, s, e, projected = step_case()
    with torch.no_grad():
        out = step_fn(decoder, U, mask, state, s, e, projected)
        assert_equal_to(len(out), 5, "what step returns: ((h, c), alpha, beta, s', e'), 5 items")
        (h, c), got_alpha, got_beta, new_s, new_e = out
        want_h, want_c = decoder.cell(torch.cat([gather_rows(U, s), gather_rows(U, e)], dim=1), state)
    assert_close_to(h, want_h, "h: self.cell([u_s; u_e], state)[0], u_s = U[b, s_b], u_e = U[b, e_b]")
    assert_close_to(c, want_c, "c: self.cell([u_s; u_e], state)[1]")
    want_s, want_e = torch.tensor([1, 3, 1]), torch.tensor([3, 0, 0])
    check_scorer_call(decoder.hmn_start, "hmn_start", U, want_h, s, e, projected[0])
    check_scores(got_alpha, alpha, mask, "alpha", "start")
    assert_equal_to(new_s, want_s, "s': argmax of alpha over the real positions")
    check_scorer_call(decoder.hmn_end, "hmn_end", U, want_h, want_s, e, projected[1])
    check_scores(got_beta, beta, mask, "beta", "end")
    assert_equal_to(new_e, want_e, "e': argmax of beta over the real positions")


def check_scores(got, scores, mask, name, pointer):
    """The scorer's ``scores`` at real positions, the dtype's most negative value at padding."""
    assert_equal_to(tuple(got.shape), tuple(scores.shape), f"{name}'s shape (B, m)")
    assert_close_to(got[~mask], torch.full_like(scores[~mask], MIN),
                    f"{name} at the padding positions: the dtype's most negative value {MIN:.4g} "
                    "(masked_fill_min)")
    assert_close_to(got[mask], scores[mask], f"{name} at the real positions: the {pointer} scorer's scores")


def check_scorer_call(scorer, name, U, h, start, end, projected):
    """The scorer ran once, on the new ``h`` and the rows of ``U`` at ``start`` and ``end``."""
    assert_equal_to(len(scorer.calls), 1, f"calls of self.{name}")
    call = scorer.calls[0]
    reads = "the old start s" if name == "hmn_start" else "the NEW start s'"
    assert_close_to(call["h"], h, f"the h that self.{name} reads: the new state's")
    assert_equal_to(rows_of(U, call["u_s"]), start, f"the u_s that self.{name} reads: U at {reads}")
    assert_equal_to(rows_of(U, call["u_e"]), end, f"the u_e that self.{name} reads: U at the old end e")
    if call["projected"] is not None:
        which = "projected[0]" if name == "hmn_start" else "projected[1]"
        assert_close_to(call["projected"], projected, f"the projected that self.{name} gets: {which}")


@pytest.mark.exercise("DynamicPointingDecoder.step")
def test_step_reads_the_estimates_and_masks_the_padding():
    check_step(DynamicPointingDecoder.step)


def step_variant(*, mask_with="min", end_reads="new start", state="updated", projected_order=(0, 1)):
    """A round with one step done otherwise (the defaults are the contract's)."""
    def step(self, U, mask, state_in, s, e, projected):
        u_s, u_e = gather_rows(U, s), gather_rows(U, e)
        h, c = self.cell(torch.cat([u_s, u_e], dim=1), state_in) if state == "updated" else state_in
        masked = {"min": lambda x: masked_fill_min(x, mask), "none": lambda x: x, "zero": lambda x: x * mask}
        alpha = masked[mask_with](self.hmn_start(U, h, u_s, u_e, projected[projected_order[0]]))
        new_s = alpha.argmax(dim=1)
        start_state = gather_rows(U, new_s) if end_reads == "new start" else u_s
        beta = masked[mask_with](self.hmn_end(U, h, start_state, u_e, projected[projected_order[1]]))
        return DecoderRound((h, c), alpha, beta, new_s, beta.argmax(dim=1))
    return step


@pytest.mark.parametrize(("wrong", "match"), [
    (step_variant(mask_with="none"), r"alpha at the padding positions: the dtype's most negative value"),
    (step_variant(mask_with="zero"), r"alpha at the padding positions: .*, got \[0.0, 0.0, 0.0, 0.0, 0.0"),
    (step_variant(end_reads="old start"), r"the u_s that self.hmn_end reads: U at the NEW start s': "
                                          r"expected \[1, 3, 1\], got \[2, 0, 1\]"),
    (step_variant(state="not updated"), r"h: self.cell\(\[u_s; u_e\], state\)\[0\]"),
    (step_variant(projected_order=(1, 0)), r"the projected that self.hmn_start gets: projected\[0\]"),
], ids=["mask ignored", "padding zeroed", "end reads the old start", "state not updated",
        "projections swapped"])
def test_step_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_step, wrong, match)


def test_step_variant_is_right_otherwise():
    check_step(step_variant())


# ------------------------------------------------------------------------------------- the loop over rounds

ESTIMATES = [  # per round, per example, the (s', e') a scripted round returns
    [(0, 0), (2, 3), (1, 1)],  # round 1: example 0 converges (it was given (0, 0))
    [(2, 2), (2, 4), (3, 3)],  # round 2: example 0 moves again (it keeps its round-1 scores)
    [(2, 2), (2, 4), (1, 1)],  # round 3: example 1 converges
    [(2, 2), (2, 4), (2, 2)],  # round 4: example 2 never converges
]
SETTLING = [*ESTIMATES[:2], [(2, 2), (2, 4), (3, 3)]]  # example 2 converges in round 3: all have


class ScriptedRounds(DynamicPointingDecoder):
    """A decoder whose rounds follow a script of estimates (its last line repeated past its end), return
    distinct scores per round and a state one higher than the one given, and record what each round got."""

    def __init__(self, script, m=6):
        super().__init__(hidden=3, pool=2)
        self.script, self.m, self.calls = script, m, []

    def step(self, U, mask, state, s, e, projected):
        r = len(self.calls)
        self.calls.append({"state": state, "s": s, "e": e, "projected": projected})
        estimates = torch.tensor(self.script[min(r, len(self.script) - 1)])
        alpha = torch.full((len(estimates), self.m), 10.0 * r + 1) + torch.arange(len(estimates)).unsqueeze(1)
        beta = -alpha
        return DecoderRound((state[0] + 1, state[1] + 1), alpha, beta, estimates[:, 0], estimates[:, 1])


def loop_case(script):
    torch.manual_seed(0)
    decoder = ScriptedRounds(script)
    U = torch.randn(3, 6, 6)
    mask = torch.arange(6) < torch.tensor([6, 5, 4]).unsqueeze(1)
    return decoder, U, mask


def check_rounds(forward_fn, script, stop_early, want_rounds, want_final):
    decoder, U, mask = loop_case(script)
    mode = "at inference (stop_early)" if stop_early else "in training (no early stop)"
    with torch.no_grad():
        out = forward_fn(decoder, U, mask, 4, stop_early)
        projected = (decoder.hmn_start.project(U), decoder.hmn_end.project(U))
    assert_equal_to(len(decoder.calls), want_rounds, f"rounds run {mode}")
    for r, call in enumerate(decoder.calls):
        given = torch.tensor([(0, 0)] * 3 if r == 0 else script[min(r - 1, len(script) - 1)])
        assert_equal_to(call["s"], given[:, 0], f"the s given to round {r + 1}: "
                                                + ("zeros" if r == 0 else f"round {r}'s s'"))
        assert_equal_to(call["e"], given[:, 1], f"the e given to round {r + 1}: "
                                                + ("zeros" if r == 0 else f"round {r}'s e'"))
        assert_close_to(call["state"][0], torch.full((3, 3), float(r)),
                        f"the h given to round {r + 1}: " + ("zeros (B, l)" if r == 0 else f"round {r}'s h"))
        assert_close_to(call["state"][1], torch.full((3, 3), float(r)),
                        f"the c given to round {r + 1}: " + ("zeros (B, l)" if r == 0 else f"round {r}'s c"))
        assert_close_to(call["projected"][0], projected[0], "projected[0]: self.hmn_start.project(U)")
        assert_close_to(call["projected"][1], projected[1], "projected[1]: self.hmn_end.project(U)")
    alphas = [torch.full((3, 6), 10.0 * r + 1) + torch.arange(3).unsqueeze(1) for r in range(want_rounds)]
    assert_equal_to(len(out.starts), want_rounds, f"len(starts) {mode}: every round's alpha")
    assert_equal_to(len(out.ends), want_rounds, f"len(ends) {mode}: every round's beta")
    for r in range(want_rounds):
        assert_close_to(out.starts[r], alphas[r], f"starts[{r}]: round {r + 1}'s alpha")
        assert_close_to(out.ends[r], -alphas[r], f"ends[{r}]: round {r + 1}'s beta")
    assert_equal_to(out.rounds, want_final, f"rounds {mode}: per example the round it first converged in, "
                                            "else the last round run")
    final = torch.stack([alphas[r - 1][b] for b, r in enumerate(want_final)])
    assert_close_to(out.start, final, "start: row b of starts[rounds[b] - 1]")
    assert_close_to(out.end, -final, "end: row b of ends[rounds[b] - 1]")


def check_loop(forward_fn):
    """The loop over scripted rounds: what each round gets, how many run, which scores are final."""
    check_rounds(forward_fn, ESTIMATES, stop_early=True, want_rounds=4, want_final=[1, 3, 4])
    check_rounds(forward_fn, SETTLING, stop_early=True, want_rounds=3, want_final=[1, 3, 3])
    check_rounds(forward_fn, SETTLING, stop_early=False, want_rounds=4, want_final=[1, 3, 3])


@pytest.mark.exercise("DynamicPointingDecoder.forward")
def test_rounds_pass_estimates_on_and_each_example_keeps_the_round_it_converged_in():
    check_loop(DynamicPointingDecoder.forward)


def loop_variant(*, steps=True, keep="first", stop="inference", state_passed=True):
    """The loop over rounds with one step done otherwise (the defaults are the contract's)."""
    def forward(self, U, mask, rounds, stop_early):
        B = U.shape[0]
        s = e = torch.zeros(B, dtype=torch.long)
        zero = (U.new_zeros(B, self.hidden), U.new_zeros(B, self.hidden))
        state = zero
        projected = (self.hmn_start.project(U), self.hmn_end.project(U))
        starts, ends, converged = [], [], torch.zeros(B, dtype=torch.long)
        for i in range(1, rounds + 1):
            given = state if state_passed else zero
            state, alpha, beta, new_s, new_e = self.step(U, mask, given, s, e, projected)
            starts.append(alpha)
            ends.append(beta)
            same = (new_s == s) & (new_e == e)
            converged = torch.where(same if keep == "latest" else (converged == 0) & same, i, converged)
            if steps:
                s, e = new_s, new_e
            if (stop == "always" or (stop == "inference" and stop_early)) and bool((converged > 0).all()):
                break
        final = torch.where(converged > 0, converged, len(starts)) if keep != "last" else torch.full(
            (B,), len(starts))
        rows = torch.arange(B)
        return PointerRounds(starts, ends, torch.stack(starts)[final - 1, rows],
                             torch.stack(ends)[final - 1, rows], final)
    return forward


@pytest.mark.parametrize(("wrong", "match"), [
    (loop_variant(steps=False), r"the s given to round 2: round 1's s': expected \[0, 2, 1\], got \[0, 0,"),
    (loop_variant(keep="last"), r"rounds at inference \(stop_early\): .*expected \[1, 3, 4\], got \[4, 4,"),
    (loop_variant(keep="latest"), r"expected \[1, 3, 4\], got \[4, 4, 4\]"),
    (loop_variant(stop="never"), r"rounds run at inference \(stop_early\): expected 3, got 4"),
    (loop_variant(stop="always"), r"rounds run in training \(no early stop\): expected 4, got 3"),
    (loop_variant(state_passed=False), r"the h given to round 2: round 1's h"),
], ids=["estimates never stepped", "last round's scores", "latest convergence", "no early stop",
        "early stop in training", "state not passed on"])
def test_loop_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_loop, wrong, match)


def test_loop_variant_is_right_otherwise():
    check_loop(loop_variant())


# ---------------------------------------------------------------------------------------------- the loss


def loss_case(dtype=torch.float32):
    """Three rounds of scores for 4 examples of up to 7 positions (padding at the dtype's minimum), final
    scores from round 2 (not the last), and the true positions."""
    torch.manual_seed(3)
    mask = torch.arange(7) < torch.tensor([7, 5, 3, 6]).unsqueeze(1)
    starts = [masked_fill_min(torch.randn(4, 7) * 2, mask).to(dtype) for _ in range(3)]
    ends = [masked_fill_min(torch.randn(4, 7) * 2, mask).to(dtype) for _ in range(3)]
    out = PointerRounds(starts, ends, starts[1], ends[1], torch.full((4,), 2))
    return out, torch.tensor([2, 4, 0, 5]), torch.tensor([3, 4, 2, 5])


def cross_entropy_by_hand(scores, target):
    """Mean over the batch of -log softmax(scores)[target], in float32."""
    return -torch.log_softmax(scores.float(), dim=1)[torch.arange(len(target)), target].mean()


def check_span_loss(loss_fn):
    """The loss against the cross-entropies summed by hand, in float32 and from bfloat16 scores."""
    for dtype in (torch.float32, torch.bfloat16):
        out, start, end = loss_case(dtype)
        want = sum(cross_entropy_by_hand(a, start) + cross_entropy_by_hand(b, end)
                   for a, b in zip(out.starts, out.ends, strict=True))
        got = loss_fn(out, start, end)
        assert_equal_to(tuple(got.shape), (), f"the loss's shape (a scalar) from {dtype} scores")
        assert_equal_to(got.dtype, torch.float32, f"the loss's dtype from {dtype} scores")
        assert_close_to(got, want, f"the loss from {dtype} scores: the sum over the 3 rounds of the mean "
                                   "start and end cross-entropies")


@pytest.mark.exercise("span_loss")
def test_span_loss_sums_the_rounds_cross_entropies():
    check_span_loss(span_loss)


def loss_variant(*, rounds="all", combine="sum", reduction="mean", pointers=("start", "end")):
    """The span loss with one step done otherwise (the defaults are the contract's)."""
    def loss(out, start, end):
        pairs = list(zip(out.starts, out.ends, strict=True))
        if rounds == "last":
            pairs = pairs[-1:]
        elif rounds == "final":
            pairs = [(out.start, out.end)]
        terms = []
        for alpha, beta in pairs:
            term = F.cross_entropy(alpha.float(), start, reduction=reduction)
            terms.append(term + F.cross_entropy(beta.float(), end, reduction=reduction) if "end" in pointers
                         else term)
        total = torch.stack(terms).sum()
        return total / len(terms) if combine == "mean" else total
    return loss


@pytest.mark.parametrize(("wrong", "match"), [
    (loss_variant(rounds="last"), r"the loss from torch.float32 scores: the sum over the 3 rounds"),
    (loss_variant(rounds="final"), r"the loss from torch.float32 scores"),
    (loss_variant(combine="mean"), r"the loss from torch.float32 scores"),
    (loss_variant(reduction="sum"), r"the loss from torch.float32 scores"),
    (loss_variant(pointers=("start",)), r"the loss from torch.float32 scores"),
], ids=["last round only", "final scores only", "mean over rounds", "sum over the batch", "start only"])
def test_span_loss_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_span_loss, wrong, match)


def test_span_loss_variant_is_right_otherwise():
    check_span_loss(loss_variant())
