"""Hidden tests of assignment 04's exercises: coattention by hand with padding on both sides, the
highway maxout network's equations with pieces of another size."""

from __future__ import annotations

import pytest
import torch

from course_lib.qa.models import HighwayMaxout, coattention


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
