"""core.settings: knobs declared once, every value checked (type, range, choices) with its name."""

from __future__ import annotations

import pytest

from course_lib.core.settings import check_choice

from .toy import FULL, SMOKE, ToySettings


def test_profiles_are_checked_instances():
    assert SMOKE.widths == (4, 8) and FULL.size is None
    assert ToySettings.names()[:3] == ("exp_id", "epochs", "lr")
    assert [row[0] for row in ToySettings.describe()] == list(ToySettings.names())


def test_override_keeps_unset_values_and_coerces_papermill_values():
    s = SMOKE.override(epochs=5, lr=..., widths=[16, 32], dropout=0, size=None)
    assert (s.epochs, s.lr, s.widths, s.dropout, s.size) == (5, 0.1, (16, 32), 0.0, None)
    assert isinstance(s.dropout, float) and SMOKE.epochs == 2  # the profile is unchanged


def test_defaults_are_declared_once_and_profiles_state_what_differs():
    assert ToySettings.defaults() == FULL and FULL.changes() == {}
    assert SMOKE.changes() == {"epochs": 2, "lr": 0.1, "widths": (4, 8), "optimizer": "adam", "size": 10,
                               "dropout": 0.0, "cpu_threads": 1}
    assert SMOKE.override(epochs=9).changes().get("epochs") is None


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("values, error, message", [
    ({"epochs": 0}, ValueError, r"epochs=0 is not valid; it must be >= 1"),
    ({"lr": 0}, ValueError, r"lr=0.0 is not valid; it must be > 0"),
    ({"widths": [8, 0]}, ValueError, r"widths=\(8, 0\) is not valid; it must be >= 1"),
    ({"optimizer": "rmsprop"}, ValueError,
     r"optimizer='rmsprop' is not valid; choose one of \['adam', 'sgd'\]"),
    ({"dropout": 0.9}, ValueError, r"dropout=0.9 is not valid; it must be < 0.9"),
    ({"epochs": 1.5}, TypeError, r"epochs=1.5 has the wrong type; expected an int"),
    ({"epochs": True}, TypeError, r"epochs=True has the wrong type"),
    ({"size": "all"}, TypeError, r"size='all' has the wrong type; expected int \| None"),
    ({"widths": 8}, TypeError, r"widths=8 has the wrong type; expected a list or tuple"),
    ({"optimizer": "sgd", "lr": 2.0}, ValueError, r"lr=2.0 is too large for optimizer='sgd'"),
    ({"hidden": 8}, ValueError, r"unknown setting\(s\) \['hidden'\]; valid settings: \['exp_id', 'epochs'"),
    ({"lr": None}, TypeError, r"lr=None has the wrong type; expected a number"),  # lr has no "None" meaning
    ({"lr": float("nan")}, ValueError, r"lr=nan is not valid; give a finite number"),
    ({"dropout": float("inf")}, ValueError, r"dropout=inf is not valid; give a finite number"),
    ({"epochs": ...}, None, None),  # unset: kept
])
def test_bad_values_name_the_knob(values, error, message):
    if error is None:
        assert SMOKE.override(**values) == SMOKE
        return
    with pytest.raises(error, match=message):
        SMOKE.override(**values)


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        SMOKE.epochs = 3


def test_check_choice_names_value_and_choices():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode='c' is not valid; choose one of \['a', 'b'\]"):
        check_choice("mode", "c", ("a", "b"))
