"""Readers that point at an answer span: the Dynamic Coattention Network and a simpler BiLSTM reader.

Both take padded token ids and masks and return :class:`SpanLogits` with masked start/end logits per
decoding iteration (the DCN iterates; the simple reader has one), plus an attention map to look at.
Every softmax over a padded axis is masked, and LSTMs run on packed sequences, so padding never
changes a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class SpanLogits:
    """``starts``/``ends``: per iteration, (B, T) logits (padding at the dtype's minimum);
    ``start``/``end``: the final (B, T) logits; ``attention``: (B, T, J) document-to-question weights."""

    starts: list[torch.Tensor]
    ends: list[torch.Tensor]
    start: torch.Tensor
    end: torch.Tensor
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
    """Highway maxout network scoring every document position as a start (or end) of the answer.

    ``r = tanh(W_D [h; u_s; u_e])``, ``m1 = max_p(W_1 [u_t; r] + b_1)``, ``m2 = max_p(W_2 m1 + b_2)``,
    ``score_t = max_p(W_3 [m1; m2] + b_3)`` with ``p`` = ``pool`` maxout pieces. (Dropout is applied
    once to ``U`` by the caller: per-iteration dropout masks here would dominate the CPU time.)
    """

    def __init__(self, hidden: int, pool: int = 4):
        super().__init__()
        self.hidden, self.pool = hidden, pool
        self.w_d = nn.Linear(5 * hidden, hidden, bias=False)
        self.w_1 = nn.Linear(3 * hidden, pool * hidden)
        self.w_2 = nn.Linear(hidden, pool * hidden)
        self.w_3 = nn.Linear(2 * hidden, pool)

    def forward(
        self, U: torch.Tensor, h: torch.Tensor, u_s: torch.Tensor, u_e: torch.Tensor
    ) -> torch.Tensor:
        """``U``: (B, T, 2l) document states, ``h``: (B, l), ``u_s``/``u_e``: (B, 2l) -> scores (B, T)."""
        ### BEGIN SOLUTION
        B, T, _ = U.shape
        r = torch.tanh(self.w_d(torch.cat([h, u_s, u_e], dim=1)))  # (B, l)
        x = torch.cat([U, r.unsqueeze(1).expand(B, T, self.hidden)], dim=2)  # (B, T, 3l)
        m1 = self.w_1(x).view(B, T, self.pool, self.hidden).max(dim=2).values
        m2 = self.w_2(m1).view(B, T, self.pool, self.hidden).max(dim=2).values
        return self.w_3(torch.cat([m1, m2], dim=2)).max(dim=2).values
        ### END SOLUTION


def frozen_or_trainable_embedding(vectors: torch.Tensor, freeze: bool) -> nn.Embedding:
    """An embedding layer initialised from (V, E) ``vectors``; row 0 is padding."""
    return nn.Embedding.from_pretrained(vectors.float(), freeze=freeze, padding_idx=0)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run ``lstm`` (batch_first) on the unpadded part of each row of ``x`` (B, T, E); zeros at padding."""
    lengths = mask.sum(dim=1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


def gather_rows(U: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``U[b, index[b]]`` for each row: (B, T, H), (B,) -> (B, H)."""
    return U[torch.arange(U.shape[0], device=U.device), index]


class DynamicCoattentionNetwork(nn.Module):
    """DCN (Xiong et al. 2017): coattention encoder + dynamic pointing decoder with HMN scorers.

    A shared LSTM encodes document and question; a trainable sentinel is prepended to each; the
    question passes through ``tanh(W q + b)``; the coattention context ``[D; C_D]`` is fused by a
    BiLSTM into ``U`` (B, T, 2l); an LSTM decoder then re-estimates ``(start, end)`` up to
    ``max_iters`` times with two highway maxout networks. At inference an example keeps the logits
    of the iteration at which its estimate stopped changing.
    """

    def __init__(
        self,
        vectors: torch.Tensor,
        hidden: int = 100,
        pool: int = 4,
        max_iters: int = 4,
        dropout: float = 0.2,
        freeze_embeddings: bool = True,
    ):
        super().__init__()
        if max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {max_iters}")
        self.max_iters = max_iters
        self.embed = frozen_or_trainable_embedding(vectors, freeze_embeddings)
        self.encoder = nn.LSTM(vectors.shape[1], hidden, batch_first=True)
        self.doc_sentinel = nn.Parameter(torch.randn(hidden) * 0.1)
        self.question_sentinel = nn.Parameter(torch.randn(hidden) * 0.1)
        self.question_proj = nn.Linear(hidden, hidden)
        self.fusion = nn.LSTM(3 * hidden, hidden, batch_first=True, bidirectional=True)
        self.decoder = nn.LSTMCell(4 * hidden, hidden)
        self.hmn_start = HighwayMaxout(hidden, pool)
        self.hmn_end = HighwayMaxout(hidden, pool)
        self.dropout = nn.Dropout(dropout)

    def _with_sentinel(self, x: torch.Tensor, mask: torch.Tensor, sentinel: torch.Tensor):
        B = x.shape[0]
        x = torch.cat([sentinel.expand(B, 1, -1), x], dim=1)
        return x, torch.cat([mask.new_ones(B, 1), mask], dim=1)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> SpanLogits:
        """``context`` (B, T), ``question`` (B, J) token ids with their bool masks -> :class:`SpanLogits`."""
        D = run_lstm(self.encoder, self.dropout(self.embed(context)), context_mask)  # (B, T, l)
        Qp = run_lstm(self.encoder, self.dropout(self.embed(question)), question_mask)  # (B, J, l)
        D, d_mask = self._with_sentinel(D, context_mask, self.doc_sentinel)
        Qp, q_mask = self._with_sentinel(Qp, question_mask, self.question_sentinel)
        Q = torch.tanh(self.question_proj(Qp))
        C_D, A_D = coattention(D, Q, d_mask, q_mask)
        fused = torch.cat([D, C_D], dim=2)[:, 1:]  # drop the document sentinel: (B, T, 3l)
        U = self.dropout(run_lstm(self.fusion, fused, context_mask))  # (B, T, 2l)
        return self._decode(U, context_mask, A_D[:, 1:, 1:])

    def _decode(self, U: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor) -> SpanLogits:
        B = U.shape[0]
        s = torch.zeros(B, dtype=torch.long, device=U.device)
        e = torch.zeros_like(s)
        h = c = U.new_zeros(B, self.decoder.hidden_size)
        starts, ends = [], []
        final_start = final_end = None
        done = torch.zeros(B, dtype=torch.bool, device=U.device)
        for _ in range(self.max_iters):
            u_s, u_e = gather_rows(U, s), gather_rows(U, e)
            h, c = self.decoder(torch.cat([u_s, u_e], dim=1), (h, c))
            alpha = masked_fill_min(self.hmn_start(U, h, u_s, u_e), mask)
            new_s = alpha.argmax(dim=1)
            beta = masked_fill_min(self.hmn_end(U, h, gather_rows(U, new_s), u_e), mask)
            new_e = beta.argmax(dim=1)
            starts.append(alpha)
            ends.append(beta)
            if final_start is None:
                final_start, final_end = alpha, beta
            else:
                keep = done.unsqueeze(1)
                final_start = torch.where(keep, final_start, alpha)
                final_end = torch.where(keep, final_end, beta)
            done = done | ((new_s == s) & (new_e == e))
            s, e = new_s, new_e
            if not self.training and bool(done.all()):
                break
        return SpanLogits(starts, ends, final_start, final_end, attention)


class BiLSTMPointerReader(nn.Module):
    """The simpler reader: shared BiLSTM encoder, bilinear document-to-question attention,
    ``[c; a; c * a]`` fused by a BiLSTM, and two linear pointers for start and end."""

    def __init__(self, vectors: torch.Tensor, hidden: int = 100, dropout: float = 0.2,
                 freeze_embeddings: bool = True):
        super().__init__()
        self.embed = frozen_or_trainable_embedding(vectors, freeze_embeddings)
        self.encoder = nn.LSTM(vectors.shape[1], hidden, batch_first=True, bidirectional=True)
        self.bilinear = nn.Linear(2 * hidden, 2 * hidden, bias=False)
        self.fusion = nn.LSTM(6 * hidden, hidden, batch_first=True, bidirectional=True)
        self.start_head = nn.Linear(2 * hidden, 1)
        self.end_head = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor,
        question: torch.Tensor, question_mask: torch.Tensor,
    ) -> SpanLogits:
        """``context`` (B, T), ``question`` (B, J) token ids with their bool masks -> :class:`SpanLogits`."""
        C = run_lstm(self.encoder, self.dropout(self.embed(context)), context_mask)  # (B, T, 2l)
        Q = run_lstm(self.encoder, self.dropout(self.embed(question)), question_mask)  # (B, J, 2l)
        scores = self.bilinear(C) @ Q.transpose(1, 2)  # (B, T, J)
        weights = masked_softmax(scores, question_mask.unsqueeze(1).expand_as(scores), dim=2)
        A = weights @ Q
        G = run_lstm(self.fusion, self.dropout(torch.cat([C, A, C * A], dim=2)), context_mask)
        start = masked_fill_min(self.start_head(G).squeeze(2), context_mask)
        end = masked_fill_min(self.end_head(G).squeeze(2), context_mask)
        return SpanLogits([start], [end], start, end, weights)


def span_loss(out: SpanLogits, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the true start and end, summed over decoding iterations, mean over the batch."""
    return sum(F.cross_entropy(s.float(), start) + F.cross_entropy(e.float(), end)
               for s, e in zip(out.starts, out.ends, strict=True))
