"""Training and prediction glue: build a reader, train it on the generic loop with per-step losses and
per-epoch validation, predict answer texts."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from course_lib.core.data.glove import embedding_matrix, load_glove
from course_lib.core.digests import code_digest, content_digest, json_digest
from course_lib.core.settings import check_choice
from course_lib.core.training import History, Schedule, divergence_limit, fit
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
    ``settings.hidden``, ``dropout`` and ``question_match`` (and, for the DCN, ``max_iters`` and
    ``train_iters`` decoder rounds and its ``dcn_encoder``)."""
    check_choice("reader", kind, READERS)
    options: dict[str, Any] = {"hidden": settings.hidden, "dropout": settings.dropout,
                               "match_feature": settings.question_match}
    if kind == "dcn":
        options.update(max_iters=settings.max_iters, train_iters=settings.train_iters,
                       bidirectional_encoder=settings.dcn_encoder == "bilstm")
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
    assert loader.batch_sampler is not None  # make_loader batches by length
    for idx, batch in zip(loader.batch_sampler, loader, strict=True):
        b = {k: v.to(device) for k, v in batch.items()}
        out = model(b["context"], b["context_mask"], b["question"], b["question_mask"])
        starts, ends = decode_spans(out.start, out.end, b["context_mask"], settings)
        yield idx, b, out, starts, ends


def decode_spans(
    start: torch.Tensor, end: torch.Tensor, mask: torch.Tensor, settings: QASettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best spans (:func:`~course_lib.qa.decoding.best_span`, at most ``settings.max_answer_len``
    tokens) under the log-softmax of (B, T) start and end scores: (B,) starts and ends."""
    return best_span(torch.log_softmax(start.float(), 1), torch.log_softmax(end.float(), 1), mask,
                     settings.max_answer_len)


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


@torch.no_grad()
def round_scores(
    model: nn.Module, examples: list[QAExample], encoded: list[EncodedExample],
    articles: list[dict[str, Any]], settings: QASettings, *, device: torch.device | str,
    batch_size: int = 64,
) -> list[dict[str, float]]:
    """What the DCN's decoder rounds are worth on held-out questions (``encoded`` from ``examples``, on
    ``articles``): per cap r = 1 .. ``settings.max_iters``, a row with ``rounds`` (r), ``final here``
    (how many questions take their final scores from round r: converged there, or at the cap still
    moving), and the official ``exact_match`` and ``f1`` when decoding stops after at most r rounds
    (each question's scores of round ``min(r, its final round)``, as inference with ``max_iters = r``
    would give). The last row scores what :func:`predict_spans` predicts."""
    caps = range(1, settings.max_iters + 1)
    spans: dict[int, list[tuple[int, int]]] = {r: [(0, 0)] * len(encoded) for r in caps}
    final_round = [0] * len(encoded)
    for idx, b, out, _, _ in _batch_outputs(model, encoded, settings, device, batch_size):
        starts, ends = torch.stack(out.starts), torch.stack(out.ends)  # (R, B, T)
        rows = torch.arange(len(idx), device=starts.device)
        for i, r in zip(idx, out.rounds.tolist(), strict=True):
            final_round[i] = r
        for r in caps:
            pick = out.rounds.clamp(max=r) - 1
            for i, s, e in zip(idx, *(t.tolist() for t in decode_spans(
                    starts[pick, rows], ends[pick, rows], b["context_mask"], settings)), strict=True):
                spans[r][i] = (s, e)
    table = []
    for r in caps:
        scores = evaluate(articles, spans_to_predictions(examples, spans[r]))
        table.append({"rounds": r, "final here": sum(f == r for f in final_round),
                      "exact_match": scores["exact_match"], "f1": scores["f1"]})
    return table


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
    return f"{key['kind']}-{json_digest({'settings': key['settings'], 'seed': key['seed']}, 10)}.pt"


def loss_terms(kind: str, settings: QASettings) -> int:
    """How many cross-entropies the training loss of reader ``kind`` sums: a start and an end per
    decoder round in training (:attr:`QASettings.training_rounds` for the DCN, one for the BiLSTM
    reader). Dividing by it puts both readers' losses on one per-pointer scale."""
    check_choice("reader", kind, READERS)
    return 2 * (settings.training_rounds if kind == "dcn" else 1)


def max_span_loss(kind: str, settings: QASettings, train: list[EncodedExample]) -> float:
    """Divergence limit of the span loss: :func:`loss_terms` cross-entropies, each over at most T
    positions (the longest training context), so ``loss_terms x divergence_limit(T)``."""
    longest = max((len(e.context) for e in train), default=2)
    return loss_terms(kind, settings) * divergence_limit(max(longest, 2))


class EarlyStopping(Schedule):
    """Early stopping on validation F1, a :class:`~course_lib.core.training.Schedule` of
    :func:`~course_lib.core.training.fit`, so its state (the best weights included) is checkpointed and
    resumed with the run.

    :meth:`evaluate` wraps the validation callback. :meth:`after_epoch`, after each epoch's validation,
    keeps a copy of the weights when ``val_f1`` beats every earlier epoch; ``patience`` epochs without a
    better one stop the run: :meth:`batches` then yields no more training batches and :meth:`evaluate`
    no metrics, so the remaining epochs cost nothing, and :meth:`finish` drops them and puts the best
    epoch's weights back.
    """

    metric = "val_f1"

    def __init__(self, model: nn.Module, evaluate: Callable[[nn.Module], Mapping[str, float]],
                 patience: int):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.model, self._evaluate, self.patience = model, evaluate, patience
        self.best, self.best_epoch, self.epochs, self.stale = -math.inf, 0, 0, 0
        self.weights: dict[str, torch.Tensor] | None = None

    @property
    def stopped(self) -> bool:
        """Whether ``patience`` epochs in a row brought no better validation F1."""
        return self.stale >= self.patience

    def evaluate(self, model: nn.Module) -> Mapping[str, float]:
        """The wrapped callback's metrics (which must hold ``val_f1``); none once stopped."""
        if self.stopped:
            return {}
        metrics = self._evaluate(model)
        if self.metric not in metrics:
            raise KeyError(f"early stopping needs {self.metric!r} from evaluate; got {sorted(metrics)}")
        return metrics

    def after_epoch(self, record: Mapping[str, Any]) -> None:
        """After an epoch's validation: remember the weights if it is the best so far, else count it."""
        if self.metric not in record:  # an epoch after the stop
            return
        value = record[self.metric]
        self.epochs += 1
        if value > self.best:
            self.best, self.best_epoch, self.stale = value, self.epochs, 0
            self.weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.stale += 1

    def batches(self, loader: DataLoader) -> Iterable[Mapping[str, torch.Tensor]]:
        """``loader``'s batches until the run stops, then none (one pass per epoch, like ``loader``)."""
        return _UntilStopped(loader, self)

    def finish(self, history: History) -> History:
        """``history`` without the epochs after the stop, the best epoch marked ``kept``; the model
        gets that epoch's weights back."""
        if self.weights is not None:
            self.model.load_state_dict(self.weights)
        return History([{**r, "kept": r["epoch"] == self.best_epoch}
                        for r in history.epochs if self.metric in r])

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs: the best value and epoch, the epochs seen, the streak, the weights."""
        return {"best": self.best, "best_epoch": self.best_epoch, "epochs": self.epochs,
                "stale": self.stale, "weights": self.weights}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.epochs, self.stale, self.weights = int(state["epochs"]), int(state["stale"]), state["weights"]


class _UntilStopped:
    """A loader's batches while an :class:`EarlyStopping` has not stopped, then none."""

    def __init__(self, loader: DataLoader, stopping: EarlyStopping):
        self.loader, self.stopping = loader, stopping

    def __len__(self) -> int:
        return 0 if self.stopping.stopped else len(self.loader)

    def __iter__(self) -> Iterator[Mapping[str, torch.Tensor]]:
        return iter(()) if self.stopping.stopped else iter(self.loader)


def kept_epoch(history: History) -> dict[str, Any]:
    """The record of the epoch whose weights a reader of :func:`train_reader` kept."""
    return next(r for r in history.epochs if r["kept"])


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

    Each epoch's record holds ``train_loss``, ``step_losses`` (every step's loss, in order), the
    metrics of ``evaluate(model)`` (e.g. :func:`validate`) and ``kept``, whether the model ends with
    that epoch's weights: the last epoch's, or with ``settings.patience`` (which needs ``evaluate``)
    the best validation F1's, training ending ``patience`` epochs after it (:class:`EarlyStopping`).
    With ``checkpoint_path`` (and its ``checkpoint_key``, see :func:`checkpoint_key`) a checkpoint is
    written per epoch and an existing one resumed exactly when its key matches. Raises
    :class:`~course_lib.core.training.TrainingDiverged` above :func:`max_span_loss`.
    """
    if checkpoint_path is not None and checkpoint_key is None:
        raise ValueError("checkpoint_path needs its checkpoint_key (see qa.checkpoint_key)")
    if checkpoint_key is not None and checkpoint_key.get("kind") != kind:
        raise ValueError(f"checkpoint_key is for reader {checkpoint_key.get('kind')!r}, not {kind!r}")
    stopping = None
    if settings.patience is not None:
        if evaluate is None:
            raise ValueError("patience (early stopping on validation F1) needs evaluate, e.g. qa.validate")
        stopping = EarlyStopping(model, evaluate, settings.patience)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=settings.lr)
    loader = make_loader(train, settings.batch_size, shuffle=True)
    history = fit(model, loader if stopping is None else stopping.batches(loader), loss_fn=batch_loss,
                  optimizer=optimizer, epochs=settings.epochs_for(kind), device=device,
                  evaluate=evaluate if stopping is None else stopping.evaluate, schedule=stopping,
                  grad_clip=grad_clip, checkpoint_path=checkpoint_path, checkpoint_key=checkpoint_key,
                  max_loss=max_span_loss(kind, settings, train), amp=settings.amp, desc=kind)
    if stopping is not None:
        return stopping.finish(history)
    return History([{**r, "kept": r is history.epochs[-1]} for r in history.epochs])
