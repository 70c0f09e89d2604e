"""From examples to padded batches: vocabulary, token ids, length-bucketed batches, collation."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from course_lib.qa.data import QAExample

PAD, UNK = "<pad>", "<unk>"
UNK_ID = 1
"""Row of ``<unk>`` in every :func:`build_vocab` vocabulary (row 0 is ``<pad>``)."""


def build_vocab(examples: list[QAExample]) -> list[str]:
    """``[<pad>, <unk>]`` + lower-cased context and question words, most frequent first (ties A-Z)."""
    counts: Counter[str] = Counter()
    seen_contexts = set()
    for ex in examples:
        if id(ex.context_tokens) not in seen_contexts:  # paragraphs are shared by their questions
            seen_contexts.add(id(ex.context_tokens))
            counts.update(t.lower() for t in ex.context_tokens)
        counts.update(t.lower() for t in ex.question_tokens)
    return [PAD, UNK] + sorted(counts, key=lambda w: (-counts[w], w))


@dataclass
class EncodedExample:
    """Token ids of one example and its gold span (``-1`` when unaligned)."""

    context: torch.Tensor
    question: torch.Tensor
    start: int
    end: int


def encode(
    examples: list[QAExample], index: dict[str, int], *, window: int | None = None, seed: int = 0
) -> list[EncodedExample]:
    """Token ids (lower-cased lookups, unknown words -> ``<unk>``).

    With ``window`` (for training), a context longer than ``window`` tokens is cropped to a window
    that holds the answer, at a seeded random offset; spans shift with it. Every example must then
    have an aligned answer no longer than ``window`` (see :func:`trainable`).
    """
    unk = index[UNK]
    rng = random.Random(seed)

    def ids(tokens: list[str]) -> torch.Tensor:
        return torch.tensor([index.get(t.lower(), unk) for t in tokens] or [unk])

    encoded = []
    for ex in examples:
        tokens, (start, end) = ex.context_tokens, ex.span if ex.span is not None else (-1, -1)
        if window is not None and len(tokens) > window:
            if ex.span is None or end - start + 1 > window:
                raise ValueError(f"question {ex.qid!r}: no answer span of <= {window} tokens to crop "
                                 "around; filter with trainable(examples, window) first")
            offset = rng.randint(max(0, end - window + 1), min(start, len(tokens) - window))
            tokens, start, end = tokens[offset : offset + window], start - offset, end - offset
        encoded.append(EncodedExample(ids(tokens), ids(ex.question_tokens), start, end))
    return encoded


def trainable(examples: list[QAExample], window: int | None = None) -> list[QAExample]:
    """Examples whose answer aligned (and, with ``window``, spans at most ``window`` tokens)."""
    return [ex for ex in examples if ex.span is not None
            and (window is None or ex.span[1] - ex.span[0] < window)]


def collate(items: list[EncodedExample]) -> dict[str, torch.Tensor]:
    """Pad to the longest in the batch: ``context`` (B, T), ``question`` (B, J) with bool masks,
    ``start``/``end`` (B,)."""
    def pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out, out != 0

    context, context_mask = pad([it.context for it in items])
    question, question_mask = pad([it.question for it in items])
    return {"context": context, "context_mask": context_mask, "question": question,
            "question_mask": question_mask, "start": torch.tensor([it.start for it in items]),
            "end": torch.tensor([it.end for it in items])}


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar context length (little padding). With ``shuffle``, each epoch draws a
    permutation from torch's global generator (seeded, and restored by a resumed ``fit``), sorts
    pools of 50 batches by length and shuffles the batch order; else batches follow length order."""

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths, self.batch_size, self.shuffle = lengths, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: self.lengths[i])
            yield from (order[i : i + bs] for i in range(0, n, bs))
            return
        perm = torch.randperm(n).tolist()
        pool = 50 * bs
        batches = []
        for p in range(0, n, pool):
            chunk = sorted(perm[p : p + pool], key=lambda i: self.lengths[i])
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        for b in torch.randperm(len(batches)).tolist():
            yield batches[b]


def make_loader(encoded: list[EncodedExample], batch_size: int, *, shuffle: bool) -> DataLoader:
    """A DataLoader of padded batches from length buckets (see :class:`LengthBucketSampler`)."""
    sampler = LengthBucketSampler([len(e.context) for e in encoded], batch_size, shuffle)
    dataset = cast(Dataset[EncodedExample], encoded)  # a list is a map-style dataset
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
