"""The release's Colab setup cell in a stand-in Colab: a stub ``google.colab`` (with Drive), a local git
repository tagged like the published release, and a fresh Python with IPython running the cell twice
(the second run clones and installs nothing), then a student's edit that ``check`` sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from course_lib.core.check import exercises_by_name
from course_lib.instructor.release import colab_setup, make_release

from .student import publish, solved_text

URL = "https://github.com/course/workbook"
DRIVER = '''
import sys
from pathlib import Path

import google.colab  # noqa: F401 (Colab has imported it before the first cell)
from IPython.core.interactiveshell import InteractiveShell

setup, solved = Path(sys.argv[1]).read_text(), Path(sys.argv[2])
shell = InteractiveShell.instance()
system = shell.system


def logged(command):
    print("SYSTEM", command.split()[0:4], flush=True)
    return system(command)


shell.system = logged


def cell(code):
    shell.run_cell(code).raise_error()


cell(setup)
print("SECOND RUN", flush=True)
cell(setup)
cell("import os, course_lib; print('LIBRARY', course_lib.__file__); print('CWD', os.getcwd())")
cell("from course_lib import check; before = check('zero_pad'); print('BEFORE', repr(before))")
Path("course_lib/cnn/numpy_conv.py").write_text(solved.read_text())  # the student writes zero_pad
cell("after = check('zero_pad'); print('AFTER', repr(after))")
'''
DRIVE_STUB = '''from pathlib import Path


def mount(mountpoint, force_remount=False):
    """Stand-in for Colab's: the Drive appears under ``mountpoint`` as ``MyDrive``."""
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
'''


def test_setup_cell_is_inert_off_colab_and_valid_ipython():
    from IPython.core.inputtransformer2 import TransformerManager

    cell = colab_setup(URL, "v1.0")
    python = TransformerManager().transform_cell(cell)
    compile(python, "cell", "exec")
    assert "run_line_magic('pip', 'install -q -e \"{workbook}[student]\"')" in python
    assert "run_line_magic('cd', '{workbook}')" in python
    namespace: dict = {"get_ipython": lambda: pytest.fail("a magic ran outside Colab")}
    exec(python, namespace)  # not on Colab: nothing happens
    assert "workbook" not in namespace


@pytest.mark.notebook  # slow: a virtual environment, an editable install and two pytest runs
def test_colab_cell_clones_installs_editable_and_check_sees_the_students_edit(tmp_path):
    published = tmp_path / "published"
    make_release(published, repo_url=URL, ref="v1")
    commit = publish(published, "v1")
    cells = json.loads((published / "notebooks" / "02_cnn.ipynb").read_text(encoding="utf-8"))["cells"]
    setup = next(c for c in cells if c["id"] == "colab-setup")["source"]
    assert 'on_drive = False' in setup and "checkout -q v1" in setup
    content = tmp_path / "content"  # Colab's /content
    setup = (setup.replace(URL, str(published)).replace('home = "/content"', f'home = "{content}"')
             .replace("on_drive = False", "on_drive = True"))
    (tmp_path / "setup.py").write_text(setup)
    _, zero_pad = exercises_by_name()["zero_pad"]
    (tmp_path / "solved.py").write_text(solved_text(published, zero_pad))
    (tmp_path / "driver.py").write_text(DRIVER)
    stub = tmp_path / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "drive.py").write_text(DRIVE_STUB)
    venv = tmp_path / "venv"  # the runtime's Python: this one's packages, its own site-packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    other = site / "course_lib-0.0.dist-info"  # a course_lib from elsewhere: the cell installs its own
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: course-lib\nVersion: 0.0\n")
    (other / "direct_url.json").write_text('{"url": "file:///elsewhere", "dir_info": {"editable": true}}')
    files = ("METADATA", "direct_url.json", "RECORD")
    (other / "RECORD").write_text("".join(f"{other.name}/{name},,\n" for name in files))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PYTHONPATH": str(tmp_path / "stub"), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TQDM_DISABLE": "1"}
    command = [str(python), *(str(tmp_path / name) for name in ("driver.py", "setup.py", "solved.py"))]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    clone = content / "drive" / "MyDrive" / "workbook"
    first, second = out.split("SECOND RUN")
    assert first.count("SYSTEM") == 2 and "'git', 'clone'" in first and "'-m', 'pip', 'install'" in first
    assert "SYSTEM" not in second  # idempotent: nothing cloned or installed twice
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True)
    assert head.stdout.strip() == commit
    assert f"LIBRARY {clone / 'course_lib' / '__init__.py'}" in out and f"CWD {clone}" in out
    direct_url = json.loads(next(site.glob("course_lib-*.dist-info")).joinpath("direct_url.json").read_text())
    assert direct_url["dir_info"] == {"editable": True} and direct_url["url"] == clone.as_uri()
    checks = out[out.index("FAIL  test_zero_pad_reference"):].splitlines()
    assert checks == ["FAIL  test_zero_pad_reference",
                      "        NotImplementedError: exercise: write your solution here",
                      "BEFORE zero_pad: 0 of 1 tests pass",
                      "ok    test_zero_pad_reference",
                      "AFTER zero_pad: 1 of 1 tests pass"]
