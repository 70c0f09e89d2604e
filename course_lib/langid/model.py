"""The skorch model: one configurable MLP, a seeded classifier, and the vectorizer -> cast -> net pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from torch import nn

from course_lib.core.settings import check_choice

NONLINEARITIES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
ANALYZERS = ("char", "char_wb", "word")


class LangIdMLP(nn.Module):
    """``depth`` hidden layers: (B, n_features) -> logits (B, n_classes).

    The first hidden layer has ``width`` units and ``nonlinearity``; the later ones have
    ``inner_width`` units and ``inner_nonlinearity`` (``None``: the same as the first). The course's
    net is ``width=200, depth=2, inner_width=50, inner_nonlinearity="relu"``: 100 -> 200 -> 50 -> 26,
    its tuning changed only the first layer's nonlinearity. ``n_features`` and ``n_classes`` come
    from the data (:class:`LangIdClassifier` sets them).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        width: int = 64,
        depth: int = 2,
        nonlinearity: str = "relu",
        dropout: float = 0.0,
        inner_width: int | None = None,
        inner_nonlinearity: str | None = None,
    ):
        super().__init__()
        check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        inner_width = width if inner_width is None else inner_width
        inner_nonlinearity = nonlinearity if inner_nonlinearity is None else inner_nonlinearity
        check_choice("inner_nonlinearity", inner_nonlinearity, NONLINEARITIES)
        if depth < 1 or width < 1 or inner_width < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need depth >= 1, width >= 1, inner_width >= 1, 0 <= dropout < 1; got "
                             f"depth={depth}, width={width}, inner_width={inner_width}, dropout={dropout}")
        sizes = [n_features, width] + [inner_width] * (depth - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.acts = nn.ModuleList([NONLINEARITIES[nonlinearity]()]
                                  + [NONLINEARITIES[inner_nonlinearity]() for _ in range(depth - 1)])
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(sizes[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features) float32 features -> (B, n_classes) logits: each hidden layer, then its
        nonlinearity (``self.acts``, one per layer), then dropout; the output layer has no nonlinearity."""
        ### BEGIN SOLUTION
        for layer, act in zip(self.hidden, self.acts, strict=True):
            x = self.dropout(act(layer(x)))
        return self.output(x)
        ### END SOLUTION


class LangIdClassifier(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` sized from the data, seeded at every ``fit``, batching small
    feature matrices densely.

    It takes every argument of ``NeuralNetClassifier`` (the module, ``criterion``, ``optimizer``, ``lr``,
    ``train_split``, ``callbacks``, ``module__...``) and adds three things: ``module__n_features`` is
    taken from ``X.shape[1]`` and ``module__n_classes`` from ``y`` (integer labels 0..K-1), so no size is
    hard-coded; ``random_state`` seeds torch before the weights are drawn, so each fit (also inside
    GridSearchCV) is reproducible on its own; a sparse ``X`` of at most :data:`DENSE_MAX_FEATURES`
    columns is made dense before skorch batches it (see :func:`densify_small`).
    """

    def __init__(self, module, *, random_state: int = 0, **kwargs: Any):
        kwargs.setdefault("verbose", 0)
        super().__init__(module, **kwargs)
        self.random_state = random_state

    def fit(self, X: np.ndarray | sparse.csr_matrix, y: np.ndarray, **fit_params: Any) -> LangIdClassifier:
        """Set the module's input/output sizes from ``X`` (N, F) and ``y`` (N,), seed, then train."""
        y = np.asarray(y)
        n_classes = len(self.classes) if self.classes is not None else int(y.max()) + 1
        self.set_params(module__n_features=int(X.shape[1]), module__n_classes=n_classes)
        torch.manual_seed(self.random_state)
        return super().fit(X, y, **fit_params)

    def get_dataset(self, X, y=None):
        """skorch's dataset of ``X`` (N, F), made dense first when it is sparse and small."""
        return super().get_dataset(densify_small(X), y)


def to_float32(X) -> np.ndarray | sparse.csr_matrix:
    """Cast a count matrix (N, F) to float32 for torch: dense stays dense, sparse stays CSR."""
    ### BEGIN SOLUTION
    if sparse.issparse(X):
        return sparse.csr_matrix(X, dtype=np.float32)
    return np.asarray(X, dtype=np.float32)
    ### END SOLUTION


def make_vectorizer(
    analyzer: str = "char",
    ngram_range: Sequence[int] = (2, 2),
    max_features: int | None = 100,
    *,
    binary: bool = True,
    tfidf: bool = False,
) -> CountVectorizer:
    """Character (or word) n-gram features: binary counts by default, TF-IDF with ``tfidf=True``.

    The course's baseline is ``make_vectorizer("char", (2, 2), 100)``: does each of the 100 most
    frequent character bigrams occur in the text?
    """
    check_choice("analyzer", analyzer, ANALYZERS)
    lo, hi = ngram_range
    if not 1 <= lo <= hi:
        raise ValueError(f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {tuple(ngram_range)}")
    ### BEGIN SOLUTION
    options = dict(analyzer=analyzer, ngram_range=(lo, hi), max_features=max_features, lowercase=True)
    if tfidf:
        return TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **options)
    return CountVectorizer(binary=binary, dtype=np.float32, **options)
    ### END SOLUTION


VALIDATION_SHARE = 0.2
"""The stratified share of its training texts a validating net holds out (skorch's ``ValidSplit(5)``)."""


def make_net(
    *,
    width: int = 64,
    inner_width: int | None = None,
    depth: int = 2,
    nonlinearity: str = "relu",
    inner_nonlinearity: str | None = None,
    dropout: float = 0.0,
    optimizer: str = "sgd",
    lr: float = 0.1,
    max_epochs: int = 10,
    batch_size: int = 128,
    validation: bool = True,
    patience: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LangIdClassifier:
    """The skorch net: a :class:`LangIdClassifier` (skorch's ``NeuralNetClassifier``) that trains a
    :class:`LangIdMLP` on (N, F) float32 features and integer labels (N,).

    Its arguments, in skorch's names:

    * the module: the class ``LangIdMLP`` itself (skorch builds it at ``fit``, once the sizes are known),
      with ``width``, ``depth``, ``nonlinearity``, ``inner_width``, ``inner_nonlinearity`` and ``dropout``
      routed to its constructor as ``module__width=...`` and so on;
    * ``criterion``: ``nn.CrossEntropyLoss`` (the module returns logits; skorch's default, ``NLLLoss``,
      expects probabilities);
    * ``optimizer``: the class ``OPTIMIZERS[optimizer]`` (``torch.optim.SGD`` without momentum, or
      ``torch.optim.Adam``) and ``lr``, its learning rate;
    * ``max_epochs``, ``batch_size``; training batches shuffled every epoch (``iterator_train__shuffle``);
    * ``train_split``: with ``validation``, ``ValidSplit(VALIDATION_SHARE, stratified=True,
      random_state=seed)`` (a stratified 20% held out, as skorch's default ``ValidSplit(5)``, seeded);
      without it ``None`` (train on everything, as inside GridSearchCV, whose folds validate);
    * ``callbacks``: with ``patience``, ``[EarlyStopping(patience=patience)]`` (stop once the validation
      loss has not improved for that many epochs); without it none;
    * ``device`` (as a string) and ``random_state=seed``.

    The course's baseline is ``make_net(**COURSE_NET, lr=0.1, max_epochs=20)``: plain SGD at 0.1.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if patience is not None and not validation:
        raise ValueError(f"patience={patience} needs validation=True: early stopping watches the "
                         "validation loss")
    ### BEGIN SOLUTION
    split = ValidSplit(VALIDATION_SHARE, stratified=True, random_state=seed) if validation else None
    callbacks = [EarlyStopping(patience=patience)] if patience is not None else None
    return LangIdClassifier(
        LangIdMLP,
        module__width=width,
        module__depth=depth,
        module__nonlinearity=nonlinearity,
        module__inner_width=inner_width,
        module__inner_nonlinearity=inner_nonlinearity,
        module__dropout=dropout,
        criterion=nn.CrossEntropyLoss,
        optimizer=OPTIMIZERS[optimizer],
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=split,
        callbacks=callbacks,
        device=str(device),
        random_state=seed,
    )
    ### END SOLUTION


def describe_net(net: NeuralNetClassifier) -> str:
    """One line of a skorch net's training set-up: criterion, optimizer, learning rate, epochs, batch size,
    validation split and early stopping."""
    def name(value: Any) -> str:
        return value.__name__ if isinstance(value, type) else type(value).__name__

    split = net.train_split
    shown = split
    if isinstance(split, ValidSplit):
        shown = f"ValidSplit({split.cv}, stratified={split.stratified})"
    callbacks = [cb[1] if isinstance(cb, tuple) else cb for cb in net.callbacks or []]
    stoppers = ", ".join(f"EarlyStopping(patience={cb.patience})" for cb in callbacks
                         if isinstance(cb, EarlyStopping))
    return (f"criterion {name(net.criterion)}, optimizer {name(net.optimizer)}, lr {net.lr}, max_epochs "
            f"{net.max_epochs}, batch_size {net.batch_size}, train_split {shown}, callbacks [{stoppers}]")


DENSE_MAX_FEATURES = 4096
"""Feature matrices up to this many columns are made dense before training (see :func:`densify_small`)."""


def densify_small(X) -> np.ndarray | sparse.csr_matrix:
    """A sparse (N, F) matrix as a dense array when ``F <= DENSE_MAX_FEATURES``, else unchanged.

    skorch draws mini-batches row by row; from a dense array that is fast, from a sparse matrix
    each row is a slow scipy slice. Small vocabularies (the course's 100 n-grams) fit densely in
    memory; large ones (the strong model's tens of thousands of n-grams) stay sparse.
    """
    if sparse.issparse(X) and X.shape[1] <= DENSE_MAX_FEATURES:
        return X.toarray()
    return X


PIPELINE_STEPS = ("vect", "cast", "net")
"""The names of the pipeline's steps: GridSearchCV reaches each step's parameters as ``vect__...``,
``net__...``."""


def make_pipeline(vectorizer: CountVectorizer, net: LangIdClassifier) -> Pipeline:
    """A scikit-learn ``Pipeline`` that fits and predicts on raw strings: three steps, named as in
    :data:`PIPELINE_STEPS`:

    * ``"vect"``: ``vectorizer`` itself (texts -> (N, F) counts);
    * ``"cast"``: a ``FunctionTransformer`` applying :func:`to_float32` (PyTorch's layers want float32);
    * ``"net"``: ``net`` itself (a :class:`LangIdClassifier`, or any scikit-learn classifier).
    """
    ### BEGIN SOLUTION
    return Pipeline([
        ("vect", vectorizer),
        ("cast", FunctionTransformer(to_float32)),
        ("net", net),
    ])
    ### END SOLUTION
