"""Hidden tests of assignment 04's encoder and scorer exercises: coattention by hand with padding on both
sides, the coattention encoder against the encoder written out (with a coattention of its own), the highway
maxout network's equations with pieces of another size and its pieces' layout."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from course_lib.qa import models
from course_lib.qa.models import DynamicCoattentionNetwork, HighwayMaxout, coattention


@pytest.mark.exercise("coattention")
def test_coattention_by_hand_with_padding():
    torch.manual_seed(9)
    D, Q = torch.randn(2, 5, 3), torch.randn(2, 4, 3)
    d_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    q_mask = torch.tensor([[True, True, False, False], [True] * 4])
    C_D, A_D = coattention(D, Q, d_mask, q_mask)
    assert C_D.shape == (2, 5, 6) and A_D.shape == (2, 5, 4)
    for b in range(2):
        m, n = int(d_mask[b].sum()), int(q_mask[b].sum())
        d, q = D[b, :m], Q[b, :n]
        L = d @ q.T
        A_q, A_d = L.softmax(dim=0), L.softmax(dim=1)
        C_q = A_q.T @ d
        torch.testing.assert_close(A_D[b, :m, :n], A_d)
        torch.testing.assert_close(C_D[b, :m], A_d @ torch.cat([q, C_q], dim=1))
        assert not A_D[b, :, n:].any()


@pytest.mark.exercise("coattention")
def test_coattention_ignores_what_padding_holds():
    torch.manual_seed(10)
    D, Q = torch.randn(1, 6, 4), torch.randn(1, 3, 4)
    d_mask = torch.tensor([[True] * 4 + [False] * 2])
    q_mask = torch.tensor([[True, True, False]])
    C_D, A_D = coattention(D, Q, d_mask, q_mask)
    D2, Q2 = D.clone(), Q.clone()
    D2[0, 4:] = 100.0
    Q2[0, 2] = -50.0
    C_D2, A_D2 = coattention(D2, Q2, d_mask, q_mask)
    torch.testing.assert_close(C_D2[0, :4], C_D[0, :4])
    torch.testing.assert_close(A_D2[0, :4], A_D[0, :4])


@pytest.mark.exercise("HighwayMaxout.forward")
@pytest.mark.parametrize("pool", [2, 3])
def test_highway_maxout_equations(pool):
    torch.manual_seed(11 + pool)
    hidden = 4
    hmn = HighwayMaxout(hidden, pool).eval()
    U, h = torch.randn(2, 6, 2 * hidden), torch.randn(2, hidden)
    u_s, u_e = torch.randn(2, 2 * hidden), torch.randn(2, 2 * hidden)
    r = torch.tanh(hmn.w_d(torch.cat([h, u_s, u_e], dim=1)))
    x = torch.cat([U, r.unsqueeze(1).expand(2, 6, hidden)], dim=2)
    m1 = hmn.w_1(x).view(2, 6, pool, hidden).max(dim=2).values
    m2 = hmn.w_2(m1).view(2, 6, pool, hidden).max(dim=2).values
    expected = hmn.w_3(torch.cat([m1, m2], dim=2)).max(dim=2).values
    torch.testing.assert_close(hmn(U, h, u_s, u_e), expected)
    torch.testing.assert_close(hmn(U, h, u_s, u_e, hmn.project(U)), expected)


def reference_masked_coattention(D, Q, d_mask, q_mask):
    """The coattention, written here so that the encoder's grade does not depend on the student's."""
    pair = d_mask.unsqueeze(2) & q_mask.unsqueeze(1)
    L = (D @ Q.transpose(1, 2)).masked_fill(~pair, -1e30)
    A_Q = torch.softmax(L, dim=1) * pair
    A_D = torch.softmax(L, dim=2) * pair
    return A_D @ torch.cat([Q, A_Q.transpose(1, 2) @ D], dim=2), A_D


@pytest.mark.exercise("DynamicCoattentionNetwork.encode")
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encode_against_the_encoder_written_out(bidirectional):
    torch.manual_seed(21)
    model = DynamicCoattentionNetwork(torch.randn(40, 5), hidden=3, dropout=0.3, match_feature=True,
                                      bidirectional_encoder=bidirectional).eval()
    g = torch.Generator().manual_seed(22)
    cmask = torch.arange(10) < torch.tensor([10, 6, 8]).unsqueeze(1)
    qmask = torch.arange(7) < torch.tensor([4, 7, 2]).unsqueeze(1)
    context = torch.randint(2, 40, (3, 10), generator=g) * cmask
    question = torch.randint(2, 40, (3, 7), generator=g) * qmask
    with torch.no_grad(), mock.patch.object(models, "coattention", reference_masked_coattention):
        U, A = model.encode(context, cmask, question, qmask)
        x_c, x_q = model.inputs(context, cmask, question, qmask)
        D = torch.cat([model.doc_sentinel.expand(3, 1, -1), model.encoder(x_c, cmask)], dim=1)
        Qp = torch.cat([model.question_sentinel.expand(3, 1, -1), model.encoder(x_q, qmask)], dim=1)
        ones = torch.ones(3, 1, dtype=torch.bool)
        C_D, A_D = reference_masked_coattention(D, torch.tanh(model.question_proj(Qp)),
                                                torch.cat([ones, cmask], 1), torch.cat([ones, qmask], 1))
        want_U = model.fusion(torch.cat([D, C_D], dim=2)[:, 1:], cmask)
    assert U.shape == (3, 10, 6) and A.shape == (3, 10, 7)
    torch.testing.assert_close(U, want_U)
    torch.testing.assert_close(A, A_D[:, 1:, 1:])
    model.train()
    torch.manual_seed(23)
    with mock.patch.object(models, "coattention", reference_masked_coattention):
        U_train, _ = model.encode(context, cmask, question, qmask)
    zeros = float((U_train[cmask] == 0).float().mean())
    assert 0.15 < zeros < 0.45, f"dropout p = 0.3 on U in training: expected about 0.3 zeros, got {zeros:.2f}"


@pytest.mark.exercise("HighwayMaxout.forward")
def test_highway_maxout_pieces_are_laid_out_pool_first():
    """Weights that make the (pool, l) and (l, pool) readings of the pieces differ by construction."""
    torch.manual_seed(12)
    hidden, pool = 2, 3
    hmn = HighwayMaxout(hidden, pool)
    with torch.no_grad():
        hmn.w_1.weight.zero_()
        hmn.w_1.bias.copy_(torch.tensor([0.0, 5.0, 1.0, 0.0, 2.0, 0.0]))  # pieces (k, j) at k * l + j
        hmn.w_2.weight.zero_()
        hmn.w_2.bias.zero_()
        hmn.w_3.weight.zero_()
        hmn.w_3.weight[0, 0] = 1.0  # the score's first piece is m1's unit 0, the others 0
        hmn.w_3.bias.zero_()
        scores = hmn(torch.randn(1, 3, 2 * hidden), torch.randn(1, hidden), torch.randn(1, 2 * hidden),
                     torch.randn(1, 2 * hidden))
    # m1_j = max over k of bias[k * l + j] = (2, 5) (read as (l, p) it would be (5, 2)); score = m1_0
    torch.testing.assert_close(scores, torch.full((1, 3), 2.0))
