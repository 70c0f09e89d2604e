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
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from skorch.callbacks import EarlyStopping
from tqdm.auto import tqdm

from course_lib.core.training import accuracy as label_accuracy
from course_lib.core.training import progress_enabled
from course_lib.langid.config import GRID_AXES, LangIdSettings, check_grid
from course_lib.langid.data import LangIdData
from course_lib.langid.model import OPTIMIZERS, make_net, make_pipeline, make_vectorizer, to_float32

BASELINE = dict(width=64, depth=2, nonlinearity="relu", optimizer="sgd", lr=0.1)
"""The course's baseline net: two hidden layers of 64 ReLU units, plain SGD at lr 0.1."""

MANUAL_SETTINGS: list[dict[str, Any]] = [
    dict(name="baseline", **BASELINE),
    dict(name="wider + tanh", **{**BASELINE, "width": 256, "nonlinearity": "tanh"}),
    dict(name="Adam lr=0.01", **{**BASELINE, "optimizer": "adam", "lr": 0.01}),
    dict(name="Adam lr=0.001", **{**BASELINE, "optimizer": "adam", "lr": 0.001}),
    dict(name="Adam lr=0.001 + early stop", **{**BASELINE, "optimizer": "adam", "lr": 0.001},
         epochs_factor=4, early_stopping=True),
    dict(name="SGD, 4x epochs", **BASELINE, epochs_factor=4),
    dict(name="sigmoid", **{**BASELINE, "nonlinearity": "sigmoid"}),
]
"""Hand tuning as data: each entry is one run (net options, optional epochs factor and early stopping)."""

GRID_KEYS = {
    "analyzer": "vectorizer__analyzer",
    "ngram_range": "vectorizer__ngram_range",
    "max_features": "vectorizer__max_features",
    "nonlinearity": "net__module__nonlinearity",
    "width": "net__module__width",
}
"""Pipeline parameter of each grid axis but ``optimizer`` (which sets ``net__optimizer`` and ``net__lr``)."""

STRONG_NGRAM_RANGE = (1, 4)
"""Character n-gram lengths of the strong model's TF-IDF features."""


def settings_frame(trials: Sequence[Mapping[str, Any]] = MANUAL_SETTINGS) -> pd.DataFrame:
    """The hand-tuning trials as a table, one row per run (blank where a run keeps the default)."""
    return pd.DataFrame(trials).set_index("name").astype(object).fillna("")


@dataclass
class SettingResult:
    """One hand-tuned run: its trial (a :data:`MANUAL_SETTINGS` entry), skorch history and test accuracy."""

    name: str
    trial: dict[str, Any]
    history: list[dict[str, Any]]
    test_accuracy: float
    seconds: float


def run_settings(
    data: LangIdData,
    settings: LangIdSettings,
    trials: Sequence[Mapping[str, Any]] = MANUAL_SETTINGS,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> list[SettingResult]:
    """Train one net per trial on the course's features (binary char bigrams, 100) and test each.

    The vectorizer is fitted once on the training texts; each net holds out a seeded 20% of them
    for its validation curve and trains ``settings.epochs`` epochs in batches of ``settings.batch_size``.
    A trial's ``epochs_factor`` multiplies the epochs; ``early_stopping`` stops when the validation
    loss has not improved for 3 epochs.
    """
    vectorizer = make_vectorizer()
    x_train = to_float32(vectorizer.fit_transform(data.x_train).toarray())
    x_test = to_float32(vectorizer.transform(data.x_test).toarray())
    results = []
    for trial in tqdm(trials, desc="settings", disable=not progress_enabled()):
        options = {k: v for k, v in trial.items() if k not in ("name", "epochs_factor", "early_stopping")}
        callbacks = [EarlyStopping(patience=3)] if trial.get("early_stopping") else None
        net = make_net(**options, max_epochs=settings.epochs * trial.get("epochs_factor", 1),
                       batch_size=settings.batch_size, callbacks=callbacks, device=device, seed=seed)
        started = time.perf_counter()
        net.fit(x_train, data.y_train)
        test_accuracy = label_accuracy(net.predict(x_test), data.y_test)
        history = [{k: e[k] for k in ("epoch", "train_loss", "valid_loss", "valid_acc")} for e in net.history]
        results.append(SettingResult(trial["name"], dict(trial), history, test_accuracy,
                                     time.perf_counter() - started))
    return results


def settings_table(results: Sequence[SettingResult]) -> pd.DataFrame:
    """One row per run: settings, epochs run, best validation accuracy, test accuracy, seconds."""
    rows = []
    for r in results:
        s = r.trial
        rows.append({
            "run": r.name, "width": s["width"], "nonlinearity": s["nonlinearity"],
            "optimizer": s["optimizer"], "lr": s["lr"], "epochs": len(r.history),
            "best valid acc": round(max(e["valid_acc"] for e in r.history), 3),
            "test acc": round(r.test_accuracy, 3), "time": f"{r.seconds:.1f} s",
        })
    return pd.DataFrame(rows).set_index("run")


def param_grid(grid: Mapping[str, Any]) -> list[dict[str, list]]:
    """Turn a grid (the ``grid`` knob) into GridSearchCV's ``param_grid`` (a list of dicts).

    ``grid`` maps ``analyzer``, ``ngram_range``, ``max_features``, ``nonlinearity`` and ``width`` to
    lists of values, and ``optimizer`` to ``{name: [learning rates]}`` (SGD and Adam need different
    rates, so each optimizer gets its own sub-grid; no optimizer means SGD at lr 0.1).
    """
    check_grid(grid)
    shared = {GRID_KEYS[k]: [tuple(v) if k == "ngram_range" else v for v in values]
              for k, values in grid.items() if k != "optimizer"}
    optimizers = grid.get("optimizer", {"sgd": [0.1]})
    return [{**shared, "net__optimizer": [OPTIMIZERS[name]], "net__lr": list(lrs)}
            for name, lrs in optimizers.items()]


def grid_size(grid: Mapping[str, Any]) -> int:
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
    data: LangIdData, settings: LangIdSettings, *, device: str | torch.device = "cpu", seed: int = 0
) -> GridResult:
    """GridSearchCV of ``settings.grid`` over the whole pipeline (vectorizer, cast, net) with seeded
    stratified folds (``settings.cv_folds``, ``settings.n_jobs`` parallel fits).

    The nets train on each fold's full training part (no inner validation split) for
    ``settings.grid_epochs`` epochs. ``settings.grid_max_train`` cross-validates on a seeded stratified
    subset of that many training texts (a big grid stays affordable); the best setting is then
    refitted on all training texts. A fit that fails (also in a parallel worker) stops the search with
    ``RuntimeError`` naming the grid and the original error (never a NaN score).
    """
    pipeline = make_pipeline(make_vectorizer(), make_net(max_epochs=settings.grid_epochs,
                                                         batch_size=settings.batch_size, validation=False,
                                                         device=device, seed=seed))
    folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(pipeline, param_grid(settings.grid), cv=folds, scoring="accuracy",
                          n_jobs=settings.n_jobs, refit=False, error_score="raise")
    x_cv, y_cv = data.x_train, data.y_train
    max_train = settings.grid_max_train
    if max_train is not None and max_train < len(x_cv):
        x_cv, _, y_cv, _ = train_test_split(x_cv, y_cv, train_size=max_train, stratify=y_cv,
                                            random_state=seed)
    try:
        search.fit(x_cv, y_cv)
    except Exception as err:  # error_score="raise": a failed fit (also in a worker process) stops the search
        raise RuntimeError(f"GridSearchCV of grid {settings.grid} ({settings.cv_folds} folds, n_jobs="
                           f"{settings.n_jobs}) failed: {type(err).__name__}: {err}") from err
    best = clone(pipeline).set_params(**search.best_params_).fit(data.x_train, data.y_train)
    return GridResult(search, best, len(x_cv))


def readable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """GridSearchCV's ``best_params_`` with short names (in grid order) and optimizer classes as names."""
    short = {v: k for k, v in GRID_KEYS.items()} | {"net__optimizer": "optimizer", "net__lr": "lr"}
    names = {cls: name for name, cls in OPTIMIZERS.items()}
    readable = {short.get(k, k): names.get(v, v) if k == "net__optimizer" else v for k, v in params.items()}
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


def strong_vectorizer(settings: LangIdSettings) -> CountVectorizer:
    """TF-IDF over character 1-4 grams within word boundaries, ``settings.strong_features`` of them."""
    return make_vectorizer("char_wb", STRONG_NGRAM_RANGE, settings.strong_features, tfidf=True)


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
    pipeline = Pipeline([("vectorizer", strong_vectorizer(settings)),
                         ("svm", LinearSVC(C=1.0, random_state=seed))])
    return pipeline.fit(data.x_train, data.y_train)


def accuracy(model: Any, texts: Sequence[str], labels: np.ndarray) -> float:
    """Share of ``texts`` whose class predicted by ``model`` equals ``labels`` (N,)."""
    return label_accuracy(np.asarray(model.predict(list(texts))), np.asarray(labels))
