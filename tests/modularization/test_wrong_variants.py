"""Wrong but runnable answers to assignment 05's exercises, each rejected by the check its public test runs
(:mod:`.checks`) with a message that names what was expected. These tests check the checks: they call no
exercise, so they pass before the exercises are written."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.modularization.activations import ActivationStats
from course_lib.modularization.similarity import check_pair, rbf_gram

from . import checks

# -- reference pieces the wrong variants are built from (the right computation, written here) ---------------


def _sums(x, mask):
    kept = x.double() * mask.double()[..., None]
    pos, neg = kept.chunk(2)
    return torch.stack([pos.square().sum((0, 1)), neg.square().sum((0, 1)), (pos * neg).sum((0, 1))])


def _stats_variant(*, padding=False, mixed=False, keep_hooks=False, no_finally=False, count_padding=False,
                   last_batch_only=False, swallow=False):
    """activation_stats, right but for the one thing each flag gets wrong."""

    def activation_stats(model, batches, layers):
        sums = {n: torch.zeros(3, m.in_features, dtype=torch.float64) for n, m in layers.items()}
        tokens, current = [0, 0], {}

        def hook_for(name):
            def hook(_module, inputs, _output):
                x, mask = inputs[0], current["mask"]
                if padding:
                    mask = torch.ones_like(mask)
                if mixed:  # every row counted on both sides
                    both = _sums(torch.cat([x, x]), torch.cat([mask, mask]))
                    sums[name] += torch.stack([both[0], both[0], both[2]])
                else:
                    sums[name] += _sums(x, mask)
            return hook

        handles = [m.register_forward_hook(hook_for(n)) for n, m in layers.items()]

        def run():
            for ids, mask in batches:
                if last_batch_only:
                    for s in sums.values():
                        s.zero_()
                    tokens[:] = [0, 0]
                current["mask"] = mask
                model(input_ids=ids, attention_mask=mask)
                half = len(mask) // 2
                tokens[0] += mask[:half].numel() if count_padding else int(mask[:half].sum())
                tokens[1] += mask[half:].numel() if count_padding else int(mask[half:].sum())

        if no_finally:
            run()
            for h in handles:
                h.remove()
        else:
            try:
                with torch.no_grad():
                    run()
            except RuntimeError:
                if not swallow:
                    raise
            finally:
                if not keep_hooks:
                    for h in handles:
                        h.remove()
        return {n: ActivationStats.from_sums(s, *tokens) for n, s in sums.items()}

    return activation_stats


def _masks_variant(*, in_place=False, shallow=False, feature_rows=False, transposed=False, bias=True,
                   bias_if_any_pruned=False):
    """apply_masks, right but for the one thing each flag gets wrong."""

    def apply_masks(model, masks):
        module = model if in_place else copy.copy(model) if shallow else copy.deepcopy(model)
        layers = dict(module.named_modules())
        with torch.no_grad():
            for name, mask in masks.items():
                layer = layers[name]
                if mask.ndim == 1:
                    keep = (mask[:, None] if feature_rows else mask[None, :]).expand_as(layer.weight)
                else:
                    keep = mask.T if transposed else mask
                layer.weight.mul_(keep)
                if bias:
                    layer.bias.mul_(keep.all(dim=1) if bias_if_any_pruned else keep.any(dim=1))
        return module

    return apply_masks


def _sparsity_variant(which):
    def overall_sparsity(model):
        if which == "all parameters":
            tensors = list(model.parameters())
        else:
            linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
            if which == "pruned layers":
                linear = [m for m in linear if (m.weight == 0).any()]
            tensors = [m.weight for m in linear] if which == "weights only" else [
                p for m in linear for p in m.parameters(recurse=False)]
        if which == "mean of ratios":
            return float(np.mean([float((t == 0).float().mean()) for t in tensors]))
        zeros = sum(int((t == 0).sum()) for t in tensors)
        total = sum(t.numel() for t in tensors)
        return 1 - zeros / total if which == "density" else zeros / total

    return overall_sparsity


def _keep_mask_by_column(scores, ratio, method):
    mask = torch.ones_like(scores, dtype=torch.bool)
    k = int(ratio * scores.shape[0])
    mask.scatter_(0, torch.argsort(scores, dim=0)[:k], False)
    return mask


def _linear_cka_uncentred(X, Y):
    X, Y = check_pair(X, Y)
    return float(np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def _kernel_cka_uncentred(X, Y, sigma=None):
    X, Y = check_pair(X, Y)
    K, L = rbf_gram(X, sigma), rbf_gram(Y, sigma)
    return float(np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L)))


def _cca(centre: bool, reduce):
    def cca_similarity(X, Y, n_components=None, ridge=1e-6):
        X, Y = check_pair(X, Y)
        if centre:
            X, Y = X - X.mean(0), Y - Y.mean(0)
        rho = np.linalg.svd(np.linalg.qr(X)[0].T @ np.linalg.qr(Y)[0], compute_uv=False)
        return float(reduce(rho))

    return cca_similarity


def _interleaved_sums(x, mask):  # positives and negatives taken as alternate rows
    kept = x.double() * mask.double()[..., None]
    pos, neg = kept[0::2], kept[1::2]
    return torch.stack([pos.square().sum((0, 1)), neg.square().sum((0, 1)), (pos * neg).sum((0, 1))])


def _unmasked_products(x, mask):  # the norms masked, the products of the pairs not
    half = len(x) // 2
    return torch.cat([_sums(x, mask)[:2], (x.double()[:half] * x.double()[half:]).sum((0, 1))[None]])


def _ci_with_cosine(pos, neg, cos):
    return pos + cos * (pos + neg) / (pos**2 + neg**2).sqrt().clamp(min=1e-8)


def _ci_unfloored(pos, neg, cos):
    return pos + (1 - cos**2).sqrt() * (pos + neg) / (pos**2 + neg**2).sqrt()


WRONG = {
    # exercise: [(variant, wrong function, what the message must say)]
    "linear_cka": [("columns not centred", _linear_cka_uncentred, r"linear_cka: expected .*centre the")],
    "kernel_cka": [("Gram matrices not centred", _kernel_cka_uncentred, r"kernel_cka .*: expected .*H K H")],
    "cca_similarity": [
        ("not centred", _cca(False, np.mean), r"cca_similarity: expected .*canonical correlations"),
        ("the largest correlation only", _cca(True, np.max), r"cca_similarity: expected"),
    ],
    "feature_sums": [
        ("padding counted", lambda x, mask: _sums(x, torch.ones_like(mask)),
         r"feature_sums: expected \[\[10\.25, 5\.0\], \[14\.0, 34\.0\], \[-0\.5, -2\.0\]\].*padding"),
        ("positives and negatives interleaved", _interleaved_sums, r"feature_sums: expected .*rows 0..B-1"),
        ("a mean over the tokens", lambda x, mask: _sums(x, mask) / mask.sum(),
         r"feature_sums: expected \[\[10\.25"),
        ("products of unmasked tokens", _unmasked_products,
         r"feature_sums: expected .*padding tokens \(mask 0\) add nothing"),
        ("float32", lambda x, mask: _sums(x, mask).float(), r"feature_sums dtype: expected torch\.float64"),
        ("(in, 3) instead of (3, in)", lambda x, mask: _sums(x, mask).T,
         r"feature_sums: expected shape \(3, 2\), got \(2, 3\)"),
    ],
    "activation_stats": [
        ("padding counted", _stats_variant(padding=True), r"ffn\.pos_norm: expected .*real tokens"),
        ("positives and negatives mixed", _stats_variant(mixed=True), r"ffn\.pos_norm: expected"),
        ("hooks left registered", _stats_variant(keep_hooks=True),
         r"hooks left registered on \['ffn', 'down'\] after activation_stats returned: expected none"),
        ("hooks left when the model raises", _stats_variant(no_finally=True),
         r"hooks left registered on \['ffn', 'down'\] after the model raised: expected none; .*finally"),
        ("the model's error swallowed", _stats_variant(swallow=True),
         r"expected the error to reach the caller"),
        ("padding tokens counted", _stats_variant(count_padding=True), r"ffn\.pos_tokens: expected 5, got 7"),
        ("the last batch only", _stats_variant(last_batch_only=True), r"ffn\.pos_tokens: expected 5, got 3"),
    ],
    "ci_coefficient": [
        ("no bonus", lambda pos, neg, cos: pos, r"ci_coefficient: expected \[4\.12, 1\.0, 2\.0, 0\.0\]"),
        ("cosine for sine", _ci_with_cosine, r"ci_coefficient: expected \[4\.12"),
        ("silent features not floored", _ci_unfloored, r"got \[4\.12, 1\.0, 2\.0, nan\]"),
    ],
    "wanda_scores": [
        ("plus the negatives", lambda w, p, n, lam=0.5: w.abs() * (p + lam * n),
         r"wanda_scores \(lambda 1\.0\)"),
        ("features along the rows", lambda w, p, n, lam=0.5: w.abs() * (p - lam * n)[:, None],
         r"expected \[\[1\.0, -4\.0\], \[0\.5, 0\.0\]\].*column j"),
    ],
    "keep_mask": [
        ("nothing pruned", lambda s, r, m: torch.ones_like(s, dtype=torch.bool),
         r"keep_mask unstructured: expected"),
        ("per column", _keep_mask_by_column, r"keep_mask unstructured: expected .*in every row"),
    ],
    "apply_masks": [
        ("the original pruned in place", _masks_variant(in_place=True), r"the original model was changed"),
        ("a shallow copy", _masks_variant(shallow=True), r"the original model was changed .*deep copy"),
        ("a feature mask on the rows", _masks_variant(feature_rows=True),
         r"layer 2\.weight: expected \[\[21\.0, 0\.0, 23\.0\].*column j"),
        ("the mask transposed", _masks_variant(transposed=True),
         r"layer 0\.weight: expected \[\[1\.0, 0\.0, 3\.0\]"),
        ("dead rows keep their bias", _masks_variant(bias=False),
         r"layer 0\.bias: expected \[-1\.0, 0\.0, 3\.0\]"),
        ("every row with a pruned weight loses its bias", _masks_variant(bias_if_any_pruned=True),
         r"layer 0\.bias: expected \[-1\.0, 0\.0, 3\.0\], got \[0\.0, 0\.0, 3\.0\]"),
    ],
    "overall_sparsity": [
        (which, _sparsity_variant(which), r"overall_sparsity: expected 0\.2889, got .*13 of 45")
        for which in ("weights only", "all parameters", "pruned layers", "mean of ratios", "density")
    ],
}
CHECK = {name: getattr(checks, f"check_{name}") for name in WRONG}


@pytest.mark.parametrize("exercise, wrong, message", [
    pytest.param(exercise, fn, message, id=f"{exercise}: {label}")
    for exercise, variants in WRONG.items() for label, fn, message in variants])
def test_the_check_rejects_a_wrong_answer_and_says_what_was_expected(exercise, wrong, message):
    with pytest.raises(AssertionError, match=message):
        CHECK[exercise](wrong)
