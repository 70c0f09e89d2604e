"""``run`` fetches each notebook's missing data first (its ``download`` parameter), unless ``--offline``."""

from __future__ import annotations

import nbformat
import pytest

from course_lib.instructor import cli


def _injected(build, name: str = "91_toy") -> str:
    nb = nbformat.read(build / name / f"{name}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    return cell.source


@pytest.mark.parametrize(("flags", "download"), [([], "True"), (["--offline"], "False")])
def test_run_passes_download_unless_offline(fake_workbook, flags, download, capsys):
    build = fake_workbook / "build"
    assert cli.main(["run", "--only", "91", "--device", "cpu", "--build", str(build), *flags]) == 0
    assert f"download = {download}\n" in _injected(build)
