"""The exercises (coattention, the highway maxout network), the masked LSTM and the readers' inputs,
and the readers built on them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.qa.batching import UNK_ID
from course_lib.qa.models import (
    BiLSTMPointerReader,
    DynamicCoattentionNetwork,
    HighwayMaxout,
    MaskedLSTM,
    ReaderInput,
    coattention,
    reverse_within_length,
    span_loss,
)


def reference_coattention(D, Q):
    """Xiong et al. eqs. 3-5 for one unpadded example, in the paper's column layout (l x m)."""
    D, Q = D.T, Q.T  # (l, m), (l, n)
    L = D.T @ Q  # (m, n)
    A_Q = torch.softmax(L, dim=0)  # (m, n): columns sum to 1
    A_D = torch.softmax(L.T, dim=0)  # (n, m)
    C_Q = D @ A_Q  # (l, n)
    C_D = torch.cat([Q, C_Q], dim=0) @ A_D  # (2l, m)
    return C_D.T, A_D.T


@pytest.mark.exercise("coattention")
def test_coattention_matches_the_paper_per_example_despite_padding():
    torch.manual_seed(0)
    lengths = [(7, 4), (5, 3), (9, 6)]
    B, M, N, H = 3, 9, 6, 5
    D, Q = torch.randn(B, M, H), torch.randn(B, N, H)
    d_mask = torch.arange(M) < torch.tensor([m for m, _ in lengths]).unsqueeze(1)
    q_mask = torch.arange(N) < torch.tensor([n for _, n in lengths]).unsqueeze(1)
    C_D, A_D = coattention(D * d_mask.unsqueeze(2), Q * q_mask.unsqueeze(2), d_mask, q_mask)
    assert C_D.shape == (B, M, 2 * H) and A_D.shape == (B, M, N)
    for b, (m, n) in enumerate(lengths):
        ref_C, ref_A = reference_coattention(D[b, :m], Q[b, :n])
        torch.testing.assert_close(C_D[b, :m], ref_C)
        torch.testing.assert_close(A_D[b, :m, :n], ref_A)
        assert torch.all(A_D[b, :, n:] == 0)


@pytest.mark.exercise("HighwayMaxout.forward")
def test_highway_maxout_matches_its_equations():
    torch.manual_seed(0)
    hmn = HighwayMaxout(hidden=3, pool=2)
    U, h = torch.randn(2, 5, 6), torch.randn(2, 3)
    u_s, u_e = torch.randn(2, 6), torch.randn(2, 6)
    scores = hmn(U, h, u_s, u_e)
    assert scores.shape == (2, 5)
    b, t = 1, 3
    r = torch.tanh(hmn.w_d.weight @ torch.cat([h[b], u_s[b], u_e[b]]))
    m1 = (hmn.w_1.weight @ torch.cat([U[b, t], r]) + hmn.w_1.bias).view(2, 3).max(0).values
    m2 = (hmn.w_2.weight @ m1 + hmn.w_2.bias).view(2, 3).max(0).values
    expected = (hmn.w_3.weight @ torch.cat([m1, m2]) + hmn.w_3.bias).max()
    torch.testing.assert_close(scores[b, t], expected)
    # the decoder passes the rounds' shared part in: the same scores
    torch.testing.assert_close(hmn(U, h, u_s, u_e, hmn.project(U)), scores)


def test_reverse_within_length_keeps_padding_in_place_and_undoes_itself():
    x = torch.arange(8.0).view(2, 4, 1)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    assert reverse_within_length(x, mask)[..., 0].tolist() == [[2, 1, 0, 3], [5, 4, 6, 7]]
    torch.testing.assert_close(reverse_within_length(reverse_within_length(x, mask), mask), x)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_lstm_equals_a_packed_lstm_with_the_same_weights(bidirectional):
    torch.manual_seed(0)
    masked = MaskedLSTM(5, 4, bidirectional=bidirectional)
    packed = nn.LSTM(5, 4, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for name, value in masked.forward_lstm.named_parameters():
            getattr(packed, name).copy_(value)
        if bidirectional:
            for name, value in masked.backward_lstm.named_parameters():
                getattr(packed, f"{name}_reverse").copy_(value)
    lengths = torch.tensor([7, 3, 5])
    mask = torch.arange(7) < lengths.unsqueeze(1)
    x = torch.randn(3, 7, 5)
    want = pad_packed_sequence(packed(pack_padded_sequence(x, lengths, batch_first=True,
                                                           enforce_sorted=False))[0], batch_first=True)[0]
    torch.testing.assert_close(masked(x, mask), want)


def test_reader_input_marks_words_shared_by_context_and_question():
    vectors = torch.randn(10, 3)
    inputs = ReaderInput(vectors, dropout=0.0, match_feature=True)
    context = torch.tensor([[4, 5, UNK_ID, 6, 0]])  # <unk> never matches; 0 is padding
    question = torch.tensor([[6, UNK_ID, 4, 0]])
    x_c, x_q = inputs(context, context != 0, question, question != 0)
    assert inputs.size == 4 and x_c.shape == (1, 5, 4) and x_q.shape == (1, 4, 4)
    assert x_c[0, :, 3].tolist() == [1, 0, 0, 1, 0] and x_q[0, :, 3].tolist() == [1, 0, 1, 0]
    torch.testing.assert_close(x_c[..., :3], vectors[context])
    plain = ReaderInput(vectors, dropout=0.0, match_feature=False)
    assert plain.size == 3 and plain(context, context != 0, question, question != 0)[0].shape == (1, 5, 3)


def tiny_batch(V=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.randint(2, V, (4, 12), generator=g)
    question = torch.randint(2, V, (4, 5), generator=g)
    cmask = torch.arange(12) < torch.tensor([12, 9, 7, 10]).unsqueeze(1)
    qmask = torch.arange(5) < torch.tensor([5, 3, 4, 2]).unsqueeze(1)
    return context * cmask, cmask, question * qmask, qmask


DCN_DONE = pytest.mark.exercise("HighwayMaxout.forward")  # the DCN runs once both exercises are written


@pytest.mark.parametrize(("reader", "options"), [
    pytest.param(DynamicCoattentionNetwork, {}, marks=DCN_DONE),
    pytest.param(DynamicCoattentionNetwork, {"match_feature": True, "train_iters": 2,
                                             "bidirectional_encoder": True}, marks=DCN_DONE),
    (BiLSTMPointerReader, {}),
    (BiLSTMPointerReader, {"match_feature": True}),
])
def test_readers_ignore_padding(reader, options):
    torch.manual_seed(0)
    model = reader(torch.randn(50, 8), hidden=6, dropout=0.0, **options).eval()
    context, cmask, question, qmask = tiny_batch()
    out = model(context, cmask, question, qmask)
    assert out.start.shape == (4, 12) and out.attention.shape == (4, 12, 5)
    assert torch.all(out.start[~cmask] == torch.finfo(out.start.dtype).min)
    # the same example alone, without the batch's padding, gives the same logits
    alone = model(context[1:2, :9], cmask[1:2, :9], question[1:2, :3], qmask[1:2, :3])
    torch.testing.assert_close(alone.start[0], out.start[1, :9], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(alone.end[0], out.end[1, :9], rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("HighwayMaxout.forward")
def test_dcn_loss_sums_iterations_and_the_model_learns_a_batch():
    torch.manual_seed(0)
    model = DynamicCoattentionNetwork(torch.randn(50, 8), hidden=8, max_iters=3, dropout=0.0)
    context, cmask, question, qmask = tiny_batch()
    start, end = torch.tensor([2, 0, 3, 5]), torch.tensor([4, 1, 3, 8])
    out = model(context, cmask, question, qmask)
    assert len(out.starts) == 3
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = float(span_loss(out, start, end).detach())
    for _ in range(40):
        loss = span_loss(model(context, cmask, question, qmask), start, end)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.2 * first
    with pytest.raises(ValueError, match="max_iters"):
        DynamicCoattentionNetwork(torch.randn(5, 4), max_iters=0)
