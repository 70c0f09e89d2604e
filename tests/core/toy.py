"""A toy assignment for the core tests: a few knobs of every kind, two profiles, one sweep."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.core import Assignment, Settings, Sweep, knob


@dataclass(frozen=True)
class ToySettings(Settings):
    exp_id: str | None = knob(default=None, doc="name of a sweep's configuration")
    epochs: int = knob(default=9, min=1, doc="training epochs")
    lr: float = knob(default=0.01, min=0.0, min_inclusive=False, doc="learning rate")
    widths: tuple[int, ...] = knob(default=(64, 128), min=1, doc="layer widths")
    optimizer: str = knob(default="sgd", choices=("adam", "sgd"), doc="optimizer")
    size: int | None = knob(default=None, min=1, doc="examples (None: all)")
    dropout: float = knob(default=0.5, min=0.0, max=0.9, max_inclusive=False, doc="dropout")
    cpu_threads: int | None = knob(default=None, min=1, doc="torch CPU threads")

    def check(self) -> None:
        if self.optimizer == "sgd" and self.lr > 1:
            raise ValueError(f"lr={self.lr} is too large for optimizer='sgd' (at most 1)")


FULL = ToySettings()
SMOKE = ToySettings(epochs=2, lr=0.1, widths=(4, 8), optimizer="adam", size=10, dropout=0.0, cpu_threads=1)


def compare(folders: list[Path], out_dir: Path) -> list[str]:
    """The toy comparison: the finished exp_ids, also written to ``out_dir/table.txt``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in folders]
    (out_dir / "table.txt").write_text(" ".join(names))
    return names


SWEEP = Sweep("toy", ({"exp_id": "a", "lr": 0.5}, {"exp_id": "b", "optimizer": "sgd"},
                      {"exp_id": "c", "epochs": 3}), compare)


def toy_assignment(**changes: Any) -> Assignment:
    """The toy assignment (id 91), with ``changes`` to its fields."""
    fields = dict(id="91", slug="toy", title="Toy", datasets=(), profiles={"smoke": SMOKE, "full": FULL},
                  expected={"smoke": {"score": (0.5, 1.0)}}, headline=("score",), sweeps={"toy": SWEEP})
    return Assignment(**{**fields, **changes})
