"""The HTML report reads offline: opened in headless Chromium with every network request refused, it
lists every notebook, its figures load, and its formulas are rendered by the bundled MathJax."""

from __future__ import annotations

import os
import shutil

import pytest

from course_lib.instructor import cli
from course_lib.instructor.report import browse_report


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return found


@pytest.mark.notebook  # slow: executes notebooks and starts a browser
def test_report_renders_offline_in_chromium(fake_workbook, tmp_path):
    chromium = _chromium()
    build = fake_workbook / "build"
    cli.run_all("smoke", ["91", "92"], "cpu", build)
    shot = tmp_path / "report.png"
    facts = browse_report(build / "index.html", chromium=chromium, screenshot=shot)
    assert [s.split(":")[0] for s in facts["sections"]] == ["91_toy", "92_bad"]
    assert facts["images"] >= 1 and facts["images_loaded"]
    page = facts["pages"]["91_toy.html"]
    assert page["mathjax"] and page["formulas"] >= 2 and page["raw_tex"] == 0, page
    assert shot.stat().st_size > 10_000
    assert (build / "mathjax" / "MathJax.js").exists()


def test_a_missing_chromium_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="chromium='no-such-chromium'.*apt install chromium"):
        browse_report(tmp_path / "index.html", chromium="no-such-chromium")
