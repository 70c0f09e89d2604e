"""Official SQuAD v1.1 metrics on hand-made cases (values worked out by hand) and the predictions file."""

from __future__ import annotations

import json

import pytest

from course_lib.qa.evaluation import (
    evaluate,
    exact_match_score,
    f1_score,
    load_predictions,
    normalize_answer,
    question_scores,
    save_predictions,
)


def test_normalize_answer_follows_official_order():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theatre and Anthem") == "theatre and anthem"  # articles only as words
    assert normalize_answer("the-end") == "theend"  # punctuation is removed, not split on


def test_exact_match_and_f1_hand_cases():
    assert exact_match_score("Denver Broncos.", "the denver broncos")
    assert not exact_match_score("Broncos", "Denver Broncos")
    # pred {cat, sat}, truth {cat, sat, on, mat}: p = 1, r = 1/2 -> F1 = 2/3
    assert f1_score("the cat sat", "cat sat on the mat") == pytest.approx(2 / 3)
    # bags: pred x,x,y vs truth x,y,y share one x and one y: p = r = 2/3
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("nothing shared", "other words") == 0.0
    # both normalise to the empty string: EM counts it, F1 (no shared token) does not
    assert exact_match_score("The", "a") and f1_score("The", "a") == 0.0


ARTICLES = [{"title": "t", "paragraphs": [{"context": "The Denver Broncos won.", "qas": [
    {"id": "q1", "question": "Who won?", "answers": [
        {"text": "Denver Broncos", "answer_start": 4}, {"text": "Broncos", "answer_start": 11}]},
    {"id": "q2", "question": "What?", "answers": [{"text": "won", "answer_start": 19}]},
]}]}]


def test_evaluate_takes_max_over_truths_and_scores_missing_as_zero():
    # q1: "Broncos team" vs "Denver Broncos" -> F1 1/2; vs "Broncos" -> p 1/2, r 1 -> 2/3 (the max)
    # q2 has no prediction -> 0. Totals in percent over both questions.
    result = evaluate(ARTICLES, {"q1": "Broncos team"})
    assert result["exact_match"] == 0.0
    assert result["f1"] == pytest.approx(100 * (2 / 3) / 2)
    assert evaluate(ARTICLES, {"q1": "the Broncos", "q2": "won"}) == {"exact_match": 100.0, "f1": 100.0}
    assert question_scores(ARTICLES, {"q2": "won"})["q1"] == (0.0, 0.0)


def test_predictions_file_is_a_flat_id_to_text_object(tmp_path):
    path = save_predictions(tmp_path / "pred.json", {"q1": "Denver Broncos", "q2": "won"})
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw == {"q1": "Denver Broncos", "q2": "won"}
    assert load_predictions(path) == raw
    with pytest.raises(TypeError, match="answer texts"):
        save_predictions(tmp_path / "bad.json", {"q1": ["Denver"]})
