"""The checks of assignment 01's skorch exercises (``tests/langid/checks.py``) reject wrong but runnable
answers, each with a message that names what was expected. Each wrong answer is a written answer with one
mistake put in (a setting dropped or changed, a step left out, a parameter routed wrongly); until the
exercise is written, its wrong answers are skipped."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import FunctionType

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.dataset import ValidSplit
from torch import nn

from course_lib.langid import experiments, model
from tests.langid import checks


def written(call: Callable[[], object]) -> None:
    """Skip the test while ``call`` (an exercise) still raises ``NotImplementedError``."""
    try:
        call()
    except NotImplementedError:
        pytest.skip("the exercise is not written yet")


def assert_check_fails(check: Callable[..., None], wrong, *, match: str) -> None:
    """``check(wrong)`` raises an ``AssertionError`` whose message matches ``match`` and says what was
    expected."""
    with pytest.raises(AssertionError) as caught:
        check(wrong)
    message = str(caught.value)
    assert re.search(match, message), f"the message does not say {match!r}:\n{message}"
    assert "expected" in message, message


def test_the_checks_pass_the_library():
    written(model.make_net)
    written(lambda: model.make_pipeline(CountVectorizer(), checks.Recorder()))
    written(lambda: experiments.param_grid("course"))
    checks.check_make_net(model.make_net)
    checks.check_make_pipeline(model.make_pipeline)
    checks.check_param_grid(experiments.param_grid)


# ------------------------------------------------------------------------------------------------ the net
def _net_with(**changes) -> Callable[..., object]:
    """``make_net`` with ``changes`` set on the net it returns (a value may be a function of its
    arguments)."""
    def wrong(**kwargs):
        net = model.make_net(**kwargs)
        return net.set_params(**{k: v(kwargs) if isinstance(v, FunctionType) else v
                                 for k, v in changes.items()})
    return wrong


@pytest.mark.parametrize(("changes", "match"), [
    ({"criterion": nn.NLLLoss}, r"expected criterion nn\.CrossEntropyLoss .* got NLLLoss \(skorch's default"),
    ({"lr": 0.01}, r"expected lr 0\.1 \(the lr argument.*got lr 0\.01"),
    ({"lr": 0.01, "optimizer__lr": lambda kw: kw.get("lr", 0.1)}, r"expected lr 0\.1 .*optimizer__lr 0\.1"),
    ({"optimizer": torch.optim.Adam}, r"expected optimizer SGD .*got Adam"),
    ({"callbacks": None}, r"expected one EarlyStopping\(patience=5\) watching valid_loss"),
    ({"train_split": ValidSplit(5, stratified=True)},
     r"expected train_split ValidSplit\(0\.2, stratified=True, random_state=0\), got ValidSplit\(cv=5"),
    ({"train_split": lambda kw: ValidSplit(0.2, stratified=True, random_state=0)},
     r"expected train_split None with validation=False"),
    ({"module__nonlinearity": "relu"}, r"expected module__nonlinearity='tanh'"),
    ({"iterator_train__shuffle": False}, r"expected iterator_train__shuffle=True"),
    ({"max_epochs": 10}, r"expected max_epochs=20"),
], ids=["default-criterion", "fixed-lr", "lr-on-the-optimizer", "always-adam", "no-early-stopping",
        "unseeded-split", "always-validates", "first-nonlinearity-dropped", "no-shuffle", "fixed-epochs"])
def test_make_net_check_rejects(changes, match):
    written(model.make_net)
    assert_check_fails(checks.check_make_net, _net_with(**changes), match=match)


def test_training_check_rejects_a_net_that_cannot_learn_or_stop():
    written(model.make_net)
    assert_check_fails(checks.check_net_trains, _net_with(criterion=nn.NLLLoss),
                       match=r"expected finite training losses")
    assert_check_fails(checks.check_net_trains, _net_with(callbacks=None),
                       match=r"expected early stopping \(patience 3\) to end a net at lr 1e-9 before epoch")
    assert_check_fails(checks.check_net_trains, _net_with(train_split=None),
                       match=r"expected a validation loss in net.history")


# ------------------------------------------------------------------------------------------- the pipeline
def _pipeline_with(edit: Callable[[list], list]) -> Callable[..., Pipeline]:
    """``make_pipeline`` with its list of (name, step) changed by ``edit``."""
    def wrong(vectorizer, net):
        return Pipeline(edit(list(model.make_pipeline(vectorizer, net).steps)))
    return wrong


@pytest.mark.parametrize(("edit", "match"), [
    (lambda steps: [s for s in steps if s[0] != "cast"],
     r"expected the steps \['vect', 'cast', 'net'\] \(vectorizer, float32 cast, net\), "
     r"got \['vect', 'net'\]"),
    (lambda steps: [("vectorizer", steps[0][1]), *steps[1:]], r"expected the steps .*got \['vectorizer'"),
    (lambda steps: [*steps[:2], ("clf", steps[2][1])], r"expected the steps .*got \['vect', 'cast', 'clf'\]"),
    (lambda steps: [steps[0], ("cast", FunctionTransformer()), steps[2]],
     r"expected the net to receive float32 features \(the 'cast' step\), got int64"),
    (lambda steps: [steps[0], ("cast", FunctionTransformer(lambda x: (x > 0).astype(np.float32))), steps[2]],
     r"expected the net to receive the vectorizer's counts"),
    (lambda steps: [("vect", CountVectorizer()), *steps[1:]],
     r"expected the vectorizer and the net given to make_pipeline"),
], ids=["no-cast", "step-vectorizer", "step-clf", "cast-does-nothing", "cast-binarizes", "new-vectorizer"])
def test_make_pipeline_check_rejects(edit, match):
    written(lambda: model.make_pipeline(CountVectorizer(), checks.Recorder()))
    assert_check_fails(checks.check_make_pipeline, _pipeline_with(edit), match=match)


# ------------------------------------------------------------------------------------------------ the grid
def _grid_with(edit: Callable[[dict], dict]) -> Callable[..., list]:
    """``param_grid`` with each of its dicts changed by ``edit``."""
    def wrong(grid):
        return [edit(dict(d)) for d in experiments.param_grid(grid)]
    return wrong


def _renamed(old: str, new: str) -> Callable[[dict], dict]:
    return lambda d: {k.replace(old, new, 1) if k.startswith(old) else k: v for k, v in d.items()}


def _flat(grid) -> list:
    """One dict for every optimizer at every learning rate (SGD also tries Adam's rates)."""
    dicts = experiments.param_grid(grid)
    merged = {k: v for k, v in dicts[0].items() if k not in ("net__optimizer", "net__lr")}
    merged["net__optimizer"] = [cls for d in dicts for cls in d["net__optimizer"]]
    merged["net__lr"] = sorted({lr for d in dicts for lr in d["net__lr"]})
    return [merged]


@pytest.mark.parametrize(("wrong", "match"), [
    (_grid_with(_renamed("net__module__", "module__")),
     r"missing the expected parameters \[.*'net__module__nonlinearity'.*"
     r"not expected: \[.*'module__nonlinearity'"),
    (_grid_with(_renamed("vect__", "vectorizer__")),
     r"missing the expected parameters \['vect__analyzer', 'vect__max_features'"),
    (_grid_with(_renamed("net__callbacks__EarlyStopping__", "net__callbacks__early_stopping__")),
     r"missing the expected parameters \['net__callbacks__EarlyStopping__patience'\]"),
    (_grid_with(lambda d: {k: v for k, v in d.items() if "patience" not in k}),
     r"parameters \['net__callbacks__EarlyStopping__patience'\]; not expected: \[\]"),
    (_grid_with(lambda d: {**d, "vect__ngram_range": [list(r) for r in d["vect__ngram_range"]]}),
     r"expected vect__ngram_range values of type \['tuple'\], got \['list'\]"),
    (_grid_with(lambda d: {**d, "net__optimizer": [c.__name__.lower() for c in d["net__optimizer"]]}),
     r"expected net__optimizer values of type \['type'\], got \['str'\]"),
    (_flat, r"grid .*expected 6 candidates, got 12; not expected e\.g\. .*SGD"),
    (_grid_with(lambda d: {**d, "net__lr": d["net__lr"][:1]}),
     r"expected 16 candidates, got 8; missing e\.g\."),
], ids=["module-not-routed-through-net", "step-vectorizer", "callback-by-wrong-name", "no-patience",
        "ngram-lists", "optimizer-names", "one-flat-grid", "first-rate-only"])
def test_param_grid_check_rejects(wrong, match):
    written(lambda: experiments.param_grid("course"))
    assert_check_fails(checks.check_param_grid, wrong, match=match)
