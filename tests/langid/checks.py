"""The checks of assignment 01's skorch exercises (the net, the pipeline, the grid), each a function of the
implementation it checks: the public tests run them on the library's functions, and
``test_wrong_answers.py`` runs them on deliberately wrong implementations to show that each is rejected
with a message that names what was expected.

Every check raises ``AssertionError`` on the first thing that is wrong. They build the other pieces they
need themselves (a plain ``CountVectorizer``, a recording classifier, a reference pipeline), so that a
check of one exercise does not depend on another.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from torch import nn

from course_lib.langid.model import PIPELINE_STEPS, LangIdClassifier, LangIdMLP


def _name(value: Any) -> str:
    """A class as its name (``Adam``), anything else as its repr."""
    if isinstance(value, type):
        return value.__name__
    return repr(value)


# ------------------------------------------------------------------------------------------------ the net
def _criterion_ok(criterion: Any) -> bool:
    return criterion is nn.CrossEntropyLoss or isinstance(criterion, nn.CrossEntropyLoss)


def early_stopping(net: Any) -> list[EarlyStopping]:
    callbacks = net.callbacks or []
    found = [cb[1] if isinstance(cb, tuple) else cb for cb in callbacks]
    return [cb for cb in found if isinstance(cb, EarlyStopping)]


def check_net_settings(net: Any, *, module_args: Mapping[str, Any], optimizer: type, lr: float,
                       max_epochs: int, batch_size: int, validation: bool, patience: int | None,
                       seed: int) -> None:
    """``net`` (unfitted) is a :class:`LangIdClassifier` configured as :func:`make_net`'s docstring says."""
    if not isinstance(net, LangIdClassifier):
        raise AssertionError(f"expected a LangIdClassifier (skorch's NeuralNetClassifier sized from the "
                             f"data), got {type(net).__name__}")
    if net.module is not LangIdMLP:
        raise AssertionError(f"expected module LangIdMLP (the class, which skorch builds at fit), got "
                             f"{_name(net.module)}")
    params = net.get_params()
    defaults = inspect.signature(LangIdMLP).parameters
    for arg, value in module_args.items():
        got = params.get(f"module__{arg}", "<not set>")
        if got != value and not (got == "<not set>" and defaults[arg].default == value):
            raise AssertionError(f"expected module__{arg}={value!r} (LangIdMLP's {arg} argument), "
                                 f"got {got!r}")
    if not _criterion_ok(net.criterion):
        hint = " (skorch's default, which expects probabilities)" if net.criterion is nn.NLLLoss else ""
        raise AssertionError(f"expected criterion nn.CrossEntropyLoss (LangIdMLP returns logits), got "
                             f"{_name(net.criterion)}{hint}")
    if net.optimizer is not optimizer:
        raise AssertionError(f"expected optimizer {optimizer.__name__} (the class torch.optim."
                             f"{optimizer.__name__}), got {_name(net.optimizer)}")
    if params.get("optimizer__lr") is not None or net.lr != lr:
        raise AssertionError(f"expected lr {lr} (the lr argument, as the net's lr), got lr {net.lr}"
                             + (f" and optimizer__lr {params['optimizer__lr']}" if "optimizer__lr" in params
                                else ""))
    for what, value in (("max_epochs", max_epochs), ("batch_size", batch_size)):
        if getattr(net, what) != value:
            raise AssertionError(f"expected {what}={value} (the {what} argument), got {getattr(net, what)}")
    if params.get("iterator_train__shuffle") is not True:
        raise AssertionError(f"expected iterator_train__shuffle=True (shuffled training batches), got "
                             f"{params.get('iterator_train__shuffle', '<not set>')!r}")
    split = net.train_split
    if validation:
        wanted = f"ValidSplit(0.2, stratified=True, random_state={seed})"
        if not isinstance(split, ValidSplit):
            raise AssertionError(f"expected train_split {wanted} (a stratified 20% held out), got {split!r}")
        got = (split.cv, split.stratified, split.random_state)
        if got != (0.2, True, seed):
            raise AssertionError(f"expected train_split {wanted}, got ValidSplit(cv={got[0]!r}, stratified="
                                 f"{got[1]!r}, random_state={got[2]!r})")
    elif split is not None:
        raise AssertionError(f"expected train_split None with validation=False (train on everything), "
                             f"got {split!r}")
    stoppers = early_stopping(net)
    if patience is None:
        if stoppers:
            raise AssertionError(f"expected no EarlyStopping without patience, got {stoppers}")
    else:
        got = [(cb.patience, cb.monitor) for cb in stoppers]
        if got != [(patience, "valid_loss")]:
            raise AssertionError(f"expected one EarlyStopping(patience={patience}) watching valid_loss in "
                                 f"callbacks, got {got or net.callbacks!r}")
    if net.random_state != seed:
        raise AssertionError(f"expected random_state={seed} (the seed argument), got {net.random_state!r}")


COURSE_BASELINE = dict(module_args=dict(width=200, depth=2, nonlinearity="relu", inner_width=50,
                                        inner_nonlinearity="relu", dropout=0.0),
                       optimizer=torch.optim.SGD, lr=0.1, max_epochs=20, batch_size=128, validation=True,
                       patience=None, seed=0)
"""What ``make_net(**COURSE_NET, lr=0.1, max_epochs=20)`` must configure: the course's baseline net."""


def check_make_net(make_net: Callable[..., Any]) -> None:
    """The course's baseline, trial 2 (Adam 0.005, early stopping after 5 epochs) and a net that does not
    validate are configured as the contract says."""
    course_net = {k: v for k, v in COURSE_BASELINE["module_args"].items() if k != "dropout"}
    check_net_settings(make_net(**course_net, lr=0.1, max_epochs=20), **COURSE_BASELINE)
    trial = dict(width=300, depth=2, nonlinearity="tanh", inner_width=50, inner_nonlinearity="relu",
                 dropout=0.0)
    net = make_net(**trial, optimizer="adam", lr=0.005, max_epochs=20, batch_size=128, patience=5, seed=0)
    check_net_settings(net, module_args=trial, optimizer=torch.optim.Adam, lr=0.005, max_epochs=20,
                       batch_size=128, validation=True, patience=5, seed=0)
    net = make_net(width=16, depth=1, optimizer="adam", lr=0.003, max_epochs=3, batch_size=32,
                   validation=False, seed=7)
    check_net_settings(net, module_args=dict(width=16, depth=1), optimizer=torch.optim.Adam, lr=0.003,
                       max_epochs=3, batch_size=32, validation=False, patience=None, seed=7)


def blobs(n_per_class: int = 40, n_features: int = 12, n_classes: int = 4, seed: int = 0):
    """Separable float32 data: (N, F) features around one random centre per class, labels (N,) int64."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), n_features))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def check_net_trains(make_net: Callable[..., Any]) -> None:
    """A net from ``make_net`` learns separable blobs (finite losses, validation recorded, training accuracy
    above 0.9), and early stopping ends a net that cannot improve before its last epoch."""
    x, y = blobs()
    net = make_net(width=32, depth=1, optimizer="adam", lr=0.01, max_epochs=15, seed=0).fit(x, y)
    losses = net.history[:, "train_loss"]
    if not np.all(np.isfinite(losses)):
        raise AssertionError(f"expected finite training losses, got {losses[:5]}... (is the criterion "
                             f"nn.CrossEntropyLoss?)")
    if "valid_loss" not in net.history[-1]:
        raise AssertionError("expected a validation loss in net.history (train_split holding out 20%), got "
                             f"the keys {sorted(net.history[-1])}")
    accuracy = float(np.mean(net.predict(x) == y))
    if accuracy < 0.9:
        raise AssertionError(f"expected a training accuracy above 0.9 on separable blobs after 15 epochs of "
                             f"Adam at 0.01, got {accuracy:.3f}")
    stuck = make_net(width=8, depth=1, optimizer="sgd", lr=1e-9, max_epochs=30, patience=3, seed=0).fit(x, y)
    if len(stuck.history) >= 30:
        raise AssertionError(f"expected early stopping (patience 3) to end a net at lr 1e-9 before epoch 30, "
                             f"got {len(stuck.history)} epochs")


# ------------------------------------------------------------------------------------------- the pipeline
class Recorder(ClassifierMixin, BaseEstimator):
    """A classifier that remembers the features it was given (``seen_``) and predicts the first class."""

    def fit(self, X, y):
        self.seen_ = X
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        self.seen_ = X
        return np.full(X.shape[0], self.classes_[0])


TEXTS = ["the cat sat", "der hund lief", "the dog ran", "die katze sass", "a cat and a dog"]
LABELS = np.array([0, 1, 0, 1, 0])


def check_make_pipeline(make_pipeline: Callable[..., Any]) -> None:
    """``make_pipeline(vectorizer, net)`` chains the given vectorizer, a float32 cast and the given net under
    the names ``vect``, ``cast``, ``net``; the net receives float32 features with the vectorizer's values."""
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 2), dtype=np.int64)
    recorder = Recorder()
    pipe = make_pipeline(vectorizer, recorder)
    if not isinstance(pipe, Pipeline):
        raise AssertionError(f"expected a sklearn Pipeline, got {type(pipe).__name__}")
    names = [name for name, _ in pipe.steps]
    if names != list(PIPELINE_STEPS):
        raise AssertionError(f"expected the steps {list(PIPELINE_STEPS)} (vectorizer, float32 cast, net), "
                             f"got {names}")
    if pipe.named_steps["vect"] is not vectorizer or pipe.named_steps["net"] is not recorder:
        raise AssertionError("expected the vectorizer and the net given to make_pipeline as the steps 'vect' "
                             f"and 'net' (the same objects), got {pipe.named_steps['vect']!r} and "
                             f"{pipe.named_steps['net']!r}")
    if not isinstance(pipe.named_steps["cast"], FunctionTransformer):
        raise AssertionError(f"expected the step 'cast' to be a FunctionTransformer(to_float32), got "
                             f"{pipe.named_steps['cast']!r}")
    pipe.fit(TEXTS, LABELS)
    seen = pipe.named_steps["net"].seen_
    counts = vectorizer.transform(TEXTS)
    dtype = getattr(seen, "dtype", type(seen).__name__)
    if dtype != np.float32:
        raise AssertionError(f"expected the net to receive float32 features (the 'cast' step), got {dtype}")
    values = seen.toarray() if sparse.issparse(seen) else np.asarray(seen)
    if values.shape != counts.shape or not np.array_equal(values, counts.toarray()):
        raise AssertionError(f"expected the net to receive the vectorizer's counts {counts.shape} unchanged, "
                             f"got {values.shape} {values[:1].tolist()}")
    pipe.predict(["a cat"])
    if getattr(pipe.named_steps["net"].seen_, "dtype", None) != np.float32:
        raise AssertionError("expected predict to cast to float32 too, got "
                             f"{getattr(pipe.named_steps['net'].seen_, 'dtype', None)}")


# ------------------------------------------------------------------------------------------------ the grid
def reference_pipeline() -> Pipeline:
    """A pipeline of the contract's shape (``vect``, ``cast``, ``net`` with an ``EarlyStopping``), built
    here, on which every parameter of a grid must be settable."""
    net = LangIdClassifier(LangIdMLP, criterion=nn.CrossEntropyLoss, callbacks=[EarlyStopping(patience=5)])
    return Pipeline([("vect", CountVectorizer()), ("cast", FunctionTransformer()), ("net", net)])


def _candidates(param_grid: Any) -> list[dict[str, Any]]:
    try:
        return list(ParameterGrid(param_grid))
    except (TypeError, ValueError) as err:
        raise AssertionError(f"expected a list of dicts {{parameter: [values]}} that GridSearchCV takes, got "
                             f"{param_grid!r} ({err})") from None


def _key(candidate: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in candidate.items()))


def check_param_grid_equals(got: Any, expected: Sequence[Mapping[str, Sequence[Any]]], what: str) -> None:
    """``got`` (a ``param_grid``) yields exactly the candidates of ``expected``, and each is settable on
    :func:`reference_pipeline`; else an ``AssertionError`` naming the expected parameter names or values."""
    got_candidates, wanted = _candidates(got), _candidates(expected)
    got_names = sorted(set().union(*map(set, got_candidates))) if got_candidates else []
    wanted_names = sorted(set().union(*map(set, wanted)))
    if got_names != wanted_names:
        missing = [n for n in wanted_names if n not in got_names]
        extra = [n for n in got_names if n not in wanted_names]
        raise AssertionError(f"{what}: missing the expected parameters {missing}; not expected: {extra} "
                             f"(a pipeline parameter is <step>__<parameter>; the steps are "
                             f"{list(PIPELINE_STEPS)})")
    pipe = reference_pipeline()
    for candidate in got_candidates:
        try:
            clone(pipe).set_params(**candidate)
        except ValueError as err:
            raise AssertionError(f"{what}: expected parameters the pipeline takes, got {candidate}: "
                                 f"{err}") from None
    for name in wanted_names:
        kinds = {type(c[name]) for c in got_candidates}
        wanted_kinds = {type(c[name]) for c in wanted}
        if kinds != wanted_kinds:
            raise AssertionError(f"{what}: expected {name} values of type "
                                 f"{sorted(k.__name__ for k in wanted_kinds)}, got "
                                 f"{sorted(k.__name__ for k in kinds)} (e.g. {got_candidates[0][name]!r})")
    got_keys, wanted_keys = {_key(c) for c in got_candidates}, {_key(c) for c in wanted}
    if len(got_candidates) != len(wanted) or got_keys != wanted_keys:
        missing = [c for c in wanted if _key(c) not in got_keys]
        extra = [c for c in got_candidates if _key(c) not in wanted_keys]
        raise AssertionError(f"{what}: expected {len(wanted)} candidates, got {len(got_candidates)}"
                             + (f"; missing e.g. {missing[0]}" if missing else "")
                             + (f"; not expected e.g. {extra[0]}" if extra else ""))


def _optimizer_grid(shared: Mapping[str, list], optimizers: Mapping[type, list]) -> list[dict[str, list]]:
    return [{**shared, "net__optimizer": [cls], "net__lr": list(lrs)} for cls, lrs in optimizers.items()]


COURSE_PARAM_GRID = _optimizer_grid(
    {"vect__analyzer": ["char"], "vect__ngram_range": [(1, 1), (2, 2)], "vect__max_features": [100],
     "net__module__nonlinearity": ["relu", "tanh"], "net__module__width": [300],
     "net__module__inner_width": [50], "net__module__inner_nonlinearity": ["relu"],
     "net__callbacks__EarlyStopping__patience": [5]},
    {torch.optim.SGD: [0.1, 0.01], torch.optim.Adam: [0.1, 0.01]})
"""The course's grid as GridSearchCV takes it (16 candidates), written out by hand."""

RATES_GRID = {"analyzer": ["char_wb"], "ngram_range": [[1, 3]], "width": [64, 128],
              "optimizer": {"sgd": [0.1], "adam": [0.003, 0.001]}}
"""A grid whose optimizers try different learning rates."""
RATES_PARAM_GRID = _optimizer_grid(
    {"vect__analyzer": ["char_wb"], "vect__ngram_range": [(1, 3)], "net__module__width": [64, 128]},
    {torch.optim.SGD: [0.1], torch.optim.Adam: [0.003, 0.001]})
""":data:`RATES_GRID` written out: 2 SGD candidates and 4 Adam ones (never SGD at 0.003)."""


def check_param_grid(param_grid: Callable[[Any], Any]) -> None:
    """The course's grid and a grid with a learning rate list per optimizer, against the same written out."""
    from course_lib.langid.grids import COURSE_GRID

    check_param_grid_equals(param_grid(COURSE_GRID), COURSE_PARAM_GRID, "the course's grid")
    check_param_grid_equals(param_grid("course"), COURSE_PARAM_GRID, "param_grid('course')")
    check_param_grid_equals(param_grid(RATES_GRID), RATES_PARAM_GRID, f"grid {RATES_GRID}")
