"""The exercises of the encoder and the scorer (coattention, the coattention encoder, the highway maxout
network) with wrong-but-runnable variants each check rejects, the masked LSTM, the readers' inputs, and
the readers built on them."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.qa import models
from course_lib.qa.batching import UNK_ID
from course_lib.qa.models import (
    BiLSTMPointerReader,
    DynamicCoattentionNetwork,
    HighwayMaxout,
    MaskedLSTM,
    ReaderInput,
    coattention,
    masked_softmax,
    prepend_sentinel,
    reverse_within_length,
    span_loss,
)
from tests.qa.checks import assert_check_fails, assert_close_to, assert_equal_to

# ---------------------------------------------------------------------------------------------- coattention


def reference_coattention(D, Q):
    """Xiong et al. eqs. 3-5 for one unpadded example, in the paper's column layout (l x m)."""
    D, Q = D.T, Q.T  # (l, m), (l, n)
    L = D.T @ Q  # (m, n)
    A_Q = torch.softmax(L, dim=0)  # (m, n): columns sum to 1
    A_D = torch.softmax(L.T, dim=0)  # (n, m)
    C_Q = D @ A_Q  # (l, n)
    C_D = torch.cat([Q, C_Q], dim=0) @ A_D  # (2l, m)
    return C_D.T, A_D.T


def check_coattention(coattention_fn):
    """Three padded examples (their padding holds random numbers) against the paper's equations."""
    torch.manual_seed(0)
    lengths = [(7, 4), (5, 3), (9, 6)]
    B, M, N, H = 3, 9, 6, 5
    D, Q = torch.randn(B, M, H), torch.randn(B, N, H)
    d_mask = torch.arange(M) < torch.tensor([m for m, _ in lengths]).unsqueeze(1)
    q_mask = torch.arange(N) < torch.tensor([n for _, n in lengths]).unsqueeze(1)
    C_D, A_D = coattention_fn(D, Q, d_mask, q_mask)
    assert_equal_to(tuple(A_D.shape), (B, M, N), "A_D's shape (B, M, N)")
    assert_equal_to(tuple(C_D.shape), (B, M, 2 * H), "C_D's shape (B, M, 2l)")
    for b, (m, n) in enumerate(lengths):
        assert_equal_to(bool(A_D[b, :, n:].any()), False,
                        f"example {b}: A_D's weights on question padding (columns {n}:) all zero")
        ref_C, ref_A = reference_coattention(D[b, :m], Q[b, :n])
        assert_close_to(A_D[b, :m, :n], ref_A, f"example {b}: A_D, softmax of L over the question words")
        assert_close_to(C_D[b, :m], ref_C, f"example {b}: C_D = A_D [Q; C_Q]")


@pytest.mark.exercise("coattention")
def test_coattention_matches_the_paper_per_example_despite_padding():
    check_coattention(coattention)


def coattention_without_masks(D, Q, d_mask, q_mask):
    L = D @ Q.transpose(1, 2)
    A_Q, A_D = torch.softmax(L, dim=1), torch.softmax(L, dim=2)
    return A_D @ torch.cat([Q, A_Q.transpose(1, 2) @ D], dim=2), A_D


def coattention_both_over_the_question(D, Q, d_mask, q_mask):
    L = D @ Q.transpose(1, 2)
    A_Q = A_D = masked_softmax(L, d_mask.unsqueeze(2) & q_mask.unsqueeze(1), dim=2)
    return A_D @ torch.cat([Q, A_Q.transpose(1, 2) @ D], dim=2), A_D


def coattention_without_c_q(D, Q, d_mask, q_mask):
    A_D = masked_softmax(D @ Q.transpose(1, 2), d_mask.unsqueeze(2) & q_mask.unsqueeze(1), dim=2)
    return A_D @ Q, A_D


@pytest.mark.parametrize(("wrong", "match"), [
    (coattention_without_masks, r"A_D's weights on question padding \(columns 4:\) all zero: expected False"),
    (coattention_both_over_the_question, r"C_D = A_D \[Q; C_Q\]: expected"),
    (coattention_without_c_q, r"C_D's shape \(B, M, 2l\): expected \(3, 9, 10\), got \(3, 9, 5\)"),
], ids=["no masks", "A_Q over the question", "C_D without C_Q"])
def test_coattention_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_coattention, wrong, match)


# ----------------------------------------------------------------------------------- the coattention encoder


def tiny_batch(V=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.randint(2, V, (4, 12), generator=g)
    question = torch.randint(2, V, (4, 5), generator=g)
    cmask = torch.arange(12) < torch.tensor([12, 9, 7, 10]).unsqueeze(1)
    qmask = torch.arange(5) < torch.tensor([5, 3, 4, 2]).unsqueeze(1)
    return context * cmask, cmask, question * qmask, qmask


def stand_in_coattention(D, Q, d_mask, q_mask):
    """Not the coattention: some function of the right shapes, so that the encoder's check needs no other
    exercise. C_D (B, M, 2l), A_D (B, M, N), zero at padding pairs."""
    pair = (d_mask.unsqueeze(2) & q_mask.unsqueeze(1)).float()
    A = torch.sigmoid(D.sum(2, keepdim=True) + Q.sum(2).unsqueeze(1)) * pair
    return torch.cat([D.roll(1, dims=2), 0.5 * D + A.sum(2, keepdim=True)], dim=2), A


class Recorder:
    """The first input, the mask and the output of every call of the DCN's ``encoder``, ``question_proj``
    and ``fusion``, and of the coattention (:meth:`coattention` stands in for it)."""

    def __init__(self, model):
        self.calls: dict[str, list] = {"encoder": [], "question_proj": [], "fusion": [], "coattention": []}
        self.handles = [getattr(model, name).register_forward_hook(self.hook(name), with_kwargs=True)
                        for name in ("encoder", "question_proj", "fusion")]

    def hook(self, name):
        def record(module, args, kwargs, output):
            inputs = list(args) + list(kwargs.values())
            self.calls[name].append((inputs[0], inputs[1] if len(inputs) > 1 else None, output))
        return record

    def coattention(self, D, Q, d_mask, q_mask):
        out = stand_in_coattention(D, Q, d_mask, q_mask)
        self.calls["coattention"].append(((D, Q, d_mask, q_mask), out))
        return out

    def remove(self):
        for handle in self.handles:
            handle.remove()


def run_encode(encode_fn, model, batch):
    """``encode_fn(model, *batch)`` with the coattention replaced by the stand-in: its output and the
    calls recorded."""
    recorder = Recorder(model)
    try:
        with mock.patch.object(models, "coattention", recorder.coattention):
            out = encode_fn(model, *batch)
    finally:
        recorder.remove()
    return out, recorder.calls


def check_encode(encode_fn, bidirectional=False):
    """The coattention encoder's contract step by step (the coattention replaced by a stand-in)."""
    torch.manual_seed(0)
    model = DynamicCoattentionNetwork(torch.randn(50, 6), hidden=4, dropout=0.5,
                                      bidirectional_encoder=bidirectional).eval()
    context, cmask, question, qmask = batch = tiny_batch()
    B, m, n, width = 4, 12, 5, 8 if bidirectional else 4
    with torch.no_grad():
        (U, A), calls = run_encode(encode_fn, model, batch)
        x_c, x_q = model.inputs(context, cmask, question, qmask)
        D, Qp = model.encoder(x_c, cmask), model.encoder(x_q, qmask)
        D_sentinel, d_mask = prepend_sentinel(D, cmask, model.doc_sentinel)
        Q_sentinel, q_mask = prepend_sentinel(Qp, qmask, model.question_sentinel)
        Q = torch.tanh(model.question_proj(Q_sentinel))
    assert_equal_to(len(calls["encoder"]), 2, "calls of self.encoder (one shared encoder: the document's "
                                               "and the question's vectors from self.inputs)")
    by_length = {x.shape[1]: x for x, _, _ in calls["encoder"]}
    assert_equal_to(sorted(by_length), [n, m], "lengths of the two encoder inputs (question, document)")
    assert_close_to(by_length[m], x_c, "the document's encoder input: self.inputs(...)[0]")
    assert_close_to(by_length[n], x_q, "the question's encoder input: self.inputs(...)[1]")
    assert_equal_to(len(calls["coattention"]), 1, "calls of coattention")
    (D_in, Q_in, d_mask_in, q_mask_in), (C_D, A_D) = calls["coattention"][0]
    assert_equal_to(tuple(D_in.shape), (B, m + 1, width),
                    "D given to coattention: (B, m + 1, l'), the document sentinel first")
    assert_close_to(D_in, D_sentinel, "D given to coattention: the document sentinel, then self.encoder's "
                                      "document encodings")
    assert_equal_to(d_mask_in, d_mask, "d_mask given to coattention: True, then context_mask")
    assert_equal_to(tuple(Q_in.shape), (B, n + 1, width), "Q given to coattention: (B, n + 1, l')")
    assert_close_to(Q_in, Q, "Q given to coattention: tanh(question_proj(Q')), the question sentinel first")
    assert_equal_to(q_mask_in, q_mask, "q_mask given to coattention: True, then question_mask")
    assert_equal_to(len(calls["fusion"]), 1, "calls of self.fusion")
    fused, fusion_mask, fusion_out = calls["fusion"][0]
    assert_close_to(fused, torch.cat([D_sentinel, C_D], dim=2)[:, 1:],
                    "the fusion's input: [D; C_D] without the document sentinel's row (B, m, 3l')")
    assert_equal_to(fusion_mask, cmask, "the fusion's mask: context_mask")
    assert_close_to(U, fusion_out, "U in eval mode: the fusion's output (dropout off)")
    assert_close_to(A, A_D[:, 1:, 1:], "the attention returned: A_D without the sentinels' row and column")
    model.train()
    torch.manual_seed(1)
    (U, _), calls = run_encode(encode_fn, model, batch)
    fusion_out = calls["fusion"][0][2].detach()
    U = U.detach()
    real = cmask.unsqueeze(2).expand_as(U) & (fusion_out != 0)
    dropped = float((U[real] == 0).float().mean())
    assert 0.3 < dropped < 0.7, (f"U in training: self.dropout (p = 0.5) of the fusion's output: expected "
                                 f"about half of its entries zero, got {dropped:.2f}")
    kept = real & (U != 0)
    assert_close_to(U[kept], fusion_out[kept] / 0.5, "U's kept entries in training: fusion output / (1 - p)")


@pytest.mark.exercise("DynamicCoattentionNetwork.encode")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bilstm"])
def test_encode_follows_the_coattention_encoder_step_by_step(bidirectional):
    check_encode(DynamicCoattentionNetwork.encode, bidirectional)


def encode_variant(*, tanh=True, sentinels=True, drop="first", order="DC", dropout=True, attention="inner"):
    """An encoder with one step done otherwise (the defaults are the contract's)."""
    def encode(self, context, context_mask, question, question_mask):
        x_c, x_q = self.inputs(context, context_mask, question, question_mask)
        D, Qp = self.encoder(x_c, context_mask), self.encoder(x_q, question_mask)
        d_mask, q_mask = context_mask, question_mask
        if sentinels:
            D, d_mask = prepend_sentinel(D, context_mask, self.doc_sentinel)
            Qp, q_mask = prepend_sentinel(Qp, question_mask, self.question_sentinel)
        Q = torch.tanh(self.question_proj(Qp)) if tanh else self.question_proj(Qp)
        C_D, A_D = models.coattention(D, Q, d_mask, q_mask)
        both = torch.cat([D, C_D] if order == "DC" else [C_D, D], dim=2)
        fused = (both[:, 1:] if drop == "first" else both[:, :-1]) if sentinels else both
        U = self.fusion(fused, context_mask)
        U = self.dropout(U) if dropout else U
        if not sentinels:
            return U, A_D
        return U, A_D[:, 1:, 1:] if attention == "inner" else A_D[:, 1:, :-1]
    return encode


@pytest.mark.parametrize(("wrong", "match"), [
    (encode_variant(tanh=False), r"Q given to coattention: tanh\(question_proj\(Q'\)\)"),
    (encode_variant(sentinels=False), r"D given to coattention: \(B, m \+ 1, l'\).*: expected \(4, 13, 4\)"),
    (encode_variant(drop="last"), r"the fusion's input: \[D; C_D\] without the document sentinel's row"),
    (encode_variant(order="CD"), r"the fusion's input"),
    (encode_variant(attention="last column dropped"), r"the attention returned"),
    (encode_variant(dropout=False), r"expected about half of its entries zero, got 0.00"),
], ids=["no tanh", "no sentinels", "last row dropped", "[C_D; D]", "attention columns", "no dropout"])
def test_encode_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_encode, wrong, match)


def test_encode_variant_is_right_otherwise():
    """The variants above differ from the contract only where they say."""
    check_encode(encode_variant())


# ------------------------------------------------------------------------------- the highway maxout network


def hmn_by_hand(hmn, U, h, u_s, u_e):
    """The HMN's equations one position at a time, each maxout over the pool pieces of each unit."""
    hidden, p = hmn.hidden, hmn.pool
    scores = torch.empty(U.shape[:2])
    for b in range(U.shape[0]):
        r = torch.tanh(hmn.w_d.weight @ torch.cat([h[b], u_s[b], u_e[b]]))
        for t in range(U.shape[1]):
            m1 = (hmn.w_1.weight @ torch.cat([U[b, t], r]) + hmn.w_1.bias).view(p, hidden).max(0).values
            m2 = (hmn.w_2.weight @ m1 + hmn.w_2.bias).view(p, hidden).max(0).values
            scores[b, t] = (hmn.w_3.weight @ torch.cat([m1, m2]) + hmn.w_3.bias).max()
    return scores


def check_highway_maxout(forward_fn):
    """Every position of two examples against the equations, with and without ``projected``."""
    torch.manual_seed(0)
    hmn = HighwayMaxout(hidden=3, pool=2)
    U, h = torch.randn(2, 5, 6), torch.randn(2, 3)
    u_s, u_e = torch.randn(2, 6), torch.randn(2, 6)
    with torch.no_grad():
        expected = hmn_by_hand(hmn, U, h, u_s, u_e)
        assert_close_to(forward_fn(hmn, U, h, u_s, u_e), expected, "HMN scores (B, m) without projected")
        # the decoder passes the rounds' shared part in: the same scores
        assert_close_to(forward_fn(hmn, U, h, u_s, u_e, hmn.project(U)), expected,
                        "HMN scores (B, m) with projected = self.project(U)")


@pytest.mark.exercise("HighwayMaxout.forward")
def test_highway_maxout_matches_its_equations():
    check_highway_maxout(HighwayMaxout.forward)


def hmn_variant(*, pieces_last=False, tanh=True):
    """A highway maxout network with one step done otherwise (the defaults are the contract's)."""
    def forward(self, U, h, u_s, u_e, projected=None):
        B, T, _ = U.shape
        r = self.w_d(torch.cat([h, u_s, u_e], dim=1))
        r = torch.tanh(r) if tanh else r

        def maxout(y):
            if pieces_last:  # read as (l, p): the pieces of a unit side by side
                return y.view(B, T, self.hidden, self.pool).max(dim=3).values
            return y.view(B, T, self.pool, self.hidden).max(dim=2).values

        m1 = maxout(self.w_1(torch.cat([U, r.unsqueeze(1).expand(B, T, -1)], dim=2)))
        m2 = maxout(self.w_2(m1))
        return self.w_3(torch.cat([m1, m2], dim=2)).max(dim=2).values
    return forward


@pytest.mark.parametrize(("wrong", "match"), [
    (hmn_variant(pieces_last=True), r"HMN scores \(B, m\) without projected: expected"),
    (hmn_variant(tanh=False), r"HMN scores \(B, m\) without projected: expected"),
], ids=["maxout over the wrong axis", "no tanh"])
def test_highway_maxout_check_rejects_wrong_variants(wrong, match):
    assert_check_fails(check_highway_maxout, wrong, match)


def test_hmn_variant_is_right_otherwise():
    check_highway_maxout(hmn_variant())


# ------------------------------------------------------------------ the given parts, and the readers whole


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


DCN_DONE = pytest.mark.exercise("DynamicPointingDecoder.forward")  # the DCN runs with its exercises written


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


@pytest.mark.exercise("span_loss")  # the last exercise it needs
def test_dcn_loss_sums_rounds_and_the_model_learns_a_batch():
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
