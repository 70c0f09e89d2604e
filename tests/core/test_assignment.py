"""core.assignment: an assignment's parameters, profiles and sweeps."""

from __future__ import annotations

import pytest

from course_lib.core import CONTRACT, Sweep

from .toy import SMOKE, ToySettings, compare, toy_assignment


def test_parameters_are_the_contract_then_the_knobs():
    a = toy_assignment()
    assert a.name == "91_toy" and str(a.notebook) == "notebooks/91_toy.ipynb"
    assert a.settings_class is ToySettings
    assert a.parameters == CONTRACT + ToySettings.names()
    assert a.settings("full", {"epochs": 4, "lr": ...}).epochs == 4
    assert a.settings("full", {"size": None}).size is None
    with pytest.raises(ValueError, match=r"profile='huge' is not valid; choose one of \['smoke', 'full'\]"):
        a.settings("huge")


def test_assignment_refuses_mixed_profiles_and_contract_clashes():
    from dataclasses import dataclass

    from course_lib.core import Settings, knob

    @dataclass(frozen=True)
    class Clash(Settings):
        seed: int = knob(default=0, doc="clashes with the contract")

    with pytest.raises(TypeError, match="one Settings class"):
        toy_assignment(profiles={"smoke": SMOKE, "full": Clash(seed=1)})
    with pytest.raises(ValueError, match=r"clash with the notebook contract"):
        toy_assignment(profiles={"smoke": Clash(seed=1)})


def test_sweep_configs_need_distinct_ids_and_valid_knobs():
    with pytest.raises(ValueError, match="distinct exp_id"):
        Sweep("bad", ({"exp_id": "a"}, {"exp_id": "a"}), compare)
    with pytest.raises(ValueError, match=r"epochs=0 is not valid"):
        toy_assignment(sweeps={"bad": Sweep("bad", ({"exp_id": "a", "epochs": 0},), compare)})
