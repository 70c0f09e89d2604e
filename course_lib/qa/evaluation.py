"""The official SQuAD v1.1 metrics (semantics of ``evaluate-v1.1.py``) and the predictions file.

EM and F1 compare normalised answers (lower case, ASCII punctuation removed, the articles a/an/the
removed, whitespace collapsed); F1 is over bags of tokens; each question takes the maximum over its
ground truths; a question without a prediction scores 0; totals are percentages.
"""

from __future__ import annotations

import os
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from course_lib.core.io import atomic_write_json, read_json

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-bag F1 of two normalised answers (0 when they share no token)."""
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """Whether the normalised answers are equal."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(
    metric: Callable[[str, str], float], prediction: str, ground_truths: list[str]
) -> float:
    """The best score of ``prediction`` against any of the ground truths."""
    return max(float(metric(prediction, truth)) for truth in ground_truths)


def question_scores(
    articles: list[dict[str, Any]], predictions: Mapping[str, str]
) -> dict[str, tuple[float, float]]:
    """Per question id: ``(exact_match, f1)`` in [0, 1]; ``(0, 0)`` for a question without a prediction."""
    scores = {}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["id"] not in predictions:
                    scores[qa["id"]] = (0.0, 0.0)
                    continue
                truths = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                scores[qa["id"]] = (metric_max_over_ground_truths(exact_match_score, pred, truths),
                                    metric_max_over_ground_truths(f1_score, pred, truths))
    return scores


def evaluate(articles: list[dict[str, Any]], predictions: Mapping[str, str]) -> dict[str, float]:
    """``{"exact_match": %, "f1": %}`` over every question of ``articles`` (the JSON's ``data``)."""
    scores = question_scores(articles, predictions)
    total = max(len(scores), 1)
    return {"exact_match": 100.0 * sum(em for em, _ in scores.values()) / total,
            "f1": 100.0 * sum(f1 for _, f1 in scores.values()) / total}


def save_predictions(path: str | os.PathLike, predictions: Mapping[str, str]) -> Path:
    """Write ``{question_id: answer_text}`` atomically, the file ``evaluate-v1.1.py`` reads."""
    bad = [k for k, v in predictions.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"predictions must map question ids (str) to answer texts (str); bad: {bad[:3]}")
    return atomic_write_json(path, dict(predictions))


def load_predictions(path: str | os.PathLike) -> dict[str, str]:
    """Read a predictions file written by :func:`save_predictions` (checked to be ``{str: str}``)."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: a predictions file must be a JSON object {{question_id: text}}")
    return data
