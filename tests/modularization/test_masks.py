"""course_lib.modularization.masks: the masks applied to a copy of a model and the course's overall sparsity
(the exercises) on hand-made layers and on the tiny BERT; the checks of the masks and the library's
sparsity of the pruned layers."""

from __future__ import annotations

import pytest
import torch

from course_lib.modularization import (
    apply_masks,
    find_layers,
    overall_sparsity,
    pruned_sparsity,
    sparsity_table,
)

from .checks import check_apply_masks, check_overall_sparsity, masks_model
from .tiny import tiny_bert


@pytest.mark.exercise("apply_masks")
def test_apply_masks_by_hand():
    check_apply_masks(apply_masks)


@pytest.mark.parametrize("masks, message", [
    ({"1": torch.ones(3, dtype=torch.bool)}, "'1', which is not a linear layer"),
    ({"0": torch.ones(3, 3)}, "must be boolean"),
    ({"0": torch.ones(3, 2, dtype=torch.bool)}, r"shape \(3, 2\); its weight is \(out, in\) = \(3, 3\)"),
    ({"2": torch.ones(4, dtype=torch.bool)}, r"or \(3,\) \(input features\)"),
])
def test_a_mask_that_does_not_fit_names_its_layer(masks, message):
    with pytest.raises(ValueError, match=message):
        apply_masks(masks_model(), masks)


@pytest.mark.exercise("apply_masks")
def test_apply_masks_on_the_tiny_bert_drops_intermediate_neurons_and_their_columns(tokenizer):
    model = tiny_bert(tokenizer.vocab_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kept = torch.arange(64) % 4 != 0  # drop 16 of the 64 intermediate neurons of layer 1
    rows = kept[:, None].expand(64, 32)
    prefix = "bert.encoder.layer.1."
    module = apply_masks(model, {prefix + "intermediate.dense": rows, prefix + "output.dense": kept})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "the original changed"
    state = module.state_dict()
    inner, outer = prefix + "intermediate.dense.weight", prefix + "output.dense.weight"
    assert torch.equal(state[inner], before[inner] * kept[:, None])  # rows of the (64, 32) weight
    assert torch.equal(state[outer], before[outer] * kept) and state[outer].shape == (32, 64)  # its columns
    changed = {k for k in before if not torch.equal(state[k], before[k])}
    assert changed == {inner, outer}  # the biases of a fresh BERT are 0 already
    layers = find_layers(module)
    assert pruned_sparsity(module, layers) == pytest.approx(2 * 16 * 32 / (4 * 64 * 32))
    assert sparsity_table(module, layers)[prefix + "output.dense"] == pytest.approx(0.25)


@pytest.mark.exercise("overall_sparsity")
def test_overall_sparsity_by_hand():
    check_overall_sparsity(overall_sparsity)


@pytest.mark.exercise("overall_sparsity")
def test_overall_sparsity_of_the_tiny_bert_counts_every_linear_layer(tokenizer):
    model = tiny_bert(tokenizer.vocab_size)  # hidden 32, feed-forward 64, 2 layers, 3 classes
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                for parameter in layer.parameters():
                    parameter.fill_(1.0)
        model.bert.encoder.layer[0].intermediate.dense.weight[::2] = 0.0  # 32 of its 64 rows of 32 weights
    # per encoder layer: query, key, value, attention output 4 x (32 x 32 + 32), intermediate 32 x 64 + 64,
    # output 64 x 32 + 32; then the pooler 32 x 32 + 32 and the head 32 x 3 + 3
    entries = 2 * (4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32)) + (32 * 32 + 32) + (32 * 3 + 3)
    assert overall_sparsity(model) == pytest.approx(32 * 32 / entries)
