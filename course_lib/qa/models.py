"""Readers that point at an answer span: the Dynamic Coattention Network and a simpler BiLSTM reader.

Both take padded token ids and masks and return :class:`SpanLogits` with masked start/end logits per
decoding iteration (the DCN iterates; the simple reader has one), plus an attention map to look at.
Every softmax over a padded axis is masked, and LSTMs run on packed sequences, so padding never
changes a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.qa.batching import UNK_ID


@dataclass
class PointerRounds:
    """What a pointing decoder returns for a batch of B documents of m positions.

    ``starts``/``ends``: the start and end scores of every round run, in order, each (B, m), padding at
    the dtype's most negative value; ``rounds``: (B,) long, per example the round (counted from 1) whose
    scores are its final ones; ``start``/``end``: those final (B, m) scores (row b of
    ``starts[rounds[b] - 1]`` and ``ends[rounds[b] - 1]``)."""

    starts: list[torch.Tensor]
    ends: list[torch.Tensor]
    start: torch.Tensor
    end: torch.Tensor
    rounds: torch.Tensor


@dataclass
class SpanLogits(PointerRounds):
    """A reader's output: its :class:`PointerRounds` (one round for a one-pass reader) and
    ``attention``, the (B, m, n) document-to-question weights."""

    attention: torch.Tensor


def masked_fill_min(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``scores`` with positions where ``mask`` is False set to the dtype's most negative value."""
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` that gives exactly zero weight where ``mask`` is False."""
    return torch.softmax(masked_fill_min(scores, mask), dim=dim) * mask


def coattention(
    D: torch.Tensor, Q: torch.Tensor, d_mask: torch.Tensor, q_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DCN coattention (Xiong et al. 2017, eqs. 3-5), batched and masked.

    ``D``: (B, M, l) document encodings, ``Q``: (B, N, l) question encodings (sentinels included),
    ``d_mask``: (B, M), ``q_mask``: (B, N) bool. With the affinity ``L = D Q^T`` (B, M, N):
    ``A_Q`` = softmax of ``L`` over document positions, ``A_D`` = softmax over question positions,
    ``C_Q = A_Q^T D`` (B, N, l) and ``C_D = A_D [Q; C_Q]`` (B, M, 2l).
    Returns ``C_D`` (B, M, 2l) and ``A_D`` (B, M, N).
    """
    ### BEGIN SOLUTION
    L = D @ Q.transpose(1, 2)  # (B, M, N)
    pair_mask = d_mask.unsqueeze(2) & q_mask.unsqueeze(1)
    A_Q = masked_softmax(L, pair_mask, dim=1)  # attention over the document, per question word
    A_D = masked_softmax(L, pair_mask, dim=2)  # attention over the question, per document word
    C_Q = A_Q.transpose(1, 2) @ D  # (B, N, l)
    C_D = A_D @ torch.cat([Q, C_Q], dim=2)  # (B, M, 2l)
    return C_D, A_D
    ### END SOLUTION


class HighwayMaxout(nn.Module):
    """Highway maxout network (HMN) scoring every document position as a start (or end) of the answer.

    With hidden size l and ``pool`` = p maxout pieces: ``r = tanh(W_D [h; u_s; u_e])`` (no bias),
    ``m1_t = max_p(W_1 [u_t; r] + b_1)``, ``m2_t = max_p(W_2 m1_t + b_2)``,
    ``score_t = max_p(W_3 [m1_t; m2_t] + b_3)``. Each of ``w_1``, ``w_2`` outputs p*l numbers per
    position laid out as (p, l): piece k of unit j is output ``k * l + j``; ``max_p`` is the max over
    the p pieces of each unit (``w_3`` outputs the p pieces of the one score). ``W_1 [u_t; r]`` is
    ``W_1^u u_t + W_1^r r``: the first term does not change between decoder rounds, so the decoder
    computes it once (:meth:`project`) and passes it in. (Dropout is applied once to ``U`` by the
    caller: per-round dropout masks here would dominate the CPU time.)
    """

    def __init__(self, hidden: int, pool: int = 4):
        super().__init__()
        self.hidden, self.pool = hidden, pool
        self.w_d = nn.Linear(5 * hidden, hidden, bias=False)
        self.w_1 = nn.Linear(3 * hidden, pool * hidden)
        self.w_2 = nn.Linear(hidden, pool * hidden)
        self.w_3 = nn.Linear(2 * hidden, pool)

    def project(self, U: torch.Tensor) -> torch.Tensor:
        """``W_1^u u_t + b_1`` at every position (the columns of ``w_1`` that read ``u_t``):
        (B, m, 2l) -> (B, m, p * l)."""
        return F.linear(U, self.w_1.weight[:, : 2 * self.hidden], self.w_1.bias)

    def forward(
        self, U: torch.Tensor, h: torch.Tensor, u_s: torch.Tensor, u_e: torch.Tensor,
        projected: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The class's equations at every position: ``U`` (B, m, 2l) document states, ``h`` (B, l) the
        decoder state, ``u_s``/``u_e`` (B, 2l) the states at the current start and end estimates ->
        scores (B, m), one per position (no mask here: the decoder masks padding).
        ``projected``: ``self.project(U)`` when the caller already has it (compute it here when None),
        to which ``W_1^r r`` (the last l columns of ``w_1.weight``) is added."""
        ### BEGIN SOLUTION
        B, T, _ = U.shape
        r = torch.tanh(self.w_d(torch.cat([h, u_s, u_e], dim=1)))  # (B, l)
        if projected is None:
            projected = self.project(U)
        x = projected + F.linear(r, self.w_1.weight[:, 2 * self.hidden :]).unsqueeze(1)  # W_1 [u_t; r] + b_1
        m1 = x.view(B, T, self.pool, self.hidden).max(dim=2).values
        m2 = self.w_2(m1).view(B, T, self.pool, self.hidden).max(dim=2).values
        return self.w_3(torch.cat([m1, m2], dim=2)).max(dim=2).values
        ### END SOLUTION


def gather_rows(U: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``U[b, index[b]]`` for each row: (B, m, H), (B,) -> (B, H)."""
    return U[torch.arange(U.shape[0], device=U.device), index]


class DecoderRound(NamedTuple):
    """What one round of :class:`DynamicPointingDecoder` returns: the LSTM ``state`` ``(h, c)``, each
    (B, l); the masked start and end scores ``alpha``, ``beta`` (B, m); the new estimates ``start``,
    ``end`` (B,) long."""

    state: tuple[torch.Tensor, torch.Tensor]
    alpha: torch.Tensor
    beta: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor


class DynamicPointingDecoder(nn.Module):
    """The DCN's dynamic pointing decoder (Xiong et al. 2017, section 2.3): an LSTM cell whose state
    follows the current start and end estimates, and two :class:`HighwayMaxout` scorers, one for the
    start and one for the end, applied in alternating rounds.

    Sizes: B documents of m positions, document states ``U`` (B, m, 2l), hidden size l, p maxout
    pieces. Padding positions (``mask`` False) get the dtype's most negative finite value in every
    round's scores (:func:`masked_fill_min`): zero probability under a softmax, never an argmax.
    """

    def __init__(self, hidden: int, pool: int = 4):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(4 * hidden, hidden)
        self.hmn_start = HighwayMaxout(hidden, pool)
        self.hmn_end = HighwayMaxout(hidden, pool)

    def step(
        self, U: torch.Tensor, mask: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
        s: torch.Tensor, e: torch.Tensor, projected: tuple[torch.Tensor, torch.Tensor],
    ) -> DecoderRound:
        """One decoding round from the estimates ``s``, ``e`` (B,) long and the LSTM ``state`` ``(h, c)``.

        ``U`` (B, m, 2l), ``mask`` (B, m) bool (True at real tokens); ``projected``:
        ``(self.hmn_start.project(U), self.hmn_end.project(U))``, each (B, m, p*l).

        1. ``u_s``, ``u_e`` = the rows of ``U`` at ``s`` and ``e`` (:func:`gather_rows`), each (B, 2l);
           the new state ``(h, c) = self.cell([u_s; u_e], state)``.
        2. ``alpha = self.hmn_start(U, h, u_s, u_e, projected[0])``, padding masked; the new start
           ``s'`` = its argmax over positions.
        3. ``beta = self.hmn_end(U, h, u_{s'}, u_e, projected[1])``: the end scorer reads the state at
           the **new** start ``s'`` and at the old end ``e``; padding masked; the new end ``e'`` = its
           argmax.

        Returns :class:`DecoderRound` ``((h, c), alpha, beta, s', e')``.
        """
        ### BEGIN SOLUTION
        u_s, u_e = gather_rows(U, s), gather_rows(U, e)
        h, c = self.cell(torch.cat([u_s, u_e], dim=1), state)
        alpha = masked_fill_min(self.hmn_start(U, h, u_s, u_e, projected[0]), mask)
        new_s = alpha.argmax(dim=1)
        beta = masked_fill_min(self.hmn_end(U, h, gather_rows(U, new_s), u_e, projected[1]), mask)
        new_e = beta.argmax(dim=1)
        return DecoderRound((h, c), alpha, beta, new_s, new_e)
        ### END SOLUTION

    def forward(self, U: torch.Tensor, mask: torch.Tensor, rounds: int, stop_early: bool) -> PointerRounds:
        """Up to ``rounds`` rounds of :meth:`step`, from the estimates ``s = e = 0`` and a zero state
        ``(h, c)`` (each (B, l), ``U``'s dtype and device); ``U`` (B, m, 2l), ``mask`` (B, m) bool.

        Compute ``projected`` once (see :meth:`step`); each round gets the previous round's state and
        estimates. An example has *converged* in the first round whose new estimates ``(s', e')`` equal
        the ones that round was given (in round 1: ``(0, 0)``); its final scores are those of that
        round, even if its estimates move again later (the paper stops an example there). An example
        that never converges keeps the scores of the last round run. With ``stop_early`` (inference)
        no round is run once every example has converged; without it (training) all ``rounds`` are
        run, since the training loss sums the scores of every round.

        Returns :class:`PointerRounds`: every round's ``alpha``/``beta`` (``starts``/``ends``), the
        final round per example (``rounds``, (B,) long, from 1) and its scores (``start``/``end``).
        """
        ### BEGIN SOLUTION
        B = U.shape[0]
        s = torch.zeros(B, dtype=torch.long, device=U.device)
        e = torch.zeros_like(s)
        state = (U.new_zeros(B, self.hidden), U.new_zeros(B, self.hidden))
        projected = (self.hmn_start.project(U), self.hmn_end.project(U))  # the same in every round
        starts: list[torch.Tensor] = []
        ends: list[torch.Tensor] = []
        converged = torch.zeros_like(s)  # the round an example converged in; 0: not yet
        for i in range(1, rounds + 1):
            state, alpha, beta, new_s, new_e = self.step(U, mask, state, s, e, projected)
            starts.append(alpha)
            ends.append(beta)
            converged = torch.where((converged == 0) & (new_s == s) & (new_e == e), i, converged)
            s, e = new_s, new_e
            if stop_early and bool((converged > 0).all()):
                break
        final = torch.where(converged > 0, converged, len(starts))  # (B,)
        pick = (final - 1).view(1, B, 1).expand(1, B, U.shape[1])
        start = torch.stack(starts).gather(0, pick)[0]
        end = torch.stack(ends).gather(0, pick)[0]
        return PointerRounds(starts, ends, start, end, final)
        ### END SOLUTION


def frozen_or_trainable_embedding(vectors: torch.Tensor, freeze: bool) -> nn.Embedding:
    """An embedding layer initialised from (V, E) ``vectors``; row 0 is padding."""
    return nn.Embedding.from_pretrained(vectors.float(), freeze=freeze, padding_idx=0)


def reverse_within_length(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row of ``x`` (B, T, H) reversed within its length (``mask`` (B, T), right padding), the
    padding left in place; its own inverse."""
    T = x.shape[1]
    lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
    t = torch.arange(T, device=x.device).unsqueeze(0)  # (1, T)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (B, T)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class MaskedLSTM(nn.Module):
    """An LSTM over right-padded batches, one direction or two, exact despite the padding.

    It runs on the padded tensor (the fused CPU kernel, several times faster than packed sequences):
    the forward direction never sees padding before a real token, the backward direction reads each
    row reversed within its length (:func:`reverse_within_length`), and outputs at padding are zero.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False):
        super().__init__()
        self.hidden_size, self.bidirectional = hidden_size, bidirectional
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True) if bidirectional else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, E), ``mask`` (B, T) bool -> (B, T, H) or, bidirectional, (B, T, 2H)."""
        out = self.forward_lstm(x)[0]
        if self.backward_lstm is not None:
            backward = self.backward_lstm(reverse_within_length(x, mask))[0]
            out = torch.cat([out, reverse_within_length(backward, mask)], dim=2)
        return out * mask.unsqueeze(2)


class ReaderInput(nn.Module):
    """Both readers' token inputs: GloVe rows (dropout applied), optionally followed by one binary
    feature per token, whether its word (the same lower-cased vocabulary id, ``<unk>`` excluded) also
    occurs in the other text (DrQA's exact match, Chen et al. 2017). ``size`` is E or E + 1."""

    def __init__(self, vectors: torch.Tensor, dropout: float, match_feature: bool, freeze: bool = True):
        super().__init__()
        self.embed = frozen_or_trainable_embedding(vectors, freeze)
        self.dropout = nn.Dropout(dropout)
        self.match_feature = match_feature
        self.size = vectors.shape[1] + int(match_feature)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``context`` (B, T), ``question`` (B, J) with bool masks -> (B, T, size), (B, J, size)."""
        x_c, x_q = self.dropout(self.embed(context)), self.dropout(self.embed(question))
        if not self.match_feature:
            return x_c, x_q
        known_c, known_q = context_mask & (context != UNK_ID), question_mask & (question != UNK_ID)
        same = (context.unsqueeze(2) == question.unsqueeze(1)) & known_c.unsqueeze(2) & known_q.unsqueeze(1)
        return (torch.cat([x_c, same.any(dim=2, keepdim=True).to(x_c.dtype)], dim=2),
                torch.cat([x_q, same.any(dim=1).unsqueeze(2).to(x_q.dtype)], dim=2))


def prepend_sentinel(
    x: torch.Tensor, mask: torch.Tensor, sentinel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sentinel`` (H,) put before every row of ``x`` (B, T, H) -> (B, T + 1, H), and ``mask`` (B, T)
    with a True in front -> (B, T + 1): a position any word may attend to when nothing fits."""
    B = x.shape[0]
    return torch.cat([sentinel.expand(B, 1, -1), x], dim=1), torch.cat([mask.new_ones(B, 1), mask], dim=1)


class DynamicCoattentionNetwork(nn.Module):
    """DCN (Xiong et al. 2017): coattention encoder + dynamic pointing decoder with HMN scorers.

    A shared LSTM encodes document and question (one direction as in the paper, l features; or, with
    ``bidirectional_encoder``, both, 2l features); a trainable sentinel is prepended to each; the
    question passes through ``tanh(W q + b)``; the coattention context ``[D; C_D]`` is fused by a
    BiLSTM into ``U`` (B, T, 2l); the :class:`DynamicPointingDecoder` then re-estimates
    ``(start, end)``: ``train_iters`` rounds in training (default ``max_iters``), up to ``max_iters``
    at inference, where an example keeps the scores of the round at which its estimate stopped
    changing. ``match_feature``: see :class:`ReaderInput`.
    """

    def __init__(
        self,
        vectors: torch.Tensor,
        hidden: int = 100,
        pool: int = 4,
        max_iters: int = 4,
        dropout: float = 0.2,
        freeze_embeddings: bool = True,
        match_feature: bool = False,
        train_iters: int | None = None,
        bidirectional_encoder: bool = False,
    ):
        super().__init__()
        if max_iters < 1 or (train_iters is not None and train_iters < 1):
            raise ValueError(f"max_iters and train_iters must be >= 1, got {max_iters} and {train_iters}")
        self.max_iters = max_iters
        self.train_iters = max_iters if train_iters is None else train_iters
        self.inputs = ReaderInput(vectors, dropout, match_feature, freeze_embeddings)
        self.encoder = MaskedLSTM(self.inputs.size, hidden, bidirectional=bidirectional_encoder)
        width = 2 * hidden if bidirectional_encoder else hidden  # features of D and Q
        self.doc_sentinel = nn.Parameter(torch.randn(width) * 0.1)
        self.question_sentinel = nn.Parameter(torch.randn(width) * 0.1)
        self.question_proj = nn.Linear(width, width)
        self.fusion = MaskedLSTM(3 * width, hidden, bidirectional=True)
        self.decoder = DynamicPointingDecoder(hidden, pool)
        self.dropout = nn.Dropout(dropout)

    def encode(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The coattention encoder (Xiong et al. 2017, sections 2.1-2.2) for a batch of B documents of
        m tokens and questions of n tokens: token ids ``context`` (B, m), ``question`` (B, n) and their
        bool masks (True at real tokens). With hidden size l, the encoder's features l' (l, or 2l with
        ``bidirectional_encoder``):

        1. ``x_c, x_q = self.inputs(...)``: the token vectors (dropout inside).
        2. ``D = self.encoder(x_c, context_mask)`` (B, m, l') and ``Q' = self.encoder(x_q, question_mask)``
           (B, n, l'): **one** encoder, shared by both texts.
        3. :func:`prepend_sentinel` puts ``self.doc_sentinel`` before ``D`` and ``self.question_sentinel``
           before ``Q'`` (B, m + 1, l') and (B, n + 1, l'), with masks one longer.
        4. ``Q = tanh(self.question_proj(Q'))`` (its sentinel included).
        5. ``C_D, A_D = coattention(D, Q, ...)``: (B, m + 1, 2l'), (B, m + 1, n + 1).
        6. ``U = self.dropout(self.fusion([D; C_D], context_mask))`` (B, m, 2l), the document sentinel's
           row left out of ``[D; C_D]`` (B, m, 3l') first.

        Returns ``U`` (B, m, 2l) and ``A_D`` without the sentinels' row and column (B, m, n).
        """
        ### BEGIN SOLUTION
        x_c, x_q = self.inputs(context, context_mask, question, question_mask)
        D, Qp = self.encoder(x_c, context_mask), self.encoder(x_q, question_mask)  # (B, m, l'), (B, n, l')
        D, d_mask = prepend_sentinel(D, context_mask, self.doc_sentinel)
        Qp, q_mask = prepend_sentinel(Qp, question_mask, self.question_sentinel)
        Q = torch.tanh(self.question_proj(Qp))
        C_D, A_D = coattention(D, Q, d_mask, q_mask)
        fused = torch.cat([D, C_D], dim=2)[:, 1:]  # drop the document sentinel: (B, m, 3l')
        U = self.dropout(self.fusion(fused, context_mask))  # (B, m, 2l)
        return U, A_D[:, 1:, 1:]
        ### END SOLUTION

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> SpanLogits:
        """``context`` (B, m), ``question`` (B, n) token ids with their bool masks -> :class:`SpanLogits`:
        :meth:`encode`, then the decoder's ``train_iters`` rounds in training, or up to ``max_iters``
        rounds stopping early at inference (``eval()``)."""
        U, attention = self.encode(context, context_mask, question, question_mask)
        rounds = self.train_iters if self.training else self.max_iters
        out = self.decoder(U, context_mask, rounds, stop_early=not self.training)
        return SpanLogits(out.starts, out.ends, out.start, out.end, out.rounds, attention)


class BiLSTMPointerReader(nn.Module):
    """The simpler reader: shared BiLSTM encoder, bilinear document-to-question attention,
    ``[c; a; c * a]`` fused by a BiLSTM, and two linear pointers for start and end."""

    def __init__(self, vectors: torch.Tensor, hidden: int = 100, dropout: float = 0.2,
                 freeze_embeddings: bool = True, match_feature: bool = False):
        super().__init__()
        self.inputs = ReaderInput(vectors, dropout, match_feature, freeze_embeddings)
        self.encoder = MaskedLSTM(self.inputs.size, hidden, bidirectional=True)
        self.bilinear = nn.Linear(2 * hidden, 2 * hidden, bias=False)
        self.fusion = MaskedLSTM(6 * hidden, hidden, bidirectional=True)
        self.start_head = nn.Linear(2 * hidden, 1)
        self.end_head = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> SpanLogits:
        """``context`` (B, T), ``question`` (B, J) token ids with their bool masks -> :class:`SpanLogits`."""
        x_c, x_q = self.inputs(context, context_mask, question, question_mask)
        C, Q = self.encoder(x_c, context_mask), self.encoder(x_q, question_mask)  # (B, T, 2l), (B, J, 2l)
        scores = self.bilinear(C) @ Q.transpose(1, 2)  # (B, T, J)
        weights = masked_softmax(scores, question_mask.unsqueeze(1).expand_as(scores), dim=2)
        A = weights @ Q
        G = self.fusion(self.dropout(torch.cat([C, A, C * A], dim=2)), context_mask)
        start = masked_fill_min(self.start_head(G).squeeze(2), context_mask)
        end = masked_fill_min(self.end_head(G).squeeze(2), context_mask)
        one_round = torch.ones(start.shape[0], dtype=torch.long, device=start.device)
        return SpanLogits([start], [end], start, end, one_round, weights)


def span_loss(out: PointerRounds, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """The training loss of a pointing reader: the cross-entropy of the true start and of the true end
    under the scores of **every** round, summed over rounds (Xiong et al. 2017, section 2.3: the
    "cumulative softmax cross entropy ... across iterations"), each cross-entropy averaged over the batch.

    ``out.starts``, ``out.ends``: R rounds of (B, m) scores (padding at the dtype's most negative value,
    so it gets zero probability); ``start``, ``end``: (B,) long, the true positions (every example has
    one). Returns a scalar: ``sum_r [mean_b CE(starts[r][b], start[b]) + mean_b CE(ends[r][b], end[b])]``,
    computed in float32 (scores may come in bfloat16 under autocast); 2R terms, one for a one-pass reader's
    single round.
    """
    ### BEGIN SOLUTION
    total = torch.zeros((), device=start.device)
    for alpha, beta in zip(out.starts, out.ends, strict=True):
        total = total + (F.cross_entropy(alpha.float(), start) + F.cross_entropy(beta.float(), end))
    return total
    ### END SOLUTION
