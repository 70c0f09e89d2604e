"""SQuAD loading, offset-keeping tokenisation, answer alignment and the held-out article split."""

from __future__ import annotations

import json

import pytest

from course_lib.core.data import require
from course_lib.qa.config import SMOKE
from course_lib.qa.data import align_answer, build_examples, load_split, load_squad, split_articles, tokenize


def test_course_variant_with_one_answer_object(tmp_path):
    variant = {"data": [{"title": "t", "paragraphs": [{"context": "Paris is big.", "qas": [
        {"id": "a", "question": "Which city?", "answer": {"text": "Paris", "answer_start": 0}}]}]}]}
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(variant), encoding="utf-8")
    (ex,) = build_examples(load_squad(path))
    assert ex.answers == ["Paris"] and ex.span == (0, 0) and ex.span_text(*ex.span) == "Paris"


def test_tokenize_keeps_offsets_and_alignment_recovers_text():
    text = "In 1990-91, the U.S. won $5 million."
    tokens, spans = tokenize(text)
    assert all(text[s:e] == t for t, (s, e) in zip(tokens, spans, strict=True))
    start = text.index("$5 million")
    s, e = align_answer(spans, start, "$5 million")
    assert text[spans[s][0] : spans[e][1]] == "$5 million"
    assert align_answer(spans, len(text) + 5, "x") is None


def test_dev_answers_align_for_at_least_99_percent():
    articles = load_squad(require("squad-v1.1") / "dev-v1.1.json")
    examples = build_examples(articles)
    assert len(examples) == 10570
    exact = sum(ex.span is not None and ex.span_text(*ex.span) == ex.answers[0] for ex in examples)
    assert exact / len(examples) >= 0.99


def test_split_holds_out_whole_articles_deterministically():
    articles = [{"title": str(i), "paragraphs": []} for i in range(48)]
    train, test = split_articles(articles, 38, 10, seed=0)
    assert len(train) == 38 and len(test) == 10
    assert not {a["title"] for a in train} & {a["title"] for a in test}
    assert split_articles(articles, 38, 10, seed=0) == (train, test)
    assert split_articles(articles, 38, 10, seed=1) != (train, test)
    with pytest.raises(ValueError, match="n_train=40, n_test=10"):
        split_articles(articles, 40, 10)


def test_load_split_takes_the_article_counts_from_the_settings():
    split = load_split(None, SMOKE.override(train_articles=3, val_articles=1, test_articles=2),
                       use_official_train=False)
    assert (len(split.train), len(split.val), len(split.test)) == (3, 1, 2)
    assert split.source.endswith("3 to train, 1 to validate, 2 to test")
    titles = [{a["title"] for a in part} for part in (split.train, split.val, split.test)]
    assert not (titles[0] & titles[1] or titles[0] & titles[2] or titles[1] & titles[2])


@pytest.mark.fault("clear_error")
def test_more_articles_than_the_file_holds_are_refused_naming_the_knobs():
    with pytest.raises(ValueError, match=r"train_articles=40 \+ val_articles=4 \+ test_articles=10 ask for "
                                         r"54 articles, but dev-v1.1.json holds 48; lower train_articles or "
                                         r"val_articles or test_articles"):
        load_split(None, SMOKE.override(train_articles=40), use_official_train=False)


def test_validation_articles_come_out_of_the_training_articles_and_the_test_set_stays():
    settings = SMOKE.override(train_articles=5, val_articles=2, test_articles=3)
    split = load_split(None, settings, use_official_train=False)
    both = load_split(None, settings.override(train_articles=6, val_articles=1), use_official_train=False)
    assert split.test == both.test  # the test articles do not depend on the validation share
    assert split.train + split.val == both.train + both.val
