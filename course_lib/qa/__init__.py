"""Assignment 04: extractive question answering on SQuAD v1.1 (Dynamic Coattention Network).

Modules: ``data`` (loading, tokenisation, alignment, article split), ``batching`` (ids, padded
batches), ``models`` (DCN, BiLSTM reader), ``decoding`` (best span), ``baselines`` (sliding window),
``evaluation`` (official v1.1 metrics), ``pipeline`` (train, predict), ``analysis`` (error analysis).
"""

from course_lib.qa.evaluation import evaluate, exact_match_score, f1_score, normalize_answer

__all__ = ["evaluate", "exact_match_score", "f1_score", "normalize_answer"]
