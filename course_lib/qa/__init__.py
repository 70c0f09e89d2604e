"""Assignment 04: extractive question answering on SQuAD v1.1 (Dynamic Coattention Network).

Modules: ``config`` (:class:`QASettings`, profiles, :data:`ASSIGNMENT`), ``data`` (loading,
tokenisation, alignment, article split), ``batching`` (ids, padded batches), ``models`` (the DCN and
its dynamic pointing decoder, the BiLSTM reader, the span loss), ``decoding`` (best span),
``baselines`` (sliding window), ``evaluation`` (official v1.1 metrics), ``pipeline`` (build, train
with validation, predict, score by decoder rounds), ``analysis`` (training curves, error analysis).
"""

from course_lib.qa.analysis import (
    breakdown,
    examples_table,
    plot_attention,
    plot_breakdown,
    plot_training,
    training_table,
)
from course_lib.qa.baselines import sliding_window_predictions
from course_lib.qa.batching import build_vocab, collate, encode, trainable
from course_lib.qa.config import ASSIGNMENT, FULL, LAPTOP, SMOKE, QASettings
from course_lib.qa.data import build_examples, load_split
from course_lib.qa.decoding import best_span
from course_lib.qa.evaluation import (
    evaluate,
    exact_match_score,
    f1_score,
    normalize_answer,
    question_scores,
    save_predictions,
)
from course_lib.qa.models import (
    DynamicPointingDecoder,
    HighwayMaxout,
    PointerRounds,
    coattention,
    span_loss,
)
from course_lib.qa.pipeline import (
    checkpoint_key,
    checkpoint_name,
    embeddings_digest,
    kept_epoch,
    loss_terms,
    make_reader,
    predict_spans,
    round_scores,
    spans_to_predictions,
    train_reader,
    validate,
    vocab_vectors,
)

__all__ = [
    "ASSIGNMENT", "FULL", "LAPTOP", "SMOKE", "DynamicPointingDecoder", "HighwayMaxout", "PointerRounds",
    "QASettings", "best_span", "breakdown", "build_examples", "build_vocab", "checkpoint_key",
    "checkpoint_name", "coattention", "collate", "embeddings_digest", "encode", "evaluate",
    "exact_match_score", "examples_table", "f1_score", "kept_epoch", "load_split", "loss_terms",
    "make_reader", "normalize_answer", "plot_attention", "plot_breakdown", "plot_training",
    "predict_spans", "question_scores", "round_scores", "save_predictions", "sliding_window_predictions",
    "span_loss", "spans_to_predictions", "train_reader", "trainable", "training_table", "validate",
    "vocab_vectors",
]
