"""The assignment's experiments: hand-tuned settings as one table, GridSearchCV, and the strong model."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, StratifiedShuffleSplit, train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

from course_lib.core.training import accuracy as label_accuracy
from course_lib.core.training import progress_enabled
from course_lib.langid.config import LangIdSettings
from course_lib.langid.data import LangIdData
from course_lib.langid.grids import GRID_AXES, resolve_grid
from course_lib.langid.model import (
    OPTIMIZERS,
    VALIDATION_SHARE,
    make_net,
    make_pipeline,
    make_vectorizer,
    to_float32,
)

COURSE_GRID_EPOCHS = 20
"""Epochs of each fit in the course's grid search (before ``epoch_scale``)."""


def scaled_epochs(epochs: int, scale: float) -> int:
    """``epochs`` times ``scale``, rounded, at least 1 (the course's epoch counts under ``epoch_scale``)."""
    return max(1, round(epochs * scale))


COURSE_NET = dict(width=200, depth=2, inner_width=50, nonlinearity="relu", inner_nonlinearity="relu")
"""The course's network: 100 features -> 200 units -> 50 ReLU units -> one logit per language."""

BASELINE = dict(**COURSE_NET, optimizer="sgd", lr=0.1, epochs=20, patience=None)
"""The course's baseline run: :data:`COURSE_NET`, plain SGD at lr 0.1, 20 epochs, no early stopping."""

_TRIAL_1 = {**BASELINE, "width": 300, "nonlinearity": "tanh", "optimizer": "adam", "lr": 0.01}

MANUAL_SETTINGS: list[dict[str, Any]] = [
    dict(name="baseline", **BASELINE),
    dict(name="1: 300 tanh, Adam 0.01", **_TRIAL_1),
    dict(name="2: Adam 0.005, early stop", **{**_TRIAL_1, "lr": 0.005, "patience": 5}),
    dict(name="3: SGD 0.005, 200 ep, early stop",
         **{**_TRIAL_1, "optimizer": "sgd", "lr": 0.005, "epochs": 200, "patience": 20}),
    dict(name="4: sigmoid, Adam 0.01", **{**_TRIAL_1, "nonlinearity": "sigmoid"}),
]
"""The course's baseline and its four hand-tuning trials, as data. Each trial starts from the one
before: (1) 300 first-layer units, tanh, Adam at lr 0.01; (2) lr 0.005 and early stopping
(patience 5); (3) SGD at lr 0.005 for up to 200 epochs (patience 20); (4) trial 1 with sigmoid.
``epochs`` are the course's counts (``epoch_scale`` multiplies them); ``patience`` ``None`` means no
early stopping. Only the first hidden layer's nonlinearity changes: the 50-unit layer stays ReLU."""

TRIAL_KEYS = ("width", "nonlinearity", "optimizer", "lr", "epochs", "patience")
"""The columns of the hand-tuning tables (the rest of :data:`COURSE_NET` is the same in every trial)."""

STRONG_NGRAM_RANGE = (1, 4)
"""Character n-gram lengths of the strong model's TF-IDF features."""


def settings_frame(trials: Sequence[Mapping[str, Any]] = MANUAL_SETTINGS) -> pd.DataFrame:
    """The hand-tuning trials as a table, one row per run (``patience`` blank: no early stopping)."""
    rows = [{"name": t["name"], **{k: "" if t.get(k) is None else t[k] for k in TRIAL_KEYS}} for t in trials]
    return pd.DataFrame(rows).set_index("name")


def trivial_baselines(data: LangIdData) -> dict[str, float]:
    """Test accuracy of always answering the most frequent training language (``majority``) and of
    guessing uniformly among the languages (``chance``, the expected accuracy 1/K)."""
    majority = int(np.bincount(data.y_train, minlength=len(data.languages)).argmax())
    return {"majority": label_accuracy(np.full(len(data.y_test), majority), data.y_test),
            "chance": 1.0 / len(data.languages)}


@dataclass
class SettingResult:
    """One hand-tuned run: its trial (a :data:`MANUAL_SETTINGS` entry), skorch history, accuracies."""

    name: str
    trial: dict[str, Any]
    history: list[dict[str, Any]]
    train_accuracy: float
    test_accuracy: float
    seconds: float
    max_epochs: int
    n_fit: int
    n_valid: int


def run_settings(
    data: LangIdData,
    settings: LangIdSettings,
    trials: Sequence[Mapping[str, Any]] = MANUAL_SETTINGS,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> list[SettingResult]:
    """Train one net per trial on the course's features (binary char bigrams, 100) and score each.

    The vectorizer is fitted once on the training texts; each net holds out a seeded, stratified 20%
    of them for its validation curve (and early stopping) and trains on the rest, for the trial's
    ``epochs`` times ``settings.epoch_scale`` (see :func:`scaled_epochs`)
    in batches of ``settings.batch_size``. A trial's ``patience`` (``None``: none) stops training when
    the validation loss has not improved for that many epochs; the last weights are kept, as skorch
    does by default. Training accuracy is measured on all training texts, test accuracy on the test set.
    """
    vectorizer = make_vectorizer()
    x_train = to_float32(vectorizer.fit_transform(data.x_train).toarray())
    x_test = to_float32(vectorizer.transform(data.x_test).toarray())
    results = []
    for trial in tqdm(trials, desc="settings", disable=not progress_enabled()):
        options = {k: v for k, v in trial.items() if k not in ("name", "epochs")}
        max_epochs = scaled_epochs(trial["epochs"], settings.epoch_scale)
        net = make_net(**options, max_epochs=max_epochs, batch_size=settings.batch_size, device=device,
                       seed=seed)
        started = time.perf_counter()
        net.fit(x_train, data.y_train)
        seconds = time.perf_counter() - started
        history = [{k: e[k] for k in ("epoch", "train_loss", "valid_loss", "valid_acc")}
                   | {"batch_loss": [b["train_loss"] for b in e["batches"] if "train_loss" in b]}
                   for e in net.history]
        n_fit = sum(b.get("train_batch_size", 0) for b in net.history[0]["batches"])
        results.append(SettingResult(
            trial["name"], dict(trial), history, label_accuracy(net.predict(x_train), data.y_train),
            label_accuracy(net.predict(x_test), data.y_test), seconds, max_epochs, n_fit,
            len(data.y_train) - n_fit))
    return results


def settings_table(results: Sequence[SettingResult]) -> pd.DataFrame:
    """One row per run: settings, epochs run (of the maximum), best validation accuracy, training and
    test accuracy (no times, so that it prints the same on every run; see ``SettingResult.seconds``)."""
    rows = []
    for r in results:
        s = r.trial
        rows.append({
            "run": r.name, "width": s["width"], "nonlinearity": s["nonlinearity"],
            "optimizer": s["optimizer"], "lr": s["lr"], "patience": s.get("patience") or "",
            "epochs": f"{len(r.history)}/{r.max_epochs}",
            "best valid acc": round(max(e["valid_acc"] for e in r.history), 3),
            "train acc": round(r.train_accuracy, 3), "test acc": round(r.test_accuracy, 3),
        })
    return pd.DataFrame(rows).set_index("run")


def _validation_split(labels: np.ndarray, seed: int) -> None:
    """The stratified split a validating net makes of ``labels`` (raises sklearn's ``ValueError``)."""
    next(StratifiedShuffleSplit(1, test_size=VALIDATION_SHARE, random_state=seed).split(labels, labels))


def check_splits(data: LangIdData, settings: LangIdSettings, *, seed: int = 0) -> None:
    """Refuse, before any training, settings whose splits the training texts cannot fill, naming the
    knobs and the fix: the hand-tuned nets' validation split (20% of the training texts, every language
    in it), and for each grid search its cross-validation texts (``course_grid_max_train`` /
    ``grid_max_train``), each fold holding every language (``course_cv_folds`` / ``cv_folds``) and, for a
    grid that stops early (a ``patience`` axis), each fold's validation split."""
    languages = len(data.languages)
    try:
        _validation_split(data.y_train, seed)
    except ValueError as err:
        raise ValueError(f"max_per_language={settings.max_per_language}: {len(data.y_train)} training texts "
                         f"in {languages} languages are too few for the nets' stratified 20% validation "
                         f"split ({err}); raise max_per_language or choose fewer languages") from None
    searches = (("course_grid", "course_cv_folds", "course_grid_max_train"),
                ("grid", "cv_folds", "grid_max_train"))
    for grid_knob, folds_knob, size_knob in searches:
        folds, size = getattr(settings, folds_knob), getattr(settings, size_knob)
        labels = data.y_train
        fix = f"raise {size_knob}, lower {folds_knob} or raise max_per_language"
        try:
            if size is not None and size < len(labels):
                labels = train_test_split(labels, train_size=size, stratify=labels, random_state=seed)[0]
            least = int(np.bincount(labels, minlength=languages).min())
            if least < folds:
                raise ValueError(f"the least frequent language has {least} of them")
            if "patience" in resolve_grid(getattr(settings, grid_knob)):
                kfold = StratifiedKFold(folds, shuffle=True, random_state=seed)
                for train_part, _ in kfold.split(labels, labels):
                    _validation_split(labels[train_part], seed)
        except ValueError as err:
            raise ValueError(f"{folds_knob}={folds} is not valid with {size_knob}={size}: the grid search's "
                             f"{len(labels)} cross-validation texts must hold every one of the {languages} "
                             f"languages in every fold (and in each fold's validation split when {grid_knob} "
                             f"stops early): {err}; {fix}") from None


def param_grid(grid: Mapping[str, Any] | str) -> list[dict[str, list]]:
    """GridSearchCV's ``param_grid`` for a grid (the ``grid`` and ``course_grid`` knobs): a list of
    dicts, each mapping a parameter of :func:`~course_lib.langid.model.make_pipeline`'s pipeline to the
    list of its values; GridSearchCV tries every combination within each dict.

    A grid maps axes (:data:`~course_lib.langid.grids.GRID_AXES`) to lists of values, and ``optimizer``
    to ``{name: [learning rates]}`` (a name may also be a key of
    :data:`~course_lib.langid.grids.GRIDS`). A pipeline's parameter is named ``<step>__<parameter>``:

    * ``analyzer``, ``ngram_range``, ``max_features``: the vectorizer's (step ``vect``); its
      ``ngram_range`` must be a tuple ``(lo, hi)`` (a grid gives lists);
    * ``nonlinearity``, ``width``, ``inner_width``, ``inner_nonlinearity``: arguments of ``LangIdMLP``,
      which skorch routes from the net (step ``net``) with its ``module__`` prefix;
    * ``patience``: the net's ``EarlyStopping`` callback, which skorch names by its class
      (``callbacks__EarlyStopping__patience``);
    * each optimizer gets a dict of its own: every other axis as above, the net's ``optimizer`` (the
      class ``OPTIMIZERS[name]``, alone in its list) and ``lr`` (that optimizer's learning rates), so that
      SGD and Adam may try different rates. A grid without ``optimizer`` means SGD at lr 0.1.

    The course's grid (:data:`~course_lib.langid.grids.COURSE_GRID`) becomes two dicts (SGD, Adam) of
    8 combinations each: 16 candidates.
    """
    axes = resolve_grid(grid)
    optimizers = axes.pop("optimizer", {"sgd": [0.1]})  # {name: [learning rates]}
    ### BEGIN SOLUTION
    routes = {
        "analyzer": "vect__analyzer",
        "ngram_range": "vect__ngram_range",
        "max_features": "vect__max_features",
        "nonlinearity": "net__module__nonlinearity",
        "width": "net__module__width",
        "inner_width": "net__module__inner_width",
        "inner_nonlinearity": "net__module__inner_nonlinearity",
        "patience": "net__callbacks__EarlyStopping__patience",
    }
    shared = {routes[axis]: [tuple(v) if axis == "ngram_range" else v for v in values]
              for axis, values in axes.items()}
    return [{**shared, "net__optimizer": [OPTIMIZERS[name]], "net__lr": list(lrs)}
            for name, lrs in optimizers.items()]
    ### END SOLUTION


def grid_size(grid: Mapping[str, Any] | str) -> int:
    """Number of parameter combinations in a profile's grid."""
    return sum(int(np.prod([len(v) for v in g.values()])) for g in param_grid(grid))


@dataclass
class GridResult:
    """A finished grid search: CV scores (``search``) and the best pipeline refitted on all training texts."""

    search: GridSearchCV
    best: Pipeline
    n_cv_texts: int

    @property
    def best_params(self) -> dict[str, Any]:
        """The winning setting with short names (see :func:`readable_params`)."""
        return readable_params(self.search.best_params_)

    @property
    def cv_accuracy(self) -> float:
        """Mean CV accuracy of the winning setting."""
        return float(self.search.best_score_)


def grid_search(
    data: LangIdData,
    settings: LangIdSettings,
    *,
    grid: Mapping[str, Any] | str | None = None,
    cv_folds: int | None = None,
    max_train: int | None = -1,
    epochs: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> GridResult:
    """GridSearchCV of a grid over the whole pipeline (vectorizer, cast, net) with seeded stratified
    folds (``settings.n_jobs`` parallel fits).

    ``grid``, ``cv_folds``, ``max_train`` and ``epochs`` default to the extended grid's knobs
    (``settings.grid``, ``cv_folds``, ``grid_max_train``, ``grid_epochs``; see
    :func:`course_grid_search` for the course's). Without a ``patience`` axis the nets train on each
    fold's full training part for ``epochs`` epochs; with one they hold out a seeded 20% of it and
    stop early. ``max_train`` cross-validates on a seeded stratified subset of that many training
    texts (``None``: all), so a big grid stays affordable; the best setting is then refitted on all
    training texts. A fit that fails (also in a parallel worker) stops the search with
    ``RuntimeError`` naming the grid and the original error (never a NaN score).
    """
    grid = resolve_grid(settings.grid if grid is None else grid)
    cv_folds = settings.cv_folds if cv_folds is None else cv_folds
    max_train = settings.grid_max_train if max_train == -1 else max_train
    epochs = settings.grid_epochs if epochs is None else epochs
    early = "patience" in grid
    net = make_net(max_epochs=epochs, batch_size=settings.batch_size, validation=early,
                   patience=5 if early else None, device=device, seed=seed)
    pipeline = make_pipeline(make_vectorizer(), net)
    folds = StratifiedKFold(cv_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(pipeline, param_grid(grid), cv=folds, scoring="accuracy",
                          n_jobs=settings.n_jobs, refit=False, error_score="raise")
    x_cv, y_cv = data.x_train, data.y_train
    if max_train is not None and max_train < len(x_cv):
        x_cv, _, y_cv, _ = train_test_split(x_cv, y_cv, train_size=max_train, stratify=y_cv,
                                            random_state=seed)
    try:
        search.fit(x_cv, y_cv)
    except Exception as err:  # error_score="raise": a failed fit (also in a worker process) stops the search
        raise RuntimeError(f"GridSearchCV of grid {grid} ({cv_folds} folds, n_jobs="
                           f"{settings.n_jobs}) failed: {type(err).__name__}: {err}") from err
    best = clone(pipeline).set_params(**search.best_params_).fit(data.x_train, data.y_train)
    return GridResult(search, best, len(x_cv))


def course_grid_search(
    data: LangIdData, settings: LangIdSettings, *, device: str | torch.device = "cpu", seed: int = 0
) -> GridResult:
    """The course's grid search: ``settings.course_grid`` (by default the 16 candidates of
    :data:`~course_lib.langid.grids.COURSE_GRID`), ``settings.course_cv_folds`` folds, 20 epochs
    per fit times ``settings.epoch_scale``, on ``settings.course_grid_max_train`` texts (``None``: all)."""
    return grid_search(data, settings, grid=settings.course_grid, cv_folds=settings.course_cv_folds,
                       max_train=settings.course_grid_max_train,
                       epochs=scaled_epochs(COURSE_GRID_EPOCHS, settings.epoch_scale), device=device,
                       seed=seed)


def readable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """GridSearchCV's ``best_params_`` with short names (the part after the last ``__``, in grid order)
    and optimizer classes as names."""
    names = {cls: name for name, cls in OPTIMIZERS.items()}
    readable = {k.rsplit("__", 1)[-1]: names.get(v, v) if k.endswith("__optimizer") else v
                for k, v in params.items()}
    order = [*GRID_AXES, "lr"]
    return dict(sorted(readable.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def grid_table(search: GridSearchCV, top: int = 10) -> pd.DataFrame:
    """The ``top`` settings by mean CV accuracy (rank, parameters, mean and std over folds)."""
    res = search.cv_results_
    rows = [{"rank": int(r), **readable_params(p), "cv acc": round(float(m), 3), "cv std": round(float(s), 3)}
            for r, p, m, s in zip(res["rank_test_score"], res["params"], res["mean_test_score"],
                                  res["std_test_score"], strict=True)]
    frame = pd.DataFrame(rows).sort_values(["rank", "cv acc"], kind="stable").head(top)
    return frame.set_index("rank")


def strong_vectorizer(settings: LangIdSettings) -> FeatureUnion:
    """Two TF-IDF blocks side by side, the ``settings.strong_features`` most frequent of each: character
    1-4 grams within word boundaries (``"chars"``) and whole words (``"words"``). The words tell apart
    closely related languages that share most of their letter sequences (Russian and Ukrainian, Danish
    and Norwegian Nynorsk): on the notebook's test sentences they remove a fifth of the errors."""
    return FeatureUnion([
        ("chars", make_vectorizer("char_wb", STRONG_NGRAM_RANGE, settings.strong_features, tfidf=True)),
        ("words", make_vectorizer("word", (1, 1), settings.strong_features, tfidf=True)),
    ])


def fit_strong_model(
    data: LangIdData, settings: LangIdSettings, *, width: int = 128, device: str | torch.device = "cpu",
    seed: int = 0,
) -> Pipeline:
    """:func:`strong_vectorizer` features into the same skorch net (one hidden layer of ``width``,
    Adam at lr 0.003, ``settings.strong_epochs`` epochs)."""
    net = make_net(width=width, depth=1, optimizer="adam", lr=0.003, max_epochs=settings.strong_epochs,
                   batch_size=settings.batch_size, device=device, seed=seed)
    return make_pipeline(strong_vectorizer(settings), net).fit(data.x_train, data.y_train)


def fit_linear_model(data: LangIdData, settings: LangIdSettings, *, seed: int = 0) -> Pipeline:
    """The same TF-IDF features into a linear SVM, the classic strong baseline beside the net."""
    pipeline = Pipeline([("vect", strong_vectorizer(settings)),
                         ("svm", LinearSVC(C=1.0, random_state=seed))])
    return pipeline.fit(data.x_train, data.y_train)


def accuracy(model: Any, texts: Sequence[str], labels: np.ndarray) -> float:
    """Share of ``texts`` whose class predicted by ``model`` equals ``labels`` (N,)."""
    return label_accuracy(np.asarray(model.predict(list(texts))), np.asarray(labels))
