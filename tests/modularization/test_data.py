"""course_lib.modularization.data: the real loaders, balanced per-class samples, concern samples."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.modularization import dataset_digest, load_topics, per_class_sample
from course_lib.modularization.data import concern_indices

from .tiny import CLASSES, synthetic_split


def test_yahoo_sample_has_ten_classes(data_root):
    train, test = load_topics("yahoo-answers-topics", "train"), load_topics("yahoo-answers-topics", "test")
    assert (len(train), len(test)) == (1000, 100)
    assert len(train.classes) == 10 and set(train.counts().values()) == {100}
    assert min(test.counts().values()) >= 5  # the test sample is not balanced (5 to 14 per class)
    assert all(isinstance(t, str) and t for t in train.texts)


def test_ag_news_loads_with_its_label_order(data_root):
    train = load_topics("ag-news", "train")
    assert train.classes == ("World", "Sports", "Business", "Science or Technology")
    assert len(train) == 4000 and not train.texts[0].startswith("Title:")


def test_dataset_digest_is_stable_and_per_dataset(data_root):
    digest = dataset_digest("yahoo-answers-topics")
    assert digest == dataset_digest("yahoo-answers-topics", data_root)
    assert digest != dataset_digest("ag-news")


def test_bad_dataset_and_split_name_the_choices():
    with pytest.raises(ValueError, match="ag-news"):
        load_topics("imdb", "train")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_topics("ag-news", "valid")


def test_per_class_sample_is_balanced_and_seeded():
    split = synthetic_split(90, 0)
    a, b = per_class_sample(split, 5, seed=3), per_class_sample(split, 5, seed=3)
    assert a.counts() == {c: 5 for c in CLASSES}
    assert a.texts == b.texts
    assert per_class_sample(split, None, 0) is split


def test_concern_samples_are_positive_negative_and_balanced():
    labels = np.repeat(np.arange(4), 30)
    pos, neg = concern_indices(labels, 2, 12, seed=0)
    assert len(pos) == len(neg) == 12
    assert (labels[pos] == 2).all() and (labels[neg] != 2).all()
    assert sorted(np.bincount(labels[neg], minlength=4).tolist()) == [0, 4, 4, 4]
    assert np.array_equal(concern_indices(labels, 2, 12, seed=0)[1], neg)
    all_pos, all_neg = concern_indices(labels, 1, None, seed=0)
    assert len(all_pos) == len(all_neg) == 30
    with pytest.raises(ValueError, match="concern=4"):
        concern_indices(labels, 4, 5, seed=0)
