"""course_lib.modularization.activations: the per-feature sums of one batch and the statistics that forward
hooks collect (the exercises), on hand-made inputs and on the tiny BERT; the pairing of the samples."""

from __future__ import annotations

import pytest
import torch

from course_lib.modularization import (
    ActivationStats,
    activation_stats,
    concern_samples,
    encode,
    feature_sums,
    find_layers,
    paired_batches,
)

from .checks import check_activation_stats, check_feature_sums, hook_ids, hooks_left
from .tiny import synthetic_split


@pytest.mark.exercise("feature_sums")
def test_feature_sums_by_hand():
    check_feature_sums(feature_sums)


@pytest.mark.parametrize("x, mask", [(torch.zeros(4, 3), torch.ones(4, 3)),  # no feature dimension
                                     (torch.zeros(4, 3, 2), torch.ones(4, 2)),  # mask of another length
                                     (torch.zeros(3, 3, 2), torch.ones(3, 3))])  # no positive/negative pairs
def test_feature_sums_refuses_other_shapes(x, mask):
    with pytest.raises(ValueError, match=r"x \(2B, T, in\) and mask \(2B, T\)"):
        feature_sums(x, mask)


def test_paired_batches_put_each_negative_beside_its_positive_padded_to_one_length():
    pos = {"input_ids": torch.tensor([[5, 6, 7], [8, 9, 0], [4, 0, 0]]),
           "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]])}
    neg = {"input_ids": torch.tensor([[1, 0], [2, 3]]), "attention_mask": torch.tensor([[1, 0], [1, 1]])}
    batches = list(paired_batches(pos, neg, batch_size=1))
    assert len(batches) == 2  # cut to the 2 negatives
    ids, mask = batches[1]
    assert ids.tolist() == [[8, 9, 0], [2, 3, 0]] and mask.tolist() == [[1, 1, 0], [1, 1, 0]]
    ids, mask = next(paired_batches(pos, neg, batch_size=4))
    assert ids.shape == (4, 3) and mask[:, -1].tolist() == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="at least one positive"):
        next(paired_batches(pos, {k: v[:0] for k, v in neg.items()}))


def test_statistics_from_sums():
    stats = ActivationStats.from_sums(torch.tensor([[4.0, 0.0], [9.0, 1.0], [3.0, 0.0]]), 2, 3)
    assert torch.allclose(stats.pos_norm, torch.tensor([2.0, 0.0]))
    assert torch.allclose(stats.cosine, torch.tensor([0.5, 0.0]))  # 3 / (2 * 3); silent: 0
    assert torch.allclose(stats.rms_neg, torch.tensor([3.0, 1.0]) / 3**0.5)
    with pytest.raises(ValueError, match=r"\(3, in_features\)"):
        ActivationStats.from_sums(torch.zeros(2, 4), 1, 1)


@pytest.mark.exercise("activation_stats")
def test_activation_stats_by_hand():
    check_activation_stats(activation_stats)


@pytest.mark.exercise("activation_stats")
def test_activation_stats_of_the_tiny_bert_ignore_padding(tokenizer, trained):
    model = trained[0]
    pos, neg = (encode(tokenizer, s, 10) for s in concern_samples(synthetic_split(12, 5), 0, 4, seed=0))
    padded = {k: torch.nn.functional.pad(v, (0, 4)) if v.ndim == 2 else v for k, v in pos.items()}
    padded["input_ids"][:, -4:] = tokenizer.convert_tokens_to_ids("alpha1")  # masked out, must not count
    layers = find_layers(model)
    hooks = hook_ids(model)
    a = activation_stats(model, paired_batches(pos, neg, 3), layers)
    b = activation_stats(model, paired_batches(padded, neg, 3), layers)
    assert not hooks_left(model, hooks)
    for name, layer in layers.items():
        assert a[name].pos_norm.shape == (layer.in_features,)  # 32 into intermediate.dense, 64 into output
        assert (a[name].pos_tokens, a[name].neg_tokens) == (int(pos["attention_mask"].sum()),
                                                            int(neg["attention_mask"].sum()))
        for field in ("pos_norm", "neg_norm", "cosine"):
            assert torch.allclose(getattr(a[name], field), getattr(b[name], field), atol=1e-4), (name, field)
