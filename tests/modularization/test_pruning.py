"""course_lib.modularization.pruning: concern scores and masks (the exercises), layer selection,
activation RMS and pruning a copy of the tiny BERT."""

from __future__ import annotations

import pytest
import torch

from course_lib.modularization import (
    concern_samples,
    concern_scores,
    encode,
    find_layers,
    keep_mask,
    prune_concern,
)
from course_lib.modularization.evaluation import forward
from course_lib.modularization.pruning import activation_rms, overall_sparsity

from .tiny import CPU, synthetic_split, tiny_bert

# -- scores and masks ------------------------------------------------------------------------------


def test_concern_scores_prefer_features_active_on_positives():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    pos, neg = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 3.0])
    assert torch.allclose(concern_scores(w, pos, neg, 1.0), torch.tensor([[1.0, -4.0], [0.5, 0.0]]))
    assert torch.allclose(concern_scores(w, pos, neg, 0.5), torch.tensor([[1.5, -1.0], [0.75, 0.0]]))
    assert torch.allclose(concern_scores(w, pos, neg, 0.0), w.abs() * pos)  # Wanda on the positives


def test_unstructured_mask_prunes_exactly_the_lowest_scores():
    scores = torch.arange(20.0).reshape(4, 5).flip(1)
    mask = keep_mask(scores, 0.3, "unstructured")
    assert int((~mask).sum()) == 6
    assert scores[~mask].max() < scores[mask].min()


def test_structured_mask_prunes_whole_rows_by_summed_score():
    scores = torch.tensor([[1.0, 1.0], [-3.0, 6.0], [0.0, -1.0], [4.0, 4.0]])
    mask = keep_mask(scores, 0.5, "structured")
    assert (~mask).all(dim=1).nonzero().flatten().tolist() == [0, 2]  # row sums 2, 3, -1, 8
    assert mask[[1, 3]].all()


@pytest.mark.parametrize("method, ratio", [("magnitude", 0.5), ("structured", 1.0), ("unstructured", -0.1)])
def test_bad_method_or_ratio_names_the_choices(method, ratio):
    with pytest.raises(ValueError, match="unstructured" if method == "magnitude" else r"\[0, 1\)"):
        keep_mask(torch.ones(2, 2), ratio, method)


# -- layers, activations, pruning ---------------------------------------------------------------------


def test_find_layers_defaults_to_feed_forward_without_attention(tokenizer):
    model = tiny_bert(tokenizer.vocab_size)
    names = list(find_layers(model))
    ffn = ("intermediate", "output")
    assert names == [f"bert.encoder.layer.{i}.{n}.dense" for i in range(2) for n in ffn]
    assert list(find_layers(model, include=[r"layer\.1\.intermediate"], exclude=[])) == [
        "bert.encoder.layer.1.intermediate.dense"]
    with pytest.raises(ValueError, match="no linear layer matches"):
        find_layers(model, include=["decoder"])
    with pytest.raises(ValueError, match="not a valid regular expression"):
        find_layers(model, include=["dense("])
    with pytest.raises(TypeError, match="sequence"):
        find_layers(model, include=r"dense$")


def test_activation_rms_ignores_padding(tokenizer, trained):
    model = trained[0]
    enc = encode(tokenizer, synthetic_split(6, 5), 10)
    padded = {k: torch.nn.functional.pad(v, (0, 4)) if v.ndim == 2 else v for k, v in enc.items()}
    padded["input_ids"][:, -4:] = tokenizer.convert_tokens_to_ids("alpha1")  # masked out, must not count
    layers = find_layers(model)
    a, b = activation_rms(model, enc, layers, CPU), activation_rms(model, padded, layers, CPU)
    for name in layers:
        assert a[name].shape == (layers[name].in_features,)
        assert torch.allclose(a[name], b[name], atol=1e-5)


@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_prune_concern_masks_a_copy_in_place_and_keeps_the_original(tokenizer, trained, method):
    model = trained[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pos, neg = concern_samples(trained[3], 0, 20, seed=0)
    module = prune_concern(model, encode(tokenizer, pos, 10), encode(tokenizer, neg, 10),
                           sparsity_ratio=0.4, method=method)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the original model was changed"
    layers = find_layers(module)
    pruned_state = module.state_dict()
    for k, v in before.items():
        assert pruned_state[k].shape == v.shape
        if not any(k.startswith(name) for name in layers):
            assert torch.equal(pruned_state[k], v), f"{k} is not a target layer but changed"
    for layer in layers.values():
        zeros = layer.weight == 0
        expected = round(0.4 * (zeros.numel() if method == "unstructured" else zeros.shape[0]))
        if method == "unstructured":
            assert int(zeros.sum()) == expected
        else:
            dead = zeros.all(dim=1)
            assert int(dead.sum()) == expected and (layer.bias[dead] == 0).all()
    assert overall_sparsity(module, layers) == pytest.approx(0.4, abs=0.01)


def test_concern_pruning_keeps_the_concern_better_than_anti_concern_pruning(tokenizer, trained):
    """Pruning by the concern score must hurt the concern's own inputs less than pruning by the
    opposite score (positives and negatives swapped) at the same sparsity."""
    model, _, _, train, test = trained
    test_enc = encode(tokenizer, test, 10)
    margins = {}
    for concern in range(3):
        pos, neg = (encode(tokenizer, s, 10) for s in concern_samples(train, concern, 40, seed=0))
        keep = prune_concern(model, pos, neg, sparsity_ratio=0.5, method="unstructured")
        anti = prune_concern(model, neg, pos, sparsity_ratio=0.5, method="unstructured")
        rows = test_enc["labels"] == concern
        for tag, m in (("keep", keep), ("anti", anti)):
            logits = forward(m, test_enc, CPU).logits[rows]
            margins[tag, concern] = float(torch.log_softmax(logits, -1)[:, concern].mean())
    for concern in range(3):
        assert margins["keep", concern] > margins["anti", concern], margins
