"""The checks of assignment 05's exercises on hand-made inputs whose answers are worked out here, token by
token: each ``check_<exercise>(fn)`` calls ``fn`` the way the library does and raises an
``AssertionError`` that names the expected value (and what the contract says) when ``fn`` is wrong.

The public tests run them on the exercises; ``test_wrong_variants.py`` runs them on wrong but runnable
answers and checks that each is rejected with a message that says why.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from course_lib.modularization.activations import ActivationStats

# -- messages ---------------------------------------------------------------------------------------


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    if isinstance(value, np.ndarray):
        return str((np.round(value, 4) + 0.0).tolist())
    return f"{value:.4f}" if isinstance(value, float) else repr(value)


def expect_close(got, expected, what: str, hint: str = "", atol: float = 1e-5) -> None:
    """An ``AssertionError`` ``"<what>: expected <expected>, got <got>; <hint>"`` unless ``got`` (a tensor
    or a number) has ``expected``'s shape and values (within ``atol``)."""
    g = torch.as_tensor(got, dtype=torch.float64) if not isinstance(got, torch.Tensor) else got.detach().cpu()
    e = torch.as_tensor(expected, dtype=torch.float64)
    if tuple(g.shape) != tuple(e.shape):
        raise AssertionError(f"{what}: expected shape {tuple(e.shape)}, got {tuple(g.shape)}"
                             + (f"; {hint}" if hint else ""))
    if not torch.allclose(g.double(), e, atol=atol, rtol=1e-6):
        raise AssertionError(f"{what}: expected {_show(e)}, got {_show(g)}" + (f"; {hint}" if hint else ""))


def expect_equal(got, expected, what: str, hint: str = "") -> None:
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}" + (f"; {hint}" if hint else ""))


# -- similarity measures -----------------------------------------------------------------------------


def _similarity_pair() -> tuple[np.ndarray, np.ndarray]:
    """X (60, 3) and Y (60, 4) with means far from 0, Y partly a linear map of X plus noise."""
    rng = np.random.default_rng(21)
    X = rng.normal(size=(60, 3)) @ np.array([[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.2, 0.0, 0.7]]) + 5.0
    Y = np.column_stack([X @ np.array([1.0, -1.0, 0.5]), X[:, 0] ** 2 / 10, rng.normal(size=(60, 2))]) - 3.0
    return X, Y


def _centred(A: np.ndarray) -> np.ndarray:
    return A - A.mean(axis=0)


def check_linear_cka(linear_cka) -> None:
    X, Y = _similarity_pair()
    Xc, Yc = _centred(X), _centred(Y)
    expected = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    expect_close(float(linear_cka(X, Y)), float(expected), "linear_cka",
                 "centre the columns of X and Y first, then |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F)", atol=1e-8)


def check_kernel_cka(kernel_cka) -> None:
    X, Y = _similarity_pair()
    H = np.eye(len(X)) - 1 / len(X)

    def gram(A: np.ndarray, sigma: float) -> np.ndarray:
        return np.exp(-((A[:, None] - A[None]) ** 2).sum(-1) / (2 * sigma**2))

    K, L = H @ gram(X, 2.0) @ H, H @ gram(Y, 2.0) @ H
    expected = np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))
    expect_close(float(kernel_cka(X, Y, sigma=2.0)), float(expected), "kernel_cka (sigma 2)",
                 "centre both RBF Gram matrices (H K H), then tr(K L) / sqrt(tr(K K) tr(L L))", atol=1e-8)


def check_cca_similarity(cca_similarity) -> None:
    X, Y = _similarity_pair()
    qx, qy = np.linalg.qr(_centred(X))[0], np.linalg.qr(_centred(Y))[0]  # orthonormal bases of the spans
    rho = np.linalg.svd(qx.T @ qy, compute_uv=False)  # the canonical correlations, largest first
    expect_close(float(cca_similarity(X, Y)), float(rho.mean()), "cca_similarity",
                 f"the mean of the {len(rho)} canonical correlations {np.round(rho, 4).tolist()} of the "
                 "centred X and Y", atol=1e-5)


# -- feature_sums -----------------------------------------------------------------------------------

SUMS_X = torch.tensor([  # (2B, T, in) = (4, 3, 2): rows 0, 1 positives; rows 2, 3 their negatives
    [[1.0, 2.0], [3.0, -1.0], [50.0, 60.0]],  # positive 0, its last token padding
    [[0.5, 0.0], [70.0, 80.0], [90.0, 10.0]],  # positive 1, one real token
    [[2.0, 1.0], [-1.0, 4.0], [2.0, 2.0]],  # negative 0 (paired with positive 0): three real tokens
    [[1.0, 3.0], [2.0, -2.0], [40.0, 30.0]],  # negative 1 (paired with positive 1): two real tokens
])
SUMS_MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
# positives' real tokens: (1, 2), (3, -1), (0.5, 0); negatives': (2, 1), (-1, 4), (2, 2), (1, 3), (2, -2);
# pairs of real tokens: (1, 2)x(2, 1), (3, -1)x(-1, 4), (0.5, 0)x(1, 3)
SUMS_EXPECTED = torch.tensor([
    [1 + 9 + 0.25, 4 + 1 + 0],
    [4 + 1 + 4 + 1 + 4, 1 + 16 + 4 + 9 + 4],
    [2 - 3 + 0.5, 2 - 4 + 0],
], dtype=torch.float64)
SUMS_HINT = ("row 0 sums x^2 over the positives' real tokens (rows 0..B-1 of x), row 1 over the negatives' "
             "(rows B..2B-1), row 2 the products of token t of positive b and token t of its negative; "
             "padding tokens (mask 0) add nothing")


def check_feature_sums(feature_sums) -> None:
    got = feature_sums(SUMS_X.clone(), SUMS_MASK.clone())
    expect_close(got, SUMS_EXPECTED, "feature_sums", SUMS_HINT)
    expect_equal(got.dtype, torch.float64, "feature_sums dtype", "sum in float64")
    one_pair = feature_sums(SUMS_X[[0, 2]].float(), SUMS_MASK[[0, 2]])  # B = 1, float32 input
    expected = torch.tensor([[10.0, 5.0], [9.0, 21.0], [-1.0, -2.0]], dtype=torch.float64)
    expect_close(one_pair, expected, "feature_sums of positive 0 and negative 0 alone", SUMS_HINT)


# -- activation_stats -------------------------------------------------------------------------------

TOKEN_VECTORS = {1: (1.0, 0.0), 2: (2.0, 1.0), 3: (2.0, 2.0), 4: (1.0, 3.0), 5: (9.0, 9.0)}
"""The 2-d vector of every token id (5 is used only at padding positions, where it must count for nothing)."""


class TableModel(nn.Module):
    """``input_ids`` index a table of 2-d vectors, the input of ``ffn`` (2 -> 3, weight [[1, 0], [0, 1],
    [1, 1]], no bias); ``down`` (3 -> 2) reads relu(ffn(x)) = (a, b, a + b): both layers' inputs are known.
    ``fail_after`` forward passes it raises (to check that the hooks go anyway)."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        table = torch.zeros(6, 2)
        for token, vector in TOKEN_VECTORS.items():
            table[token] = torch.tensor(vector)
        self.register_buffer("table", table)
        self.ffn = nn.Linear(2, 3, bias=False)
        self.down = nn.Linear(3, 2)
        with torch.no_grad():
            self.ffn.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
            self.down.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, -1.0]]))
        self.fail_after, self.calls = fail_after, 0

    def forward(self, input_ids, attention_mask):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the model failed in a forward pass")
        return self.down(torch.relu(self.ffn(self.table[input_ids])))


STATS_BATCHES = [  # (input_ids, attention_mask), each (2B, T): B positives, then their B negatives
    (torch.tensor([[1, 2, 5], [3, 4, 1]]), torch.tensor([[1, 1, 0], [1, 1, 1]])),  # B = 1, T = 3
    (torch.tensor([[2, 2], [1, 5], [1, 3], [4, 4]]), torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1]])),  # B = 2
]


def _expected_stats(features) -> dict[str, torch.Tensor]:
    """Norms and cosine per feature from the token lists, written out (``features`` maps a token id to
    the layer's input vector)."""
    pos, neg, pairs = [], [], []
    for ids, mask in STATS_BATCHES:
        b = len(ids) // 2
        for i in range(b):
            for t in range(ids.shape[1]):
                p_real, n_real = bool(mask[i, t]), bool(mask[b + i, t])
                p, n = features(int(ids[i, t])), features(int(ids[b + i, t]))
                if p_real:
                    pos.append(p)
                if n_real:
                    neg.append(n)
                if p_real and n_real:
                    pairs.append((p, n))
    width = len(pos[0])
    pos_norm = [math.sqrt(sum(v[j] ** 2 for v in pos)) for j in range(width)]
    neg_norm = [math.sqrt(sum(v[j] ** 2 for v in neg)) for j in range(width)]
    dot = [sum(p[j] * n[j] for p, n in pairs) for j in range(width)]
    cosine = [d / (a * b) if a * b > 0 else 0.0 for d, a, b in zip(dot, pos_norm, neg_norm, strict=True)]
    return {"pos_norm": torch.tensor(pos_norm), "neg_norm": torch.tensor(neg_norm),
            "cosine": torch.tensor(cosine), "pos_tokens": len(pos), "neg_tokens": len(neg)}


def _ffn_input(token: int) -> tuple[float, ...]:
    return TOKEN_VECTORS[token]


def _down_input(token: int) -> tuple[float, ...]:
    a, b = TOKEN_VECTORS[token]
    return (a, b, a + b)


STATS_EXPECTED = {"ffn": _expected_stats(_ffn_input), "down": _expected_stats(_down_input)}
STATS_HINT = {"pos_norm": "the norm over the positives' real tokens (rows 0..B-1 of each batch, mask 1)",
              "neg_norm": "the norm over the negatives' real tokens (rows B..2B-1, mask 1)",
              "cosine": "sum of x+ x- over the paired real tokens / (n+ n-)",
              "pos_tokens": "the real tokens (mask 1) of the positives, over every batch",
              "neg_tokens": "the real tokens (mask 1) of the negatives, over every batch"}


def hook_ids(model: nn.Module) -> dict[str, set[int]]:
    """The ids of the forward (and forward pre-) hooks on every module of ``model`` (a library such as
    ``transformers`` may register its own)."""
    return {name or "<model>": set(m._forward_hooks) | set(m._forward_pre_hooks)
            for name, m in model.named_modules()}


def hooks_left(model: nn.Module, before: dict[str, set[int]]) -> list[str]:
    """Names of the modules of ``model`` with a hook they did not carry ``before`` (see :func:`hook_ids`)."""
    return [name for name, ids in hook_ids(model).items() if ids - before.get(name, set())]


def check_activation_stats(activation_stats) -> None:
    model = TableModel()
    layers = {"ffn": model.ffn, "down": model.down}
    stats = activation_stats(model, iter(STATS_BATCHES), layers)
    left = hooks_left(model, {})
    if left:
        raise AssertionError(f"hooks left registered on {left} after activation_stats returned: expected "
                             "none; remove every handle (handle.remove()) before returning")
    expect_equal(sorted(stats), sorted(layers), "the layers of the statistics")
    for name, expected in STATS_EXPECTED.items():
        if not isinstance(stats[name], ActivationStats):
            raise AssertionError(f"{name}: expected an ActivationStats, got {type(stats[name]).__name__}")
        for field in ("pos_tokens", "neg_tokens"):
            expect_equal(getattr(stats[name], field), expected[field], f"{name}.{field}", STATS_HINT[field])
        for field in ("pos_norm", "neg_norm", "cosine"):
            expect_close(getattr(stats[name], field), expected[field], f"{name}.{field}", STATS_HINT[field],
                         atol=1e-4)
    failing = TableModel(fail_after=1)
    try:
        activation_stats(failing, iter(STATS_BATCHES), {"ffn": failing.ffn, "down": failing.down})
    except RuntimeError:
        pass
    else:
        raise AssertionError("the model raised in the second batch, but activation_stats returned: expected "
                             "the error to reach the caller")
    left = hooks_left(failing, {})
    if left:
        raise AssertionError(f"hooks left registered on {left} after the model raised: expected none; remove "
                             "the handles in a finally block")


# -- scores and masks (the exercises of pruning.py) ----------------------------------------------------

HAND_STATS = ActivationStats(pos_norm=torch.tensor([5**0.5, 1.0]), neg_norm=torch.tensor([5**0.5, 2.0]),
                             cosine=torch.tensor([0.8, 0.0]), pos_tokens=2, neg_tokens=2)
"""Statistics of two positive tokens (1, 0), (2, 1) against two negative ones (2, 2), (1, 0)."""


def check_ci_coefficient(ci_coefficient) -> None:
    pos, neg = torch.tensor([3.0, 0.0, 1.0, 0.0]), torch.tensor([4.0, 2.0, 0.0, 0.0])
    cos = torch.tensor([0.6, 0.0, 0.0, 0.0])
    expected = torch.tensor([3 + 0.8 * 7 / 5, 0 + 1.0 * 2 / 2, 1 + 1.0 * 1 / 1, 0.0])  # 4.12, 1, 2, silent: 0
    expect_close(ci_coefficient(pos, neg, cos), expected, "ci_coefficient",
                 "n+ + sqrt(1 - c^2) (n+ + n-) / sqrt(n+^2 + n-^2), 0 for a silent feature")
    expect_close(ci_coefficient(pos, neg, torch.ones(4)), pos, "ci_coefficient with cosine 1",
                 "the same direction on both sides earns no bonus")


def check_wanda_scores(wanda_scores) -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    pos, neg = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 3.0])
    for lam, expected in ((1.0, [[1.0, -4.0], [0.5, 0.0]]), (0.5, [[1.5, -1.0], [0.75, 0.0]])):
        expect_close(wanda_scores(w, pos, neg, lam), torch.tensor(expected), f"wanda_scores (lambda {lam})",
                     "|W_ij| (a+_j - lambda a-_j): input feature j is column j")


def check_keep_mask(keep_mask) -> None:
    scores = torch.tensor([[0.3, 0.1, 0.4, 0.2], [0.9, 0.5, 0.7, 0.6], [0.05, 0.2, 0.1, 0.0]])
    expect_close(keep_mask(scores, 0.5, "unstructured").int(),
                 torch.tensor([[1, 0, 1, 0], [1, 0, 1, 0], [0, 1, 1, 0]]), "keep_mask unstructured",
                 "in every row, the floor(0.5 * 4) = 2 lowest scores go")
    expect_close(keep_mask(scores, 0.5, "structured").int(),
                 torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]), "keep_mask structured",
                 "whole rows, the floor(0.5 * 3) = 1 with the lowest norm of the positive scores")


# -- apply_masks ------------------------------------------------------------------------------------


def masks_model() -> nn.Sequential:
    """Two 3 x 3 linear layers ("0" and "2") with no zero weight or bias: whatever becomes 0 was pruned."""
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3))
    with torch.no_grad():
        for k, layer in ((0, model[0]), (2, model[2])):
            layer.weight.copy_(torch.arange(1.0, 10.0).reshape(3, 3) + 10 * k)
            layer.bias.copy_(torch.tensor([-1.0, 2.0, 3.0]) * (k + 1))
    return model


MASKS = {
    "0": torch.tensor([[True, False, True], [False, False, False], [True, True, True]]),  # row 1: dead
    "2": torch.tensor([True, False, True]),  # (in,): input feature 1 of layer 2 dropped
}
MASKED = {
    "0.weight": [[1.0, 0.0, 3.0], [0.0, 0.0, 0.0], [7.0, 8.0, 9.0]], "0.bias": [-1.0, 0.0, 3.0],
    "2.weight": [[21.0, 0.0, 23.0], [24.0, 0.0, 26.0], [27.0, 0.0, 29.0]], "2.bias": [-3.0, 6.0, 9.0],
}
MASK_HINT = {
    "0.weight": "an (out, in) mask keeps W[i, j] where mask[i, j] is True",
    "0.bias": "a row with no weight left loses its bias; other rows keep theirs",
    "2.weight": "an (in,) mask drops input features: feature j is column j of the (out, in) weight",
    "2.bias": "column masks leave every row some weight, so every bias stays",
}


def check_apply_masks(apply_masks) -> None:
    model = masks_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = {k: v.clone() for k, v in MASKS.items()}
    module = apply_masks(model, masks)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    if changed or module is model:
        raise AssertionError(f"the original model was changed ({changed or 'the same object returned'}): "
                             "expected it untouched; prune a deep copy (copy.deepcopy) and return the copy")
    pruned = module.state_dict()
    for key, expected in MASKED.items():
        expect_close(pruned[key], torch.tensor(expected), f"layer {key}", MASK_HINT[key])
    expect_equal([torch.equal(masks[k], MASKS[k]) for k in MASKS], [True, True], "masks unchanged")
    again = apply_masks(module, {"2": torch.ones(3, 3, dtype=torch.bool)})  # keeping all changes nothing
    for key, value in module.state_dict().items():
        expect_close(again.state_dict()[key], value, f"{key} under an all-True mask", "True keeps a weight")


# -- overall_sparsity -------------------------------------------------------------------------------


class SparseModel(nn.Module):
    """Embeddings and a LayerNorm (not linear: they do not count) and three linear layers with known zeros:
    ``a`` 4 x 6 weight (6 zeros) and 4-bias (1 zero), ``b`` 2 x 4 weight without bias (3 zeros), ``c``
    3 x 2 weight (no zero) and 3-bias (3 zeros)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 6)
        self.norm = nn.LayerNorm(6)  # its bias starts at 0
        self.a, self.b, self.c = nn.Linear(6, 4), nn.Linear(4, 2, bias=False), nn.Linear(2, 3)
        with torch.no_grad():
            self.embed.weight.copy_(torch.arange(30.0).reshape(5, 6))  # one zero
            self.a.weight.copy_(torch.arange(1.0, 25.0).reshape(4, 6))
            self.a.weight[1, :] = 0.0  # a pruned row: 6 zeros
            self.a.bias.copy_(torch.tensor([1.0, 0.0, 2.0, 3.0]))
            self.b.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 4.0, 5.0]]))
            self.c.weight.copy_(torch.ones(3, 2))
            self.c.bias.zero_()


SPARSITY_EXPECTED = (6 + 1 + 3 + 0 + 3) / (24 + 4 + 8 + 6 + 3)  # 13 / 45


def check_overall_sparsity(overall_sparsity) -> None:
    got = overall_sparsity(SparseModel())
    expect_close(float(got), SPARSITY_EXPECTED, "overall_sparsity",
                 "zeros / entries over every weight and bias of every nn.Linear (13 of 45 here); embeddings "
                 "and LayerNorm do not count", atol=1e-9)
    expect_close(float(overall_sparsity(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))), 0.0,
                 "overall_sparsity of an unpruned layer", "no weight is 0", atol=1e-9)
    expect_close(float(overall_sparsity(nn.Sequential(nn.Embedding(3, 2), nn.LayerNorm(2)))), 0.0,
                 "overall_sparsity without linear layers", "0.0 when there is nothing to count", atol=1e-9)

