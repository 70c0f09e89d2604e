"""course_lib.modularization.data: the real loaders, balanced per-class samples, concern samples, and the
fine-tuning batches (trimmed padding, length pools)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.modularization import dataset_digest, load_topics, per_class_sample
from course_lib.modularization.data import (
    EncodedDataset,
    LengthPoolBatches,
    collate_trimmed,
    concern_indices,
    trim_padding,
)

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


def test_trim_padding_cuts_the_columns_no_row_uses():
    batch = {"input_ids": torch.tensor([[2, 7, 3, 0, 0], [2, 3, 0, 0, 0]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]),
             "labels": torch.tensor([4, 1])}
    trimmed = trim_padding(batch)
    assert trimmed["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert trimmed["attention_mask"].shape == (2, 3) and trimmed["labels"].tolist() == [4, 1]
    rows = [{k: v[i] for k, v in batch.items()} for i in range(2)]
    assert all(torch.equal(collate_trimmed(rows)[k], trimmed[k]) for k in trimmed)


def _encoded(lengths):
    n, width = len(lengths), max(lengths)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return {"input_ids": mask * 5, "attention_mask": mask, "labels": torch.arange(n)}


def test_length_pool_zero_is_the_shuffling_dataloader():
    enc = _encoded([3, 9, 4, 1, 7, 2, 8] * 5)
    old = torch.utils.data.DataLoader(EncodedDataset(enc), batch_size=4, shuffle=True,
                                      generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    new = torch.utils.data.DataLoader(EncodedDataset(enc), batch_sampler=LengthPoolBatches(
        enc["attention_mask"].sum(1), 4, 0, g), generator=g, collate_fn=collate_trimmed)
    for _ in range(2):  # two epochs: the same batches in the same order
        assert [b["labels"].tolist() for b in old] == [b["labels"].tolist() for b in new]


def test_length_pools_batch_similar_lengths_and_cover_every_row_once():
    lengths = torch.tensor(np.random.default_rng(0).integers(1, 60, 100))
    sampler = LengthPoolBatches(lengths, 8, 4, torch.Generator().manual_seed(0))
    epoch = list(sampler)
    assert len(epoch) == len(sampler) == 13
    assert sorted(i for b in epoch for i in b) == list(range(100))
    padded = sum(len(b) * int(lengths[b].max()) for b in epoch)
    plain = sum(len(b) * int(lengths[b].max()) for b in LengthPoolBatches(lengths, 8, 0, torch.Generator()))
    assert padded < 0.75 * plain  # sorting within pools of 4 batches cuts the padding
    assert epoch == list(LengthPoolBatches(lengths, 8, 4, torch.Generator().manual_seed(0)))  # seeded
    assert epoch != list(sampler)  # the next epoch draws other batches
