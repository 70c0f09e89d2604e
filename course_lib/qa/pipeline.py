"""Training and prediction glue: build a reader, train it on the generic loop with per-step losses and
per-epoch validation, predict answer texts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.core.data.glove import embedding_matrix, load_glove
from course_lib.core.io import code_digest, content_digest, settings_digest
from course_lib.core.settings import check_choice
from course_lib.core.training import History, divergence_limit, fit
from course_lib.qa.batching import EncodedExample, make_loader
from course_lib.qa.config import QASettings
from course_lib.qa.data import QAExample
from course_lib.qa.decoding import best_span
from course_lib.qa.evaluation import evaluate
from course_lib.qa.models import BiLSTMPointerReader, DynamicCoattentionNetwork, SpanLogits, span_loss

READERS: dict[str, type[nn.Module]] = {"dcn": DynamicCoattentionNetwork, "bilstm": BiLSTMPointerReader}
"""The reader class of each of :data:`~course_lib.qa.config.READER_KINDS`."""


def vocab_vectors(
    vocab: list[str], glove_source: str | os.PathLike | None = None, *, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """(V, E) GloVe rows for ``vocab`` (row 0, padding, is zero; words outside GloVe get seeded random
    vectors) and the share of ``vocab`` GloVe covers. ``glove_source``: see ``load_glove``."""
    matrix, coverage = embedding_matrix(vocab, load_glove(glove_source), seed=seed)
    matrix[0] = 0.0
    return torch.from_numpy(matrix), coverage


def make_reader(kind: str, vectors: torch.Tensor, settings: QASettings) -> nn.Module:
    """A reader by name (``"dcn"`` or ``"bilstm"``) over (V, E) embedding ``vectors``, sized by
    ``settings.hidden`` and ``dropout`` (and, for the DCN, ``max_iters`` decoder rounds)."""
    check_choice("reader", kind, READERS)
    options: dict[str, Any] = {"hidden": settings.hidden, "dropout": settings.dropout}
    if kind == "dcn":
        options["max_iters"] = settings.max_iters
    return READERS[kind](vectors, **options)


def batch_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Span loss of a padded batch (summed over decoding iterations) and the number of questions."""
    out = model(batch["context"], batch["context_mask"], batch["question"], batch["question_mask"])
    return span_loss(out, batch["start"], batch["end"]), int(batch["start"].shape[0])


def _batch_outputs(
    model: nn.Module, encoded: list[EncodedExample], settings: QASettings, device: torch.device | str,
    batch_size: int,
) -> Iterator[tuple[list[int], dict[str, torch.Tensor], SpanLogits, torch.Tensor, torch.Tensor]]:
    """Per evaluation batch (eval mode, length order): the example indices, the batch on ``device``,
    the reader's :class:`SpanLogits` and the best spans' (B,) starts and ends."""
    model.eval()
    model.to(device)
    loader = make_loader(encoded, batch_size, shuffle=False)
    for idx, batch in zip(loader.batch_sampler, loader, strict=True):
        b = {k: v.to(device) for k, v in batch.items()}
        out = model(b["context"], b["context_mask"], b["question"], b["question_mask"])
        starts, ends = best_span(torch.log_softmax(out.start.float(), 1),
                                 torch.log_softmax(out.end.float(), 1), b["context_mask"],
                                 settings.max_answer_len)
        yield idx, b, out, starts, ends


@torch.no_grad()
def predict_spans(
    model: nn.Module, encoded: list[EncodedExample], settings: QASettings, *, device: torch.device | str,
    batch_size: int = 64,
) -> list[tuple[int, int]]:
    """Best token span ``(start, end)`` per example (at most ``settings.max_answer_len`` tokens), in
    the order of ``encoded``; ``batch_size`` is the evaluation batch size."""
    spans: list[tuple[int, int]] = [(0, 0)] * len(encoded)
    for idx, _, _, starts, ends in _batch_outputs(model, encoded, settings, device, batch_size):
        for i, s, e in zip(idx, starts.tolist(), ends.tolist(), strict=True):
            spans[i] = (s, e)
    return spans


@torch.no_grad()
def validate(
    model: nn.Module, examples: list[QAExample], encoded: list[EncodedExample],
    articles: list[dict[str, Any]], settings: QASettings, *, device: torch.device | str,
    batch_size: int = 64,
) -> dict[str, float]:
    """One pass over held-out questions (``encoded`` from ``examples``, uncropped, on ``articles``):
    ``val_loss``, the mean cross-entropy of the true start plus that of the true end under the final
    logits (questions whose answer aligned; for the DCN the round it stopped at, as in the course),
    and the official ``val_exact_match`` and ``val_f1`` of the best spans."""
    spans: list[tuple[int, int]] = [(0, 0)] * len(encoded)
    total, count = 0.0, 0
    for idx, b, out, starts, ends in _batch_outputs(model, encoded, settings, device, batch_size):
        for i, s, e in zip(idx, starts.tolist(), ends.tolist(), strict=True):
            spans[i] = (s, e)
        total += float(F.cross_entropy(out.start.float(), b["start"], ignore_index=-1, reduction="sum")
                       + F.cross_entropy(out.end.float(), b["end"], ignore_index=-1, reduction="sum"))
        count += int((b["start"] >= 0).sum())
    scores = evaluate(articles, spans_to_predictions(examples, spans))
    return {"val_loss": total / max(count, 1), "val_exact_match": scores["exact_match"],
            "val_f1": scores["f1"]}


def spans_to_predictions(examples: list[QAExample], spans: list[tuple[int, int]]) -> dict[str, str]:
    """``{question_id: answer text}``: the original context characters the token spans cover."""
    return {ex.qid: ex.span_text(s, e) for ex, (s, e) in zip(examples, spans, strict=True)}


def embeddings_digest(vocab: list[str], vectors: torch.Tensor, length: int = 12) -> str:
    """Short sha256 of ``vocab`` and its (V, E) ``vectors``: what a reader's ids and embeddings start from."""
    return content_digest(vocab, vectors, length=length)


def checkpoint_key(
    kind: str, settings: QASettings, *, seed: int, data_digest: str, embeddings_digest: str
) -> dict[str, Any]:
    """Everything that determines a trained reader: ``kind``, every knob, ``seed``, the SQuAD files'
    digest (``SquadSplit.digest``), the vocabulary/embeddings digest (:func:`embeddings_digest`) and
    the digest of ``course_lib.qa``'s code (so an edited exercise is never served the old weights)."""
    check_choice("reader", kind, READERS)
    return {"kind": kind, "settings": settings.to_dict(), "seed": seed, "data": data_digest,
            "embeddings": embeddings_digest, "code": code_digest("course_lib.qa", "course_lib.core.training")}


def checkpoint_name(key: Mapping[str, Any]) -> str:
    """``<kind>-<hash of settings and seed>.pt`` for a :func:`checkpoint_key`: one file per run, which
    a run with other data or code overwrites (the key inside decides whether it is resumed)."""
    return f"{key['kind']}-{settings_digest({'settings': key['settings'], 'seed': key['seed']}, 10)}.pt"


def loss_terms(kind: str, settings: QASettings) -> int:
    """How many cross-entropies the training loss of reader ``kind`` sums: a start and an end per
    decoder round (``settings.max_iters`` rounds for the DCN, which runs every round in training; one
    for the BiLSTM reader). Dividing by it puts both readers' losses on one per-pointer scale."""
    check_choice("reader", kind, READERS)
    return 2 * (settings.max_iters if kind == "dcn" else 1)


def max_span_loss(kind: str, settings: QASettings, train: list[EncodedExample]) -> float:
    """Divergence limit of the span loss: :func:`loss_terms` cross-entropies, each over at most T
    positions (the longest training context), so ``loss_terms x divergence_limit(T)``."""
    longest = max((len(e.context) for e in train), default=2)
    return loss_terms(kind, settings) * divergence_limit(max(longest, 2))


def train_reader(
    model: nn.Module,
    train: list[EncodedExample],
    settings: QASettings,
    *,
    kind: str,
    device: torch.device | str,
    grad_clip: float | None = 5.0,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_key: Mapping[str, Any] | None = None,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
) -> History:
    """Adam (``settings.lr``) on the span loss with gradient clipping, batches of ``batch_size``, for
    the reader ``kind``'s epochs (:meth:`QASettings.epochs_for`), via :func:`course_lib.core.training.fit`.

    Each epoch's record holds ``train_loss``, ``step_losses`` (every step's loss, in order) and the
    metrics of ``evaluate(model)`` (e.g. :func:`validate`). With ``checkpoint_path`` (and its
    ``checkpoint_key``, see :func:`checkpoint_key`) a checkpoint is written per epoch and an existing
    one resumed exactly when its key matches. Raises
    :class:`~course_lib.core.training.TrainingDiverged` above :func:`max_span_loss`.
    """
    if checkpoint_path is not None and checkpoint_key is None:
        raise ValueError("checkpoint_path needs its checkpoint_key (see qa.checkpoint_key)")
    if checkpoint_key is not None and checkpoint_key.get("kind") != kind:
        raise ValueError(f"checkpoint_key is for reader {checkpoint_key.get('kind')!r}, not {kind!r}")
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=settings.lr)
    return fit(model, make_loader(train, settings.batch_size, shuffle=True), loss_fn=batch_loss,
               optimizer=optimizer, epochs=settings.epochs_for(kind), device=device, evaluate=evaluate,
               grad_clip=grad_clip, checkpoint_path=checkpoint_path, checkpoint_key=checkpoint_key,
               max_loss=max_span_loss(kind, settings, train), amp=settings.amp, desc=kind)
