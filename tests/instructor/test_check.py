"""``check(name)`` in the instructor's checkout (the solutions pass) and in a release (a stub fails with
NotImplementedError, a wrong answer with the expected value; a written exercise passes; a syntax error
is named with its file and line); its output holds no path and no timing; unknown names list the
valid ones."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.core.check import ROOT, CheckResult, Outcome, exercises_by_name, run_exercise_tests
from course_lib.instructor.release import make_release

from .student import solve


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("check") / "release"
    make_release(dest)
    return dest


def _stable(text: str, root: Path) -> None:
    assert str(root) not in text and not re.search(r"\d+\.\d+ ?s\b|seconds", text), text


def test_check_prints_each_test_and_returns_the_summary(capsys):
    from course_lib import check

    result = check("pool_forward")
    printed = capsys.readouterr().out
    assert printed == "ok    test_pool_forward_reference[pool_forward]\n"
    assert result.passed and (result.n_passed, result.n_total) == (1, 1)
    assert repr(result) == "pool_forward: 1 of 1 tests pass"


def test_solutions_pass_the_checks_of_methods_too():
    result = run_exercise_tests("DynamicPointingDecoder.forward")
    assert result.passed and result.n_total >= 2, result.report()
    assert {t.name for t in run_exercise_tests("HighwayMaxout.forward").tests} == {
        "test_highway_maxout_matches_its_equations"}


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown exercise 'zero_padd'; choose one of \[.*'zero_pad'.*"
                                         r"'HighwayMaxout.forward'"):
        run_exercise_tests("zero_padd")


def test_every_exercise_is_checkable_by_its_name():
    names = list(exercises_by_name())
    assert len(names) == len(set(names)) and "LangIdMLP.forward" in names and "keep_mask" in names


def test_summary_counts_skips_apart():
    result = CheckResult("f", (Outcome("test_a", "passed"), Outcome("test_b", "skipped", "no data")))
    assert result.passed and repr(result) == "f: 1 of 2 tests pass (1 skipped)"
    failed = CheckResult("f", (Outcome("test_a", "passed"), Outcome("test_b", "failed", "E1\nE2")))
    assert not failed.passed and failed.report() == "ok    test_a\nFAIL  test_b\n        E1\n        E2"
    assert not CheckResult("f", (Outcome("test_a", "skipped"),)).passed


def test_in_the_release_a_stub_fails_and_a_written_exercise_passes(release):
    result = run_exercise_tests("zero_pad", release)
    assert not result.passed and repr(result) == "zero_pad: 0 of 1 tests pass"
    assert result.report() == ("FAIL  test_zero_pad_reference\n"
                               "        NotImplementedError: exercise: write your solution here")
    _, exercise = exercises_by_name(release)["zero_pad"]
    copy = release.parent / "solved"
    shutil.copytree(release, copy)
    solve(copy, exercise)
    assert run_exercise_tests("zero_pad", copy).passed


def test_a_wrong_answer_shows_the_expected_value_and_a_syntax_error_its_line(release, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(release, copy)
    module = copy / "course_lib" / "cnn" / "numpy_conv.py"
    stub = 'raise NotImplementedError("exercise: write your solution here")'
    text = module.read_text()
    assert text.count(stub) == 11
    module.write_text(text.replace(stub, "return 0.0", 3))  # conv_param_count, zero_pad, conv_single_step
    wrong = run_exercise_tests("conv_single_step", copy)
    assert not wrong.passed and wrong.tests[0].outcome == "failed"
    message = wrong.tests[0].message
    assert "Not equal to tolerance" in message and "DESIRED: array(-6.999089)" in message, message
    _stable(wrong.report(), copy)
    module.write_text(text.replace(stub, "return x +", 1))
    with pytest.raises(SyntaxError, match=r"^course_lib/cnn/numpy_conv.py:82: invalid syntax: return x \+ "):
        run_exercise_tests("conv_single_step", copy)


def test_tests_outside_the_workbook_are_named(tmp_path):
    (tmp_path / "course_lib").mkdir()
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(ROOT / "course_lib" / "cnn", tmp_path / "course_lib" / "cnn")
    with pytest.raises(FileNotFoundError, match=r"'zero_pad' are not in .*tests/cnn/test_numpy_conv"):
        run_exercise_tests("zero_pad", tmp_path)


def test_the_terminal_route_selects_the_same_tests():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval",
               "tests/cnn/test_numpy_conv.py"]
    done = subprocess.run([*command, "--exercise", "pool_forward"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "1 passed, 37 deselected" in done.stdout, done.stdout[-2000:]
    done = subprocess.run([*command, "--exercise", "pool_forwrd"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 4 and "no test here is marked exercise(['pool_forwrd'])" in done.stderr
