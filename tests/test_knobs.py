"""Every knob of every assignment: declared once with its default, stated by a profile only where it differs,
and a value asked for (``None`` included, whatever its doc says it means) is what the run records, or is
refused naming the knob. NaN and infinities are refused for every number."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import math
import types
import typing
from typing import Any

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.core.io import jsonable
from course_lib.core.settings import Settings

KNOBS = [(key, name) for key, a in sorted(ASSIGNMENTS.items()) for name in a.knobs]


def admits_none(cls: type[Settings], name: str) -> bool:
    tp = typing.get_type_hints(cls)[name]
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def values_to_ask(key: str, name: str) -> list[Any]:
    """``None`` where the knob's type takes it, its default and every profile's value."""
    a = ASSIGNMENTS[key]
    values = [getattr(s, name) for s in (a.settings_class.defaults(), *a.profiles.values())]
    return ([None] if admits_none(a.settings_class, name) else []) + values


@pytest.mark.parametrize("key, name", KNOBS)
def test_every_value_asked_is_recorded_or_refused_naming_the_knob(key, name):
    a = ASSIGNMENTS[key]
    for profile in a.profiles:
        for value in values_to_ask(key, name):
            try:
                recorded = a.settings(profile, {name: value}).to_dict()[name]
            except ValueError as err:  # a cross-setting check: it names the knob asked for
                assert name in str(err), f"{a.name} {profile}: {name}={value!r} refused not naming it: {err}"
                continue
            assert jsonable(recorded) == jsonable(value), f"{a.name} {profile} {name}={value!r}: {recorded!r}"


def test_none_means_what_each_doc_says_or_is_refused():
    """Every knob whose type takes None says in its doc what None means (the walk above sets it); every
    other knob refuses None naming itself and what it takes."""
    for key, name in KNOBS:
        a = ASSIGNMENTS[key]
        if admits_none(a.settings_class, name):
            doc = dict((n, d) for n, _, d in a.settings_class.describe())[name]
            assert "None" in doc, f"{a.name}: {name} takes None but its doc does not say what for: {doc!r}"
        else:
            with pytest.raises(TypeError, match=rf"^{name}=None has the wrong type; expected .+ \(.+\)$"):
                a.settings("smoke", {name: None})


def is_float(key: str, name: str) -> bool:
    hint = typing.get_type_hints(ASSIGNMENTS[key].settings_class)[name]
    return float in (hint, *typing.get_args(hint))


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("key, name", [(key, name) for key, name in KNOBS if is_float(key, name)])
def test_nan_and_infinities_are_refused_naming_the_knob(key, name):
    a = ASSIGNMENTS[key]
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=rf"^{name}=(nan|inf|-inf) is not valid; give a finite number"):
            a.settings("smoke", {name: bad})


def profile_calls(key: str) -> dict[str, list[str]]:
    """The keyword names of each ``NAME = <SettingsClass>(...)`` in the assignment's config module."""
    a = ASSIGNMENTS[key]
    module = importlib.import_module(a.settings_class.__module__)
    calls = {}
    for node in ast.parse(inspect.getsource(module)).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == a.settings_class.__name__):
            calls[node.targets[0].id] = [k.arg for k in node.value.keywords]
    return calls


@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_profiles_state_only_what_differs_from_the_defaults(key):
    a = ASSIGNMENTS[key]
    module = importlib.import_module(a.settings_class.__module__)
    calls = profile_calls(key)
    assert {"SMOKE", "FULL"} <= set(calls), f"{a.name}: profiles not found in {module.__name__}: {calls}"
    assert all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(a.settings_class)), f"{a.name}: a knob without a default"
    for name, stated in calls.items():
        differs = getattr(module, name).changes()
        restated = [k for k in stated if k not in differs]
        assert not restated, f"{a.name}: {name} restates the defaults of {restated}"
