"""Assignment 04's settings (every knob, declared once), its two profiles and its :class:`Assignment`."""

from __future__ import annotations

from dataclasses import dataclass

from course_lib.core.assignment import Assignment
from course_lib.core.settings import Settings, check_choice, knob

READER_KINDS = ("dcn", "bilstm")
"""The learned readers: the Dynamic Coattention Network and the simpler BiLSTM pointer reader."""


@dataclass(frozen=True)
class QASettings(Settings):
    """Knobs of the question-answering notebook (data split, readers, training, decoding)."""

    train_articles: int = knob(min=1, doc="dev articles to train on (offline split)")
    val_articles: int = knob(min=1, doc="articles held out of the training articles to validate on after "
                                        "every epoch (EM, F1, loss)")
    test_articles: int = knob(min=1, doc="dev articles held out to test on (offline split)")
    hidden: int = knob(min=1, doc="hidden size l of the readers' LSTMs")
    epochs: int = knob(min=1, doc="DCN training epochs")
    bilstm_epochs: int = knob(min=1, doc="BiLSTM reader training epochs")
    batch_size: int = knob(min=1, doc="training batch size (questions)")
    lr: float = knob(min=0.0, min_inclusive=False, doc="Adam learning rate")
    train_window: int | None = knob(min=1, doc="crop training contexts to this many tokens around the "
                                                "answer (None: whole paragraphs)")
    max_iters: int = knob(min=1, doc="DCN decoder rounds")
    dropout: float = knob(min=0.0, doc="dropout on embeddings and encodings, in [0, 1)")
    max_answer_len: int = knob(min=1, doc="longest answer span decoded (tokens)")
    cpu_threads: int | None = knob(min=1, doc="torch CPU threads (None: torch's default)")
    amp: bool = knob(doc="bfloat16 autocast on CUDA (ignored on the CPU)")

    def check(self) -> None:
        """``dropout`` must stay below 1."""
        if self.dropout >= 1:
            raise ValueError(f"dropout={self.dropout!r} is not valid; it must be < 1")

    def epochs_for(self, kind: str) -> int:
        """Training epochs of the reader ``kind`` (``"dcn"``: ``epochs``, ``"bilstm"``: ``bilstm_epochs``)."""
        check_choice("reader", kind, READER_KINDS)
        return self.epochs if kind == "dcn" else self.bilstm_epochs


SMOKE = QASettings(
    train_articles=34, val_articles=4, test_articles=10, hidden=32, epochs=2, bilstm_epochs=2,
    batch_size=32, lr=0.005, train_window=48, max_iters=4, dropout=0.0, max_answer_len=15, cpu_threads=1,
    amp=False,
)
FULL = QASettings(
    train_articles=34, val_articles=4, test_articles=10, hidden=200, epochs=20, bilstm_epochs=20,
    batch_size=64, lr=0.001, train_window=None, max_iters=4, dropout=0.3, max_answer_len=15,
    cpu_threads=None, amp=False,
)

ASSIGNMENT = Assignment(
    id="04",
    slug="question_answering",
    title="Extractive question answering on SQuAD v1.1 with a coattention network",
    datasets=("squad-v1.1",),
    profiles={"smoke": SMOKE, "full": FULL},
    expected={
        # smoke: 2 epochs on 34 dev articles (4 more validate); the DCN must beat the sliding
        # window (13.2 F1) by at least 5 F1 points (the reference run: 20.9 vs 13.2)
        "smoke": {"f1": (17.0, 60.0), "exact_match": (10.0, 50.0),
                  "f1_minus_baseline_f1": (5.0, 50.0), "baseline_f1": (8.0, 16.0),
                  "val_f1": (16.0, 60.0), "bilstm_f1": (18.0, 60.0), "bilstm_val_f1": (18.0, 60.0)},
        # full on the offline split (few articles); with the official train set expect ~65-75 F1
        "full": {"f1": (30.0, 85.0), "exact_match": (20.0, 75.0),
                 "f1_minus_baseline_f1": (15.0, 75.0), "baseline_f1": (8.0, 16.0),
                 "val_f1": (25.0, 85.0), "bilstm_f1": (25.0, 85.0), "bilstm_val_f1": (25.0, 85.0)},
    },
    headline=("exact_match", "f1", "baseline_f1", "f1_minus_baseline_f1", "val_f1", "bilstm_f1",
              "bilstm_val_f1"),
    exercise_tests=("tests/qa/test_models.py",),
)
