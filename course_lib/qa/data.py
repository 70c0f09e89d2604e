"""SQuAD v1.1: loading, offset-keeping tokenisation, answer alignment, the offline article split.

``load_squad`` reads the official JSON (``data -> paragraphs -> qas -> answers``) and the course's
variant (one ``answer`` object per question), returning the ``data`` list in the official shape.
``build_examples`` tokenises every paragraph once (a regex tokenizer, no downloads) and aligns each
answer's character span to token indices.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from typing import Any

from course_lib.core.data.registry import MissingDataError, require
from course_lib.core.digests import file_digest
from course_lib.core.io import read_json
from course_lib.qa.config import QASettings

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
DEV_FILE, TRAIN_FILE = "dev-v1.1.json", "train-v1.1.json"


def load_squad(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The articles (the JSON's ``data`` list) of a SQuAD v1.1 file, every question with ``answers``.

    The course's variant, where a question holds one ``answer`` object, is turned into the official
    shape (``answers`` = [that answer]). Text that is not UTF-8 or not JSON raises ``ValueError``
    naming the file (and line); a missing or mistyped field names the file and the field's path
    (e.g. ``data[3].paragraphs[0].qas[2].answers``).
    """
    raw = read_json(path)
    articles = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(articles, list):
        raise ValueError(f"{path}: not a SQuAD file (expected a JSON object with a 'data' list)")

    def field(record: Any, where: str, name: str, kind: type) -> Any:
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {where} must be a JSON object, got {type(record).__name__}")
        if name not in record:
            raise ValueError(f"{path}: {where} has no field {name!r}")
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: {where}.{name} must be a {kind.__name__}, got {type(value).__name__}")
        return value

    for a, article in enumerate(articles):
        for p, paragraph in enumerate(field(article, f"data[{a}]", "paragraphs", list)):
            where = f"data[{a}].paragraphs[{p}]"
            field(paragraph, where, "context", str)
            for q, qa in enumerate(field(paragraph, where, "qas", list)):
                question = f"{where}.qas[{q}]"
                field(qa, question, "id", str)
                field(qa, question, "question", str)
                if "answers" not in qa and "answer" in qa:  # field() above checked qa is an object
                    qa["answers"] = [qa.pop("answer")]
                if "answers" not in qa:
                    raise ValueError(f"{path}: {question} has neither 'answers' (official) nor "
                                     "'answer' (course variant)")
                for n, answer in enumerate(field(qa, question, "answers", list)):
                    field(answer, f"{question}.answers[{n}]", "text", str)
                    field(answer, f"{question}.answers[{n}]", "answer_start", int)
    return articles


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words and punctuation marks of ``text`` with their character spans ``[start, end)``."""
    tokens, spans = [], []
    for m in TOKEN_RE.finditer(text):
        tokens.append(m.group())
        spans.append((m.start(), m.end()))
    return tokens, spans


def align_answer(spans: list[tuple[int, int]], char_start: int, text: str) -> tuple[int, int] | None:
    """Token indices ``(start, end)`` (inclusive) covering the answer's characters, or ``None``.

    The start token is the first whose span ends after ``char_start``; the end token the last that
    begins before ``char_start + len(text)``.
    """
    char_end = char_start + len(text)
    inside = [i for i, (s, e) in enumerate(spans) if e > char_start and s < char_end]
    return (inside[0], inside[-1]) if inside else None


@dataclass
class QAExample:
    """One question on one paragraph: tokens with character spans and the aligned first answer."""

    qid: str
    title: str
    context: str
    context_tokens: list[str]
    context_spans: list[tuple[int, int]]
    question: str
    question_tokens: list[str]
    answers: list[str]
    span: tuple[int, int] | None
    """Token span (inclusive) of the first answer; ``None`` when it does not align."""

    def span_text(self, start: int, end: int) -> str:
        """The context text covered by tokens ``start..end`` (inclusive)."""
        return self.context[self.context_spans[start][0] : self.context_spans[end][1]]


def build_examples(articles: list[dict[str, Any]]) -> list[QAExample]:
    """One :class:`QAExample` per question, in file order (each paragraph tokenised once)."""
    examples = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            tokens, spans = tokenize(context)
            for qa in paragraph["qas"]:
                first = qa["answers"][0] if qa["answers"] else None
                span = align_answer(spans, first["answer_start"], first["text"]) if first else None
                examples.append(QAExample(
                    qid=qa["id"], title=article.get("title", ""), context=context,
                    context_tokens=tokens, context_spans=spans, question=qa["question"],
                    question_tokens=tokenize(qa["question"])[0],
                    answers=[a["text"] for a in qa["answers"]], span=span,
                ))
    return examples


def split_articles(
    articles: list[dict[str, Any]], n_train: int, n_test: int, *, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out whole articles: a seeded shuffle, the first ``n_train`` to train, next ``n_test`` to test."""
    if n_train < 1 or n_test < 1 or n_train + n_test > len(articles):
        raise ValueError(f"n_train={n_train}, n_test={n_test}: need both >= 1 and a sum <= "
                         f"{len(articles)} (the articles available)")
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    return ([articles[i] for i in order[:n_train]],
            [articles[i] for i in order[n_train : n_train + n_test]])


def check_article_counts(counts: dict[str, int], available: int, source: str) -> None:
    """Refuse article counts (by knob) whose sum exceeds the ``available`` articles of ``source``."""
    if sum(counts.values()) > available:
        asked = " + ".join(f"{name}={n}" for name, n in counts.items())
        raise ValueError(f"{asked} ask for {sum(counts.values())} articles, but {source} holds {available}; "
                         f"lower {' or '.join(counts)} to at most {available} in all")


@dataclass
class SquadSplit:
    """Train, validation and test articles, how they were obtained (``source`` says which files) and
    ``digest``, the checksum of the files read (keys checkpoints)."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    source: str
    digest: str


def load_split(
    data_dir: str | os.PathLike | None,
    settings: QASettings,
    *,
    seed: int = 0,
    use_official_train: bool = True,
) -> SquadSplit:
    """Train/validation/test articles. With the official train + dev files (when both are present and
    asked for): dev to test, and ``settings.val_articles`` of a seeded shuffle of the train articles to
    validate. Else the offline split of the dev set: ``settings.train_articles +
    settings.val_articles`` articles to train (the last ``val_articles`` of them held out to
    validate) and ``settings.test_articles`` to test. Article counts the file cannot hold are refused
    naming the knobs."""
    folder = require("squad-v1.1", data_dir)
    dev, train_file = folder / DEV_FILE, folder / TRAIN_FILE
    n_val = settings.val_articles
    if use_official_train and train_file.exists():
        articles = load_squad(train_file)
        check_article_counts({"val_articles": n_val}, len(articles) - 1, f"{TRAIN_FILE} (one article kept to "
                                                                        "train)")
        train, val = split_articles(articles, len(articles) - n_val, n_val, seed=seed)
        return SquadSplit(train, val, load_squad(dev),
                          f"official train-v1.1 ({n_val} articles held out to validate) / dev-v1.1",
                          f"{file_digest(train_file)}+{file_digest(dev)}")
    if not dev.exists():
        raise MissingDataError(f"{DEV_FILE} is missing from the squad-v1.1 folder")
    n_train, n_test = settings.train_articles, settings.test_articles
    articles = load_squad(dev)
    check_article_counts({"train_articles": n_train, "val_articles": n_val, "test_articles": n_test},
                         len(articles), DEV_FILE)
    train, test = split_articles(articles, n_train + n_val, n_test, seed=seed)
    return SquadSplit(train[:n_train], train[n_train:], test,
                      f"dev-v1.1 articles held out (seed {seed}): {n_train} to train, "
                      f"{n_val} to validate, {n_test} to test", file_digest(dev))
