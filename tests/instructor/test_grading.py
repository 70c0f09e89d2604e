"""The grader's parts: points and hidden tests declared for every exercise, hostile archives refused
with the reason, student regions spliced into the instructor's module, what the sandbox lets a run do,
the refusal without a sandbox, and grading through submitit jobs and without a sandbox."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from course_lib.assignments import ASSIGNMENTS, get_assignment
from course_lib.core.exercises import STUB, STUDENT, package_exercises, strip_solutions
from course_lib.core.handin import MAX_ENTRIES
from course_lib.instructor.grading import archive
from course_lib.instructor.grading.archive import ArchiveRejected, read_submission
from course_lib.instructor.grading.grade import SandboxUnavailable, graded_tests, prepare
from course_lib.instructor.grading.sandbox import RUNNER, Limits, Sandbox, run_tests, seccomp_filter
from course_lib.instructor.grading.splice import splice

ROOT = Path(__file__).resolve().parents[2]
B, E = "### BEGIN " + "SOLUTION", "### END " + "SOLUTION"  # split so this file holds no marker
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def test_every_exercise_has_points_and_a_marked_hidden_test(tmp_path):
    tests = []
    for a in ASSIGNMENTS.values():
        a.check_points([e.name for e in package_exercises(ROOT / Path(*a.package.split(".")), ROOT)])
        assert (ROOT / "tests" / a.package.rpartition(".")[2] / "hidden" / "__init__.py").exists(), a.name
        tests += graded_tests(a)
    end = run_tests(ROOT, tests, Limits(), None, tmp_path / "log", collect_only=True)
    errors = [e for e in end.events if e["event"] == "collect_error"]
    assert not errors, (tmp_path / "log").read_text()[-2000:]
    (collected,) = [e["tests"] for e in end.events if e["event"] == "collected"]
    for a in ASSIGNMENTS.values():
        hidden = f"tests/{a.package.rpartition('.')[2]}/hidden/"
        marked = [t["exercise"] for t in collected if t["nodeid"].startswith(hidden)]
        assert None not in marked, f"{a.name}: a hidden test without @pytest.mark.exercise"
        assert set(marked) == set(a.points), a.name


def test_points_are_checked():
    a = get_assignment("02")
    names = list(a.points)
    typo = dataclasses.replace(a, points={**{n: 1 for n in names if n != "zero_pad"}, "typo": 1})
    with pytest.raises(ValueError, match=r"missing \['zero_pad'\], unknown \['typo'\]"):
        typo.check_points(names)
    with pytest.raises(ValueError, match=r"points \{'zero_pad': 0\} are not valid"):
        dataclasses.replace(a, points={"zero_pad": 0})


def _zip(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            z.writestr(info, data)
    return path


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize("entries, reason", [
    ([("../x.py", b"")], "path traversal: the entry '../x.py'"),
    ([("/etc/x", b"")], "path traversal"),
    ([("a\\..\\x", b"")], "path traversal"),
    ([(_info("m.py", 0o120777), b"/etc/passwd")], "link: the entry 'm.py' is a symbolic link"),
    ([(_info("fifo", 0o010644), b"")], "special file"),
    ([(f"f{i}", b"") for i in range(MAX_ENTRIES + 1)], f"too many files: {MAX_ENTRIES + 1} entries"),
    ([("big", b"\0" * (3 * 2**20))], "huge file: the entry 'big' expands to 3.0 MB, over the 2 MB"),
    ([(name, random.Random(name).randbytes(2**20 + 1)) for name in "ab"],
     "zip bomb: the entries expand to 2.0 MB"),
    ([("c", b"\0" * (2**20 + 1))], "zip bomb: the entry 'c' is compressed"),
    ([("m.py", b"1"), ("m.py", b"2")], "repeated entry: 'm.py'"),
])
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_hostile_archives_are_rejected_with_the_reason(tmp_path, monkeypatch, entries, reason):
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 2 * 2**20)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 2 * 2**20)
    with pytest.raises(ArchiveRejected, match=reason.replace("(", r"\(").replace(".", r"\.")):
        read_submission(_zip(tmp_path / "s.zip", entries), {"m.py"})


def test_an_archive_is_read_into_memory_only(tmp_path):
    path = _zip(tmp_path / "s.zip", [("m.py", b"x = 1\n"), ("extra/notes.txt", b"hi")])
    (tmp_path / "t.zip").write_bytes(b"not a zip")
    assert read_submission(path, {"m.py", "n.ipynb"}) == ({"m.py": b"x = 1\n"}, ["extra/notes.txt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zip", "t.zip"]
    with pytest.raises(ArchiveRejected, match="not a zip archive"):
        read_submission(tmp_path / "t.zip", set())


INSTRUCTOR = textwrap.dedent(f"""\
    import math


    def f(x):
        \"\"\"Doc.\"\"\"
        {B}
        return x + 1
        {E}


    class C:
        def g(self, y):
            {B}
            y = y * 2
            {E}
            z = 3
            {B}
            return y + z
            {E}
    """)
RELEASE = strip_solutions(INSTRUCTOR)[0]


def _student(**bodies: str) -> str:
    """The release with the k-th stub replaced by ``bodies['r<k>']``."""
    parts = RELEASE.split(STUB)
    return "".join(p + bodies.get(f"r{k}", STUB) for k, p in enumerate(parts[:-1])) + parts[-1]


def test_splice_puts_the_student_regions_in_place_of_the_solutions():
    student = _student(r0="return x - 1", r1="y = y + 1", r2="return y * z")
    result = splice(INSTRUCTOR, student, "m.py")
    assert result.problems == {} and result.stubs == [] and result.notes == []
    assert result.text == student  # the instructor's lines are the release's: numbered as the student's
    namespace: dict = {}
    exec(result.text, namespace)
    assert namespace["f"](5) == 4 and namespace["C"]().g(2) == 9


def test_splice_gives_zero_to_what_does_not_pair_or_parse():
    student = _student(r0="return x - 1", r2="return y").replace(
        f"        {STUDENT[0]}\n        {STUB}\n        {STUDENT[1]}\n        z = 3", "        z = 3")
    result = splice(INSTRUCTOR, student, "m.py")
    assert list(result.problems) == ["C.g"] and "has 1 '### YOUR CODE BEGINS' region(s), the release has 2" \
        in result.problems["C.g"]
    assert STUB in result.text and "return x - 1" in result.text and "return y\n" not in result.text
    bad = splice(INSTRUCTOR, _student(r0="return (", r1="y = 1", r2="return y"), "m.py")
    assert list(bad.problems) == ["f"] and "does not parse in place" in bad.problems["f"]
    assert "y = 1" in bad.text
    broken = splice(INSTRUCTOR, "def f(:\n", "m.py")
    assert set(broken.problems) == {"f", "C.g"} and "m.py:1: does not parse" in broken.problems["f"]
    missing = splice(INSTRUCTOR, None, "m.py")
    assert missing.problems["C.g"] == "m.py is not in the submission" and missing.text == RELEASE
    unpaired = splice(INSTRUCTOR, RELEASE.replace(STUDENT[1], "", 1), "m.py")
    assert "inside the block opened at line" in unpaired.problems["f"]


def test_splice_notes_and_ignores_changes_outside_the_regions():
    student = _student(r0="return helper(x)").replace("import math\n", "import math\nhelper = abs\n")
    result = splice(INSTRUCTOR, student, "m.py")
    assert result.stubs == ["C.g"] and "helper = abs" not in result.text
    assert len(result.notes) == 1 and "lines outside your YOUR CODE regions" in result.notes[0]
    assert "'+helper = abs'" in result.notes[0]
    assert splice(INSTRUCTOR, RELEASE, "m.py").stubs == ["f", "C.g"]


def test_seccomp_filter_is_eight_byte_instructions():
    program = seccomp_filter("x86_64")
    assert len(program) % 8 == 0 and program != seccomp_filter("aarch64")
    with pytest.raises(ValueError, match=r"not 'mips'"):
        seccomp_filter("mips")


PROBE = textwrap.dedent("""\
    import ctypes, json, os, socket


    def test_probe():
        libc = ctypes.CDLL(None, use_errno=True)
        found = {"uid": os.getuid(), "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                 "unshare": libc.unshare(0x10000000), "unshare_errno": ctypes.get_errno(),
                 "root": sorted(os.listdir("/"))}
        for path in ["/grading/x", "/x", "/usr/x", "/dev/shm/x"]:
            try:
                open(path, "w").close()
                found[path] = "written"
            except OSError as err:
                found[path] = err.errno
        try:
            open("/tmp/big", "wb").write(b"0" * (9 * 2**20))
        except OSError as err:
            found["tmp_full"] = err.errno
        try:
            socket.create_connection(("1.1.1.1", 80), timeout=3)
        except OSError as err:
            found["network"] = err.errno
        found["data"] = open(os.environ["COURSE_DATA_DIR"] + "/x.txt").read()
        found["outside"] = os.path.exists(os.environ["COURSE_DATA_DIR"] + "/../secret.txt")
        raise AssertionError("PROBE " + json.dumps(found))
    """)


@needs_bwrap
def test_the_sandbox_confines_a_run(tmp_path):
    (tmp_path / "work" / "tests").mkdir(parents=True)
    (tmp_path / "work" / "tests" / "test_probe.py").write_text(PROBE)
    shutil.copy2(ROOT / "course_lib/instructor/grading/runner.py", tmp_path / "work" / RUNNER)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.txt").write_text("the data root")
    (tmp_path / "secret.txt").write_text("not for the sandbox")
    sandbox = Sandbox.for_environment([ROOT, tmp_path], data_dir=tmp_path / "data")
    assert sandbox.data_dir == str(tmp_path / "data") and str(ROOT) not in sandbox.read_only
    assert not [p for p in sandbox.read_only if str(tmp_path) in p]
    limits = Limits(test_timeout_s=60, tmp_mb=8, file_mb=64)
    end = run_tests(tmp_path / "work", ["tests/test_probe.py"], limits, sandbox, tmp_path / "log",
                    uid=100_999, data_dir=tmp_path / "data")
    (report,) = [e for e in end.events if e["event"] == "report"]
    found = json.loads(report["message"].rsplit("PROBE ", 1)[1].splitlines()[0])
    assert found["uid"] != 0 and len(found["processes"]) <= 3, found
    assert (found["unshare"], found["unshare_errno"]) == (-1, 1), found  # EPERM from the seccomp filter
    # EACCES or EROFS
    assert all(found[p] in (13, 30) for p in ["/grading/x", "/x", "/usr/x", "/dev/shm/x"]), found
    assert found["tmp_full"] == 28 and found["network"] == 101, found  # ENOSPC, ENETUNREACH
    assert found["data"] == "the data root" and found["outside"] is False, found
    assert "grading" in found["root"] and not {"var", "run", "srv", "boot", "mnt"} & set(found["root"]), found


def test_no_sandbox_means_no_grading_unless_unsafe(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "subs").mkdir()
    with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed.*only with --unsafe"):
        prepare("02", tmp_path / "subs", tmp_path / "out", Limits())
    assert not (tmp_path / "out" / ".grading" / "base").exists()


def _class_of_two(folder: Path) -> None:
    """A correct submission and a stub one of assignment 02, from the release's files."""
    from tests.instructor.test_grading_class import ClassBuilder

    builder = ClassBuilder(folder)
    builder.write("ann", builder.module({}))
    builder.write("bob", builder.module({}, default="stub"))


@pytest.mark.parametrize("options", [["--executor", "local", "--jobs", "2"], ["--unsafe"]],
                         ids=["submitit-jobs", "unsafe"])
def test_grading_through_jobs_and_without_a_sandbox(tmp_path, options):
    if "--unsafe" not in options and shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    subs = tmp_path / "subs"
    subs.mkdir()
    _class_of_two(subs)
    done = subprocess.run([sys.executable, "-m", "course_lib.instructor", "grade", "02", str(subs), "--out",
                           str(tmp_path / "out"), *options], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with (tmp_path / "out" / "grades.csv").open(newline="") as f:
        totals = {row["submission"]: float(row["total"]) for row in csv.DictReader(f)}
    assert totals == {"ann": sum(get_assignment("02").points.values()), "bob": 0.0}
    record = json.loads((tmp_path / "out" / "results" / "ann.json").read_text())
    assert record["sandbox"] == ("none (--unsafe)" if "--unsafe" in options else "bubblewrap")
    assert ("WITHOUT a sandbox" in done.stdout) == ("--unsafe" in options)
