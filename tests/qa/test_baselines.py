"""The sliding-window word-overlap baseline."""

from __future__ import annotations

from course_lib.qa.baselines import sliding_window_predictions
from course_lib.qa.data import build_examples


def test_sliding_window_finds_the_span_next_to_the_question_words():
    # "fell" and "Vienna" both have "treaty" and "signed" within 6 tokens; "Vienna" is closer
    articles = [{"title": "t", "paragraphs": [{"context": (
        "Rain fell often. The treaty was signed in Vienna by the emperor. Snow came later."),
        "qas": [{"id": "q", "question": "Where was the treaty signed?",
                 "answers": [{"text": "Vienna", "answer_start": 42}]}]}]}]
    predictions = sliding_window_predictions(build_examples(articles))
    assert predictions == {"q": "Vienna"}
