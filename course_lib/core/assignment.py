"""What an assignment declares: its notebook, data sets, settings profiles, expected ranges and sweeps.

Each assignment package's ``config`` module builds one :class:`Assignment`; ``course_lib.assignments``
lists the five. The notebook contract's parameters (:data:`CONTRACT`) are the same for every notebook;
the rest of a notebook's parameters are the knobs of the assignment's :class:`Settings` class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.core.io import read_json
from course_lib.core.settings import Settings, check_choice

CONTRACT = ("profile", "device", "data_dir", "download", "output_dir", "seed")
"""Parameters every notebook's ``parameters`` cell holds, before the assignment's knobs."""
METRICS_FILE = "metrics.json"
"""The flat headline numbers a run writes into its output folder."""


def read_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` a run wrote into ``folder`` (``ValueError`` naming the file when malformed)."""
    return read_json(Path(folder) / METRICS_FILE)


@dataclass(frozen=True)
class Sweep:
    """A named grid: configurations (knob values, each with an ``exp_id``) run one per folder,
    ``compare(run_folders, out_dir)``, which builds the comparison from the finished folders alone, and
    ``load(folder)``, which reads a finished folder's results (raising ``OSError``/``ValueError`` when
    they are missing or damaged; the engine then runs that configuration again)."""

    name: str
    configs: tuple[Mapping[str, Any], ...]
    compare: Callable[[list[Path], Path], Any]
    load: Callable[[Path], Any] = read_metrics

    def __post_init__(self) -> None:
        ids = [c.get("exp_id") for c in self.configs]
        if None in ids or len(set(ids)) != len(ids):
            raise ValueError(f"sweep {self.name!r}: every config needs a distinct exp_id, got {ids}")


@dataclass(frozen=True)
class Assignment:
    """One assignment: id ``NN``, notebook slug, data sets, profiles (one :class:`Settings` each),
    expected metric ranges per profile, headline metrics, exercise tests, sweeps and points."""

    id: str
    slug: str
    title: str
    datasets: tuple[str, ...]
    profiles: Mapping[str, Settings]
    expected: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    headline: tuple[str, ...] = ()
    exercise_tests: tuple[str, ...] = ()
    """Test files that check the fenced exercises (the release test runs them on both versions)."""
    sweeps: Mapping[str, Sweep] = field(default_factory=dict)
    points: Mapping[str, float] = field(default_factory=dict)
    """Points of each exercise by name (``"zero_pad"``, ``"HighwayMaxout.forward"``), earned in shares by
    the tests marked ``@pytest.mark.exercise(name)`` (the grader's hidden tests among them)."""

    def __post_init__(self) -> None:
        classes = {type(s) for s in self.profiles.values()}
        if len(classes) != 1:
            raise TypeError(f"{self.name}: every profile must be an instance of one Settings class")
        clash = set(CONTRACT) & set(self.knobs)
        if clash:
            raise ValueError(f"{self.name}: knobs {sorted(clash)} clash with the notebook contract")
        if self.sweeps and "exp_id" not in self.knobs:
            raise ValueError(f"{self.name}: an assignment with sweeps needs an exp_id knob (the run's name)")
        bad = {k: v for k, v in self.points.items()
               if not (isinstance(k, str) and k and type(v) in (int, float) and v > 0)}
        if bad:
            raise ValueError(f"{self.name}: points {bad} are not valid; give each exercise name a number > 0")
        for sweep in self.sweeps.values():  # every configuration is a valid set of knob values
            for config in sweep.configs:
                for profile in self.profiles.values():
                    profile.override(**config)

    @property
    def name(self) -> str:
        """``NN_slug``, the notebook's stem and its build folder name."""
        return f"{self.id}_{self.slug}"

    @property
    def notebook(self) -> Path:
        """Notebook path relative to the repository root."""
        return Path("notebooks") / f"{self.name}.ipynb"

    @property
    def settings_class(self) -> type[Settings]:
        """The :class:`Settings` subclass of this assignment."""
        return type(next(iter(self.profiles.values())))

    @property
    def package(self) -> str:
        """The assignment's package, e.g. ``"course_lib.cnn"`` (where its settings class lives)."""
        return self.settings_class.__module__.rpartition(".")[0]

    @property
    def knobs(self) -> tuple[str, ...]:
        """The assignment's own notebook parameters (its settings' field names)."""
        return self.settings_class.names()

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every valid notebook parameter: the contract, then the knobs."""
        return CONTRACT + self.knobs

    def check_points(self, exercises: list[str]) -> None:
        """Raise ``ValueError`` unless ``points`` names each of ``exercises`` (the fenced functions of the
        package) and nothing else, listing the missing and the unknown names."""
        missing = [name for name in exercises if name not in self.points]
        unknown = sorted(set(self.points) - set(exercises))
        if missing or unknown:
            raise ValueError(f"{self.name}: points= in its config.py must name every exercise once: missing "
                             f"{missing}, unknown {unknown} (the exercises are {sorted(exercises)})")

    def check_profile(self, profile: str) -> str:
        """Return ``profile`` if this assignment has it, else raise listing the valid ones."""
        return check_choice("profile", profile, list(self.profiles))

    def settings(self, profile: str, overrides: Mapping[str, Any] | None = None) -> Settings:
        """The profile's settings with ``overrides`` applied (every value checked; a value ``...`` keeps the
        profile's, ``None`` is a value like any other)."""
        return self.profiles[self.check_profile(profile)].override(**dict(overrides or {}))

    def within(self, profile: str, key: str, value: Any) -> bool | None:
        """Whether ``value`` lies in the ``profile``'s expected range for ``key`` (``None``: no range; not a
        number, NaN included: ``False``)."""
        lo_hi = self.expected.get(profile, {}).get(key)
        if lo_hi is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return lo_hi[0] <= value <= lo_hi[1]
