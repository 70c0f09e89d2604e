"""Hidden tests of assignment 04's decoder exercises: one round with stand-in scorers on other sizes, the
loop over rounds with scripted rounds, the span loss on one and four rounds with its gradients, and span
decoding against a brute force with many ties."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from course_lib.qa.decoding import best_span
from course_lib.qa.models import DecoderRound, DynamicPointingDecoder, PointerRounds, span_loss

MIN = torch.finfo(torch.float32).min


class FixedScorer(nn.Module):
    """A stand-in scorer: returns fixed ``scores`` (B, m) and records the ``h``, ``u_s``, ``u_e`` and
    ``projected`` it read."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.seen = scores, []

    def forward(self, U, h, u_s, u_e, projected=None):
        self.seen.append((h.clone(), u_s.clone(), u_e.clone(), projected))
        return self.scores.clone()


@pytest.mark.exercise("DynamicPointingDecoder.step")
def test_step_on_other_sizes():
    torch.manual_seed(31)
    B, m, hidden = 5, 7, 4
    decoder = DynamicPointingDecoder(hidden, pool=3)
    lengths = torch.tensor([7, 3, 5, 1, 6])
    mask = torch.arange(m) < lengths.unsqueeze(1)
    alpha, beta = torch.randn(B, m), torch.randn(B, m)
    alpha[~mask] += 10.0  # padding rated highest
    beta[~mask] += 10.0
    decoder.hmn_start, decoder.hmn_end = FixedScorer(alpha), FixedScorer(beta)
    U = torch.randn(B, m, 2 * hidden)
    state = (torch.randn(B, hidden), torch.randn(B, hidden))
    s, e = torch.tensor([6, 0, 4, 0, 2]), torch.tensor([1, 2, 3, 0, 5])
    projected = (torch.randn(B, m, 3 * hidden), torch.randn(B, m, 3 * hidden))
    with torch.no_grad():
        (h, c), got_alpha, got_beta, new_s, new_e = decoder.step(U, mask, state, s, e, projected)
        rows = torch.arange(B)
        want_h, want_c = decoder.cell(torch.cat([U[rows, s], U[rows, e]], dim=1), state)
    want_s = alpha.masked_fill(~mask, -1e9).argmax(1)
    want_e = beta.masked_fill(~mask, -1e9).argmax(1)
    torch.testing.assert_close(h, want_h)
    torch.testing.assert_close(c, want_c)
    assert torch.equal(got_alpha, alpha.masked_fill(~mask, MIN))
    assert torch.equal(got_beta, beta.masked_fill(~mask, MIN))
    assert new_s.tolist() == want_s.tolist() and new_e.tolist() == want_e.tolist()
    assert len(decoder.hmn_start.seen) == 1 and len(decoder.hmn_end.seen) == 1
    (h_s, us_s, ue_s, p_s), (h_e, us_e, ue_e, p_e) = decoder.hmn_start.seen[0], decoder.hmn_end.seen[0]
    torch.testing.assert_close(h_s, want_h)
    torch.testing.assert_close(h_e, want_h)
    assert torch.equal(us_s, U[rows, s]) and torch.equal(ue_s, U[rows, e])
    assert torch.equal(us_e, U[rows, want_s]) and torch.equal(ue_e, U[rows, e])
    assert p_s is None or torch.equal(p_s, projected[0]), "hmn_start reads projected[0]"
    assert p_e is None or torch.equal(p_e, projected[1]), "hmn_end reads projected[1]"


class Scripted(DynamicPointingDecoder):
    """Rounds that follow ``script`` (per round, per example ``(s', e')``; the last line repeats), return
    scores that name their round, and a state that counts the rounds."""

    def __init__(self, script, B, m):
        super().__init__(hidden=2, pool=2)
        self.script, self.B, self.m, self.given = script, B, m, []

    def step(self, U, mask, state, s, e, projected):
        r = len(self.given)
        self.given.append((s.tolist(), e.tolist(), float(state[0].mean()), float(state[1].mean())))
        estimates = torch.tensor(self.script[min(r, len(self.script) - 1)])
        alpha = torch.full((self.B, self.m), float(r)) + 0.01 * torch.arange(self.B).unsqueeze(1)
        new_state = (state[0] + 1, state[1] + 2)
        return DecoderRound(new_state, alpha, alpha + 100, estimates[:, 0], estimates[:, 1])


SCRIPT = [
    [(1, 1), (0, 0), (2, 3), (4, 4)],
    [(1, 1), (5, 5), (3, 3), (4, 5)],
    [(0, 2), (5, 5), (2, 2), (4, 5)],
    [(0, 2), (5, 5), (2, 2), (4, 5)],
    [(0, 2), (5, 5), (2, 2), (4, 5)],
]


@pytest.mark.exercise("DynamicPointingDecoder.forward")
@pytest.mark.parametrize(("rounds", "stop_early", "want_run", "want_final"), [
    (5, True, 4, [2, 1, 4, 3]),   # all have converged after round 4
    (5, False, 5, [2, 1, 4, 3]),  # training: every round
    (2, True, 2, [2, 1, 2, 2]),   # the cap: examples 2 and 3 keep round 2
    (1, False, 1, [1, 1, 1, 1]),
])
def test_loop_over_scripted_rounds(rounds, stop_early, want_run, want_final):
    B, m = 4, 6
    decoder = Scripted(SCRIPT, B, m)
    torch.manual_seed(32)
    U, mask = torch.randn(B, m, 4), torch.ones(B, m, dtype=torch.bool)
    with torch.no_grad():
        out = decoder(U, mask, rounds, stop_early)
    assert len(decoder.given) == want_run and len(out.starts) == want_run and len(out.ends) == want_run
    for r, (s, e, h, c) in enumerate(decoder.given):
        previous = [(0, 0)] * B if r == 0 else SCRIPT[r - 1]
        assert s == [p[0] for p in previous] and e == [p[1] for p in previous], f"round {r + 1}"
        assert (h, c) == (float(r), float(2 * r)), f"the state given to round {r + 1}"
    assert out.rounds.tolist() == want_final
    for b, r in enumerate(want_final):
        torch.testing.assert_close(out.start[b], torch.full((m,), r - 1 + 0.01 * b))
        torch.testing.assert_close(out.end[b], torch.full((m,), r - 1 + 100 + 0.01 * b))
    for r in range(want_run):
        torch.testing.assert_close(out.starts[r][:, 0], r + 0.01 * torch.arange(B, dtype=torch.float32))


@pytest.mark.exercise("span_loss")
@pytest.mark.parametrize("R", [1, 4])
def test_span_loss_value_and_gradients(R):
    torch.manual_seed(33 + R)
    B, m = 5, 9
    mask = torch.arange(m) < torch.tensor([9, 4, 7, 2, 5]).unsqueeze(1)
    starts = [torch.randn(B, m).masked_fill(~mask, MIN).requires_grad_() for _ in range(R)]
    ends = [torch.randn(B, m).masked_fill(~mask, MIN).requires_grad_() for _ in range(R)]
    start, end = torch.tensor([8, 3, 0, 1, 2]), torch.tensor([8, 3, 6, 1, 4])
    out = PointerRounds(starts, ends, starts[0].detach(), ends[0].detach(), torch.ones(B, dtype=torch.long))
    loss = span_loss(out, start, end)
    rows = torch.arange(B)
    def nll(scores, target):
        return -torch.log_softmax(scores.detach(), 1)[rows, target].mean()

    want = sum(nll(a, start) + nll(b, end) for a, b in zip(starts, ends, strict=True))
    torch.testing.assert_close(loss.detach(), want)
    loss.backward()
    for scores, target in [*((a, start) for a in starts), *((b, end) for b in ends)]:
        grad = (torch.softmax(scores.detach(), 1) - nn.functional.one_hot(target, m)) / B
        torch.testing.assert_close(scores.grad, grad)  # every round's scores, each averaged over the batch


def brute_force_span(start, end, length, max_len):
    best, where = None, None
    for i, j in itertools.product(range(length), repeat=2):
        if i <= j < i + max_len and (best is None or start[i] + end[j] > best):
            best, where = start[i] + end[j], (i, j)
    return where


@pytest.mark.exercise("best_span")
@pytest.mark.parametrize("max_len", [1, 2, 4, 30])
def test_best_span_against_a_brute_force_with_ties(max_len):
    g = torch.Generator().manual_seed(34 + max_len)
    B, m = 24, 11
    start = torch.randint(-3, 3, (B, m), generator=g).float()  # small integers: many ties
    end = torch.randint(-3, 3, (B, m), generator=g).float()
    lengths = torch.randint(1, m + 1, (B,), generator=g)
    mask = torch.arange(m) < lengths.unsqueeze(1)
    start[~mask], end[~mask] = 9.0, 9.0  # padding rated highest
    starts, ends = best_span(start, end, mask, max_len)
    assert starts.dtype == torch.long and starts.shape == (B,)
    for b in range(B):
        want = brute_force_span(start[b].tolist(), end[b].tolist(), int(lengths[b]), max_len)
        assert (int(starts[b]), int(ends[b])) == want, f"example {b}"


@pytest.mark.exercise("best_span")
def test_best_span_reads_bfloat16_log_probabilities():
    torch.manual_seed(35)
    scores = torch.randn(3, 40)
    start, end = torch.log_softmax(scores, 1).bfloat16(), torch.log_softmax(scores.flip(1), 1).bfloat16()
    mask = torch.arange(40) < torch.tensor([40, 17, 3]).unsqueeze(1)
    starts, ends = best_span(start, end, mask, 5)
    for b, length in enumerate([40, 17, 3]):
        want = brute_force_span(start[b].float().tolist(), end[b].float().tolist(), length, 5)
        assert (int(starts[b]), int(ends[b])) == want
