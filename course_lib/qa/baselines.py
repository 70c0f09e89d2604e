"""A non-learned reader: sliding-window word overlap.

Each candidate span (up to ``max_len`` tokens, no question word, no punctuation or stop word at its
edges) scores the IDF-weighted question words found within ``window`` tokens on either side of it;
the best-scoring span is the answer (ties go to the span closest to a question word, then the
shortest, then the earliest).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter

from course_lib.qa.data import QAExample

STOP_WORDS = frozenset(
    "a an the of in on at to for by with from and or is are was were be been do does did what which "
    "who whom whose when where why how that this these those it its as not".split()
)


def document_frequencies(examples: list[QAExample]) -> tuple[Counter[str], int]:
    """How many distinct paragraphs contain each lower-cased word, and the number of paragraphs."""
    df: Counter[str] = Counter()
    contexts = {ex.context: ex.context_tokens for ex in examples}
    for tokens in contexts.values():
        df.update({t.lower() for t in tokens})
    return df, len(contexts)


def sliding_window_span(
    example: QAExample, idf: dict[str, float], *, window: int = 6, max_len: int = 4
) -> tuple[int, int]:
    """The best ``(start, end)`` token span (inclusive) of ``example`` by windowed word overlap."""
    words = [t.lower() for t in example.context_tokens]
    question = {t.lower() for t in example.question_tokens} - STOP_WORDS
    weight = [idf.get(w, 0.0) if w in question else 0.0 for w in words]
    prefix = [0.0]
    for w in weight:
        prefix.append(prefix[-1] + w)
    n = len(words)
    hits = [t for t, w in enumerate(weight) if w > 0]

    def distance(i: int, j: int) -> int:
        k = bisect.bisect_left(hits, i)
        left = i - hits[k - 1] if k > 0 else n
        right = hits[k] - j if k < len(hits) else n
        return min(left, right)

    def edge_ok(w: str) -> bool:
        return w.isalnum() and w not in STOP_WORDS

    best, best_key = (0, 0), None
    for i in range(n):
        if not edge_ok(words[i]) or weight[i] > 0:
            continue
        for j in range(i, min(n, i + max_len)):
            if weight[j] > 0 or words[j] in question:
                break
            if not edge_ok(words[j]):
                continue
            score = prefix[min(n, j + 1 + window)] - prefix[max(0, i - window)]
            key = (score, -distance(i, j), -(j - i), -i)
            if best_key is None or key > best_key:
                best, best_key = (i, j), key
    return best


def sliding_window_predictions(
    examples: list[QAExample], *, window: int = 6, max_len: int = 4
) -> dict[str, str]:
    """``{question_id: answer text}`` of the sliding-window baseline (IDF from these examples' paragraphs)."""
    df, n_docs = document_frequencies(examples)
    idf = {w: math.log((1 + n_docs) / (1 + c)) + 1.0 for w, c in df.items()}
    return {ex.qid: ex.span_text(*sliding_window_span(ex, idf, window=window, max_len=max_len))
            for ex in examples}
