"""Every notebook runs headlessly with papermill (smoke profile, CPU) and records its metrics.

The metrics each notebook writes must fall in the ranges its entry in course_lib/assignments.py
expects for the smoke profile. (nbval, in the same pytest run, re-executes the committed notebooks
and compares their outputs.)
"""

from __future__ import annotations

import pytest

from course_lib.assignments import ASSIGNMENTS
from course_lib.runs import read_metrics
from course_lib.workbook import execute


@pytest.mark.notebook
@pytest.mark.parametrize("key", sorted(ASSIGNMENTS))
def test_notebook_smoke_metrics(key, tmp_path):
    a = ASSIGNMENTS[key]
    out = tmp_path / a.name
    execute(a, out / f"{a.name}.ipynb",
            {"profile": "smoke", "device": "cpu", "output_dir": str(out), "seed": 0})
    metrics = read_metrics(out)
    expected = a.expected["smoke"]
    assert expected, f"{a.name} declares no expected smoke metrics"
    for name, (lo, hi) in expected.items():
        assert name in metrics, f"{a.name}: metrics.json lacks {name!r}; has {sorted(metrics)}"
        assert lo <= metrics[name] <= hi, f"{a.name}: {name}={metrics[name]} not in [{lo}, {hi}]"
    assert (out / "run_record.json").exists()
    assert list(out.glob("*.png")), f"{a.name} saved no figure"
