"""Representation similarity: linear CKA, RBF-kernel CKA and mean canonical correlation (CCA).

Every function takes two activation matrices ``X`` (n, p) and ``Y`` (n, q) whose rows are the same
``n`` inputs seen by two networks (or two layers), and returns a number in [0, 1] (1 = same
representation up to the invariances of the measure). Computations run in float64.

- Linear CKA (Kornblith et al. 2019): invariant to orthogonal transforms and isotropic scaling.
- Kernel CKA with an RBF kernel; bandwidth by the median heuristic unless ``sigma`` is given.
- CCA (mean canonical correlation, Raghu et al. 2017 for the SVCCA variant): invariant to any
  invertible linear map; a small ridge on the covariances keeps it stable when p or q is close to n.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_matrix(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_samples, n_features) array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def check_pair(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n, p) and ``Y`` (n, q) as float64 arrays; raises ``ValueError`` on bad shapes."""
    X, Y = _as_matrix(X, "X"), _as_matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows (samples), got {X.shape} and {Y.shape}")
    if X.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got {X.shape[0]}")
    return X, Y


def center(K: np.ndarray) -> np.ndarray:
    """Double-centre an (n, n) Gram matrix: H K H with H = I - 11^T / n."""
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def rbf_gram(X: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """(n, n) RBF Gram matrix exp(-|x_i - x_j|^2 / (2 sigma^2)); ``sigma`` = median distance if None."""
    sq = np.sum(X * X, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    if sigma is None:
        off = d2[~np.eye(len(X), dtype=bool)]
        positive = off[off > 0]
        sigma = float(np.sqrt(np.median(positive))) if positive.size else 1.0
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return np.exp(-d2 / (2.0 * sigma**2))


def linear_cka(X, Y) -> float:
    """Linear CKA of X (n, p) and Y (n, q): |Y_c^T X_c|_F^2 / (|X_c^T X_c|_F |Y_c^T Y_c|_F)."""
    X, Y = check_pair(X, Y)
    ### BEGIN SOLUTION
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    cross = np.linalg.norm(Y.T @ X) ** 2
    norm = np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)
    return float(cross / norm) if norm > 0 else 0.0
    ### END SOLUTION


def kernel_cka(X, Y, sigma: float | None = None) -> float:
    """RBF-kernel CKA of X (n, p) and Y (n, q): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

    ``sigma`` is the RBF bandwidth of both kernels; ``None`` takes each matrix's median pairwise
    distance (the median heuristic).
    """
    X, Y = check_pair(X, Y)
    ### BEGIN SOLUTION
    K, L = center(rbf_gram(X, sigma)), center(rbf_gram(Y, sigma))
    hsic_kl = np.sum(K * L)
    norm = np.sqrt(np.sum(K * K) * np.sum(L * L))
    return float(hsic_kl / norm) if norm > 0 else 0.0
    ### END SOLUTION


def top_components(X: np.ndarray, k: int) -> np.ndarray:
    """Project centred X (n, p) onto its top ``k`` principal directions: (n, min(k, p))."""
    X = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    k = min(k, S.size)
    return U[:, :k] * S[:k]


def cca_similarity(X, Y, *, n_components: int | None = None, ridge: float = 1e-6) -> float:
    """Mean canonical correlation of X (n, p) and Y (n, q).

    With ``n_components`` both matrices are first reduced to their top principal components (SVCCA);
    use it when p or q is not much smaller than n, where CCA finds spurious correlations.
    ``ridge`` (relative to the mean variance) is added to the diagonal of each covariance.
    """
    X, Y = check_pair(X, Y)
    if n_components is not None:
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1 or None, got {n_components}")
        X, Y = top_components(X, n_components), top_components(Y, n_components)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    ### BEGIN SOLUTION
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    n = X.shape[0]

    def inv_sqrt(C: np.ndarray) -> np.ndarray:
        C = C + ridge * max(np.trace(C) / len(C), 1e-12) * np.eye(len(C))
        w, V = np.linalg.eigh(C)
        return (V / np.sqrt(np.maximum(w, 1e-12))) @ V.T

    Cxx, Cyy, Cxy = X.T @ X / (n - 1), Y.T @ Y / (n - 1), X.T @ Y / (n - 1)
    rho = np.linalg.svd(inv_sqrt(Cxx) @ Cxy @ inv_sqrt(Cyy), compute_uv=False)
    return float(np.clip(rho[: min(X.shape[1], Y.shape[1])], 0.0, 1.0).mean())
    ### END SOLUTION
