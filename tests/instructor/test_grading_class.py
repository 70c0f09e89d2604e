"""A fake class of assignment 02 graded end to end in one command, with the real sandbox: eight
submissions of every kind (correct, stubs, wrong but runnable, endless loop, endless allocation, fork
bomb, deleting files, reading other submissions and the instructor's files, opening sockets, and each
kind of hostile archive). Checks the points, the feedback texts, the written answers gathered per
question, that a second run resumes (grades nothing again), that nothing outside the sandboxes changed
(the trees hashed before and after), that no connection reached the servers the submissions aim at and
that no process of a sandbox is left."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import pytest

from course_lib.assignments import get_assignment
from course_lib.core.exercises import SOLUTION, STUDENT, package_exercises, regions, strip_solutions
from course_lib.core.handin import MAX_FILE_BYTES, MAX_TOTAL_BYTES, collect, zip_bytes
from course_lib.instructor.grading.grade import FIRST_UID
from course_lib.instructor.release import _release_notebook

ROOT = Path(__file__).resolve().parents[2]
MODULE = "course_lib/cnn/numpy_conv.py"
MODULES = sorted({e.path for e in package_exercises(ROOT / "course_lib" / "cnn", ROOT)})
"""The exercise modules of assignment 02 (a hand-in holds each; the hostile code goes into MODULE)."""
NOTEBOOK = "notebooks/02_cnn.ipynb"
PER_KIND = 8
LIMITS = ["--timeout", "240", "--test-timeout", "15", "--test-cpu", "2", "--memory-gb", "1.5",
          "--processes", "32"]
POINTS = get_assignment("02").points
FULL = sum(POINTS.values())

# outside the everyday suite: python3 workbook.py -s tests -- -m slow tests/instructor/test_grading_class.py
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="needs bubblewrap (apt-get install bubblewrap)")]


def _tree_hash(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path).encode())
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


class Listener:
    """A TCP server on 127.0.0.1, one on an abstract Unix socket and one on a Unix socket file, each
    counting the connections it accepts."""

    def __init__(self, folder: Path):
        self.accepted = 0
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.abstract_name = f"grading-test-{os.getpid()}"
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + self.abstract_name)
        self.path = folder / "listener.sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(self.path))
        for server in (self.tcp, self.abstract, self.unix):
            server.listen()
            threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server):
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        for server in (self.tcp, self.abstract, self.unix):
            server.close()


def _body(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n"


CORRECT_COUNT = "return (kernel_size * kernel_size * in_channels + int(bias)) * out_channels"


def _hostile_count(code: str) -> str:
    """conv_param_count doing ``code`` first, then answering right (when ``code`` lets it)."""
    return _body(textwrap.dedent(code).strip("\n") + "\n" + CORRECT_COUNT)


WRONG = {  # exercise -> a wrong but runnable body
    "conv_param_count": _body("return (kernel_size * kernel_size + int(bias)) * out_channels"),
    "conv_single_step": _body("return float(np.sum(a_slice_prev * W))"),
    "distribute_value": _body("return np.full(shape, dz)"),
    "create_mask_from_window": _body("return x == np.min(x)"),
    "pool_forward": _body("""
        m, n_H_prev, n_W_prev, n_C = A_prev.shape
        f, stride = hparameters["f"], hparameters["stride"]
        n_H, n_W = (n_H_prev - f) // stride + 1, (n_W_prev - f) // stride + 1
        A = np.zeros((m, n_H, n_W, n_C))
        for h in range(n_H):
            for w in range(n_W):
                A[:, h, w] = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f].max(axis=(1, 2))
        return A, (A_prev, hparameters)"""),
    "zero_pad": _body("return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=1)"),
}
# (wrong exercises, points lost): a wrong exercise also costs the tests of the exercises whose solution
# calls it (conv_forward calls conv_single_step and zero_pad, pool_backward the mask and distribute_value,
# conv_backward zero_pad; the fast versions are checked against conv2d and the pooling functions of torch,
# not against the student's loops); "always max" pooling passes one of its three tests (the hidden max case)
WRONG_CASES = [
    (["conv_param_count"], 1), (["conv_single_step"], 1 + 2), (["distribute_value"], 1 + 1),
    (["create_mask_from_window"], 1 + 1), (["pool_forward"], 2 * 2 / 3), (["zero_pad"], 0.5 + 1 + 3),
    (["conv_param_count", "pool_forward"], 1 + 2 * 2 / 3), (["conv_param_count", "distribute_value"], 3),
]
LOOPS = [
    "while True:\n    pass",
    "x = 0\nwhile True:\n    x += 1",
    "while True:\n    sum(i * i for i in range(1000))",
    "import itertools\nfor _ in itertools.count():\n    pass",
    "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass",
    "import time\ntime.sleep(10**6)",
    "import signal\nsignal.signal(signal.SIGPROF, signal.SIG_IGN)\nwhile True:\n    pass",
    "sum(range(10**13))",
]
ALLOCATIONS = [
    "chunks = []\nwhile True:\n    chunks.append(np.ones(10**7))",
    "bytearray(10**12)",
    "np.empty((10**6, 10**6))",
    "'x' * 10**11",
    "[0] * 10**10",
    "import os\nif os.fork() == 0:\n    x = np.ones(4 * 10**8)\n    os._exit(0)\nos.wait()\n"
    "chunks = []\nwhile True:\n    chunks.append(np.ones(10**7))",
    "chunks = []\nwhile True:\n    chunks.append(b'x' * 10**7)",
    "x = np.ones(3 * 10**8)",
]
FORKS = [
    "import os\nwhile True:\n    os.fork()",
    "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)",
    "import os\nwhile True:\n    if os.fork() == 0:\n        while True:\n            os.fork()",
    "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '60'])",
    "import multiprocessing, time\nctx = multiprocessing.get_context('fork')\nwhile True:\n"
    "    ctx.Process(target=time.sleep, args=(60,), daemon=True).start()",
    "import threading, time\nwhile True:\n"
    "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
    "import os\nwhile True:\n    os.posix_spawn('/bin/sleep', ['sleep', '60'], {})",
    "import os, sys\nwhile True:\n    if os.fork() == 0:\n"
    "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)'])",
]


def _deletions(root: Path, subs: Path, out: Path, canary: Path) -> list[str]:
    tries = [
        f"shutil.rmtree({str(subs)!r})",
        f"os.remove({str(canary)!r})",
        "shutil.rmtree('/grading')",
        "subprocess.run(['rm', '-rf', '/grading', '/etc', '/dev'], capture_output=True)",
        f"os.remove({str(root / 'tests/cnn/hidden/test_numpy_conv.py')!r})",
        f"open({str(root / MODULE)!r}, 'w').close()",
        f"shutil.rmtree({str(out)!r})",
        "[os.remove(p) for p in glob.glob('/grading/tests/**/*.py', recursive=True)]",
    ]
    return [f"import glob, os, shutil, subprocess\ntry:\n    {code}\nexcept OSError:\n    pass"
            for code in tries]


def _reads(root: Path, subs: Path, out: Path, canary: Path) -> list[str]:
    targets = [
        f"glob.glob({str(subs / '*.zip')!r})", f"[{str(root / 'tests/cnn/hidden/test_numpy_conv.py')!r}]",
        f"glob.glob({str(out / 'results' / '*.json')!r}) + [{str(out / 'grades.csv')!r}]",
        f"[{str(canary)!r}]", f"glob.glob({str(out / '.grading' / 'work' / '*' / MODULE)!r})",
        f"[{str(root / MODULE)!r}]", "['/etc/shadow', '/root/.bash_history', '/proc/1/environ']",
        "[f'/proc/{p}/cmdline' for p in os.listdir('/proc') if p.isdigit()]",
    ]
    checks = []
    for k, target in enumerate(targets):
        leak = ("b'submission' in data or b'SECRET' in data or b'BEGIN SOLUTION' in data" if k >= 6
                else "True")
        checks.append(f"import glob, os\nfound = []\nfor path in {target}:\n    try:\n"
                      f"        data = open(path, 'rb').read()\n    except OSError:\n        continue\n"
                      f"    if {leak}:\n        found.append((path, data[:80]))\n"
                      "if found:\n    raise AssertionError(f'LEAK {found}')")
    return checks


def _sockets(listener: Listener) -> list[str]:
    return [
        f"import socket\nsocket.create_connection(('127.0.0.1', {listener.port}), timeout=5)",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=5)",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'x', ('8.8.8.8', 53))",
        f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0{listener.abstract_name}')",
        "import socket\nsocket.getaddrinfo('example.com', 80)",
        "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
        f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(listener.path)!r})",
        f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{listener.port}/', timeout=5)",
    ]


class ClassBuilder:
    """Writes hand-ins from the release's exercise modules and notebook with chosen bodies in the regions."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.release: dict[str, str] = {}
        self.solutions: dict[str, list[str]] = {}
        for path in MODULES:
            instructor = (ROOT / path).read_text(encoding="utf-8")
            self.release[path] = strip_solutions(instructor)[0]
            self.solutions |= {name: [r.text for r in rs]
                               for name, rs in regions(instructor, fence=SOLUTION).items()}
        notebook = folder.parent / "release_notebook.ipynb"
        shutil.copy2(ROOT / NOTEBOOK, notebook)
        _release_notebook(notebook)
        self.notebook = json.loads(notebook.read_text(encoding="utf-8"))

    def module(self, bodies: dict[str, str], default: str = "solution") -> dict[str, str]:
        """Each release module (path -> text) with ``bodies`` in their regions, the solution (or the stub)
        elsewhere."""
        modules = {}
        for path, release in self.release.items():
            lines = release.splitlines(keepends=True)
            student = regions(release, fence=STUDENT)
            for name, blocks in sorted(student.items(), key=lambda kv: -kv[1][0].first):
                if name in bodies:
                    texts = [bodies[name]]
                elif default == "solution":
                    texts = self.solutions[name]
                else:
                    continue
                for block, text in sorted(zip(blocks, texts, strict=True), key=lambda bt: -bt[0].first):
                    lines[block.first - 1: block.last] = [text]
            modules[path] = "".join(lines)
        return modules

    def write(self, name: str, modules: dict[str, str], answers: dict[int, str] | None = None) -> None:
        notebook = json.loads(json.dumps(self.notebook))
        cells = [c for c in notebook["cells"] if "answer" in c.get("metadata", {}).get("tags", [])]
        for k, text in (answers or {}).items():
            cells[k]["source"] = text
        work = self.folder.parent / "student" / name
        (work / "notebooks").mkdir(parents=True)
        for path, text in modules.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text, encoding="utf-8")
        (work / NOTEBOOK).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        handin = collect(get_assignment("02"), work)
        (self.folder / f"{name}.zip").write_bytes(zip_bytes(handin.files))


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    return info


def _hostile_archives(folder: Path, modules: dict[str, str]) -> dict[str, str]:
    """Eight archives of each hostile kind; submission name -> a word its reason must hold."""
    expected = {}
    ok: list[tuple[zipfile.ZipInfo | str, bytes]] = [(path, text.encode()) for path, text in modules.items()]
    traversal = ["../evil.py", "../../tmp/evil.py", "/tmp/evil.py", "course_lib/../../evil.py", "c:/evil.py",
                 "..\\evil.py", "notebooks/../../../etc/cron.d/x", "a/b/../../../evil.py"]
    links = [("course_lib/cnn/numpy_conv.py", "/etc/passwd"), ("notebooks/02_cnn.ipynb", "../../.."),
             ("x", "/"), ("manifest.json", "/proc/self/environ"), ("a/b", "../../../root"),
             ("link", str(ROOT)), ("course_lib", "/usr"), ("y", "y")]
    zeros_40 = b"\0" * (40 * 2**20)
    for k in range(PER_KIND):
        _zip(folder / f"traversal-{k}.zip", ok + [(traversal[k], b"print('owned')\n")])
        expected[f"traversal-{k}"] = "path traversal"
        _zip(folder / f"link-{k}.zip", [(_link(links[k][0]), links[k][1].encode())])
        expected[f"link-{k}"] = "link"
        n_files = 10_000 if k < 4 else 101 + 1000 * k
        _zip(folder / f"many-{k}.zip", [(f"f{i}.txt", b"") for i in range(n_files)])
        expected[f"many-{k}"] = "too many files"
        big = MAX_FILE_BYTES + 2**20 * (k + 1)
        _zip(folder / f"huge-{k}.zip", ok + [(f"data{k}.bin", b"\0" * big)])
        expected[f"huge-{k}"] = "huge file"
        if k < 4:  # several files of zeros, each compressed a thousand times
            parts = MAX_TOTAL_BYTES // len(zeros_40) + 1 + k
            _zip(folder / f"bomb-{k}.zip", ok + [(f"part{i}.bin", zeros_40) for i in range(parts)])
        else:  # one file compressed thousands of times
            _zip(folder / f"bomb-{k}.zip", ok + [("notebooks/02_cnn.ipynb", b" " * (2**20 * (k * 4)))])
        expected[f"bomb-{k}"] = "zip bomb"
    return expected


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Build the class, hash the trees, grade it in one command (twice: the second must resume)."""
    top = tmp_path_factory.mktemp("class")
    subs, out, canary_dir = top / "submissions", top / "out", top / "canary"
    subs.mkdir()
    canary_dir.mkdir()
    canary = canary_dir / "secret.txt"
    canary.write_text("SECRET of the instructor\n")
    listener = Listener(top)
    builder = ClassBuilder(subs)
    expected: dict[str, float] = {}
    answers = {0: "Pooling has no weights, but its gradient routes dz to the inputs.", 2: "Weight sharing."}
    for k in range(PER_KIND):
        builder.write(f"correct-{k}", builder.module({"zero_pad": builder.solutions["zero_pad"][0]
                                                      + f"    # student {k}\n"}),
                      {q: f"{text} (student {k})" for q, text in answers.items()})
        expected[f"correct-{k}"] = FULL
        builder.write(f"stub-{k}", builder.module({}, default="stub"))
        expected[f"stub-{k}"] = 0
        names, lost = WRONG_CASES[k]
        builder.write(f"wrong-{k}", builder.module({n: WRONG[n] for n in names}))
        expected[f"wrong-{k}"] = FULL - lost
        for kind, codes, points in [("loop", LOOPS, FULL - 1), ("alloc", ALLOCATIONS, FULL - 1),
                                    ("fork", FORKS, FULL - 1), ("socket", _sockets(listener), FULL - 1),
                                    ("delete", _deletions(ROOT, subs, out, canary), FULL),
                                    ("read", _reads(ROOT, subs, out, canary), FULL)]:
            builder.write(f"{kind}-{k}", builder.module({"conv_param_count": _hostile_count(codes[k])}))
            expected[f"{kind}-{k}"] = points

    rejected = _hostile_archives(subs, builder.module({}))
    trees = (ROOT / "course_lib", ROOT / "tests", ROOT / "notebooks", subs, canary_dir)
    before = _tree_hash(*trees)
    command = [sys.executable, "-m", "course_lib.instructor", "grade", "02", str(subs), "--out", str(out),
               "--jobs", "2", *LIMITS]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(command, cwd=top, env=env, capture_output=True, text=True, timeout=3000)
    after = _tree_hash(*trees)
    second = subprocess.run(command, cwd=top, env=env, capture_output=True, text=True, timeout=600)
    listener.close()
    leftover = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout.split()
    yield {"out": out, "expected": expected, "rejected": rejected, "first": first, "second": second,
           "changed": before != after, "accepted": listener.accepted,
           "leftover": [u for u in leftover if FIRST_UID <= int(u) < FIRST_UID + 1000]}


def _rows(out: Path) -> dict[str, dict]:
    with (out / "grades.csv").open(newline="") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


def _feedback(out: Path, name: str) -> str:
    return (out / "feedback" / f"{name}.md").read_text(encoding="utf-8")


def test_the_class_grades_to_the_expected_points(graded):
    assert graded["first"].returncode == 0, graded["first"].stderr[-3000:]
    rows = _rows(graded["out"])
    assert len(rows) == len(graded["expected"]) + len(graded["rejected"]) == 14 * PER_KIND
    wrong = {name: (float(rows[name]["total"]), points) for name, points in graded["expected"].items()
             if float(rows[name]["total"]) != pytest.approx(points, abs=0.01)}
    assert not wrong, f"(got, expected) {wrong}"
    for name, word in graded["rejected"].items():
        assert rows[name]["status"] == "rejected" and float(rows[name]["total"]) == 0, name
        assert word in rows[name]["reason"], (name, rows[name]["reason"])
    with (graded["out"] / "lms.csv").open(newline="") as f:
        lms = {row["SID"]: row for row in csv.DictReader(f)}
    assert lms["correct-0"]["Score"] == rows["correct-0"]["total"]
    assert float(lms["stub-0"]["Max Score"]) == FULL


def test_hostile_submissions_change_nothing_outside_their_sandbox(graded):
    assert not graded["changed"], "a file of the checkout, the submissions or the canary changed"
    assert graded["accepted"] == 0, "a connection reached a server outside the sandbox"
    assert not graded["leftover"], f"processes of sandboxes left: {graded['leftover']}"
    for name in graded["expected"]:
        assert "LEAK" not in _feedback(graded["out"], name), name
    assert not list((graded["out"] / ".grading").glob("work/*"))


def test_feedback_names_each_test_and_why_it_failed(graded):
    out = graded["out"]
    correct = _feedback(out, "correct-0")
    assert f"**{FULL:g} / {FULL:g} points**" in correct
    assert "**failed**" not in correct.split("without points")[0]
    assert "passed: `tests/cnn/hidden/test_numpy_conv.py::test_zero_pad_non_square_and_integers`" in correct
    stub = _feedback(out, "stub-0")
    assert "NotImplementedError" in stub and "not implemented: zero_pad" in stub
    assert "| `conv_single_step` | 0 / 1 | 0 of 2 |" in _feedback(out, "wrong-1")
    assert "| `pool_forward` | 0.67 / 2 | 1 of 3 |" in _feedback(out, "wrong-4")
    # an endless allocation is stopped for its memory, or for its CPU time when it fills memory slowly
    kinds = {"loop": ["CPU time", "stopped: the test"], "alloc": ["MemoryError", "memory", "CPU time"],
             "fork": ["Resource temporarily unavailable", "can't start new thread"],
             "socket": ["Network is unreachable", "Connection refused", "No such file", "Name or service",
                        "Operation not permitted", "Temporary failure"]}
    for kind, words in kinds.items():
        for k in range(PER_KIND):
            text = _feedback(out, f"{kind}-{k}")
            section = text.split("### `conv_param_count`")[1].split("###")[0]
            assert "**failed**" in section and any(w in section for w in words), (kind, k, section[:1500])
            assert "| `conv_forward_fast` | 3 / 3 | 13 of 13 |" in text, (kind, k)
    rejected = _feedback(out, "traversal-0")
    assert f"**0 / {FULL:g} points**" in rejected
    assert "not graded: rejected archive: path traversal" in rejected


def test_written_answers_are_gathered_per_question(graded):
    files = sorted((graded["out"] / "answers").glob("*.md"))
    assert len(files) == 6 and files[0].name.startswith("01_question-1-pooling")
    first = files[0].read_text(encoding="utf-8")
    assert "## Model answer" in first and "pooling" in first.lower()
    for k in range(PER_KIND):
        assert f"routes dz to the inputs. (student {k})" in first
    assert first.count("_(no answer)_") == len(graded["expected"]) - PER_KIND + len(graded["rejected"])


def test_a_second_run_resumes(graded):
    second = graded["second"]
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("graded before with the same zip and tests: skipped") == 14 * PER_KIND
