"""``python -m course_lib data fetch`` end to end, from a mirror of the registry's files on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.core.data.registry import DATASETS, CorruptDataError, MissingDataError, require
from course_lib.core.data.root import fetch_command
from tests.serve import serving

SERVED: list[str] = []


@pytest.fixture
def mirror(data_root: Path):
    """An HTTP server on 127.0.0.1 serving the data root as ``<data set>/<file>`` (a mirror) of the data sets
    these tests fetch (a data root without them skips the tests, see :mod:`tests.data_gate`)."""
    for name in ("yahoo-answers-topics", "wikitext-2", "ag-news"):
        require(name, data_root)
    with serving(data_root, SERVED) as url:
        yield url


def _fetch(mirror: str, root: Path, *names: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_DATA_MIRROR": mirror, "COURSE_CACHE_DIR": str(root.parent / "cache")}
    env.pop("COURSE_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "course_lib", "data", "fetch", *names, "--root", str(root)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_fetch_from_a_mirror_verifies_and_resumes(mirror, tmp_path, data_root):
    root = tmp_path / "data"
    SERVED.clear()
    done = _fetch(mirror, root, "yahoo-answers-topics", "wikitext-2")
    assert done.returncode == 0, done.stderr
    for name in ("yahoo-answers-topics", "wikitext-2"):
        for remote in DATASETS[name].checked:
            got, want = root / name / remote.path, data_root / name / remote.path
            assert hashlib.sha256(got.read_bytes()).hexdigest() == remote.sha256 == \
                hashlib.sha256(want.read_bytes()).hexdigest()
    assert "optional file train.txt not fetched" in done.stdout  # the offline copy has no train split
    (root / "yahoo-answers-topics" / "train_2.jsonl").unlink()  # as if the first run had been killed
    SERVED.clear()
    again = _fetch(mirror, root, "yahoo-answers-topics")
    assert again.returncode == 0, again.stderr
    assert [p for p in SERVED if "yahoo" in p] == ["/yahoo-answers-topics/train_2.jsonl"]


@pytest.mark.fault("clear_error")
def test_fetch_names_unknown_data_sets_and_failures(mirror, tmp_path):
    done = _fetch(mirror, tmp_path / "data", "imagenet")
    assert done.returncode == 2 and "imagenet" in done.stderr and "yahoo-answers-topics" in done.stderr
    failed = _fetch(mirror, tmp_path / "data", "ag-news", "cifar-10-batches-py")  # no archive on the mirror
    assert failed.returncode == 1 and "cifar-10-batches-py: FAILED" in failed.stderr
    assert (tmp_path / "data" / "ag-news" / "train.json").exists()  # the others still fetched


@pytest.mark.fault("clear_error")
def test_missing_data_names_only_what_a_user_has(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from outside the checkout, the bootstrap by its full path
    with pytest.raises(MissingDataError) as err:
        require("squad-v1.1", tmp_path)
    text = str(err.value)
    # the command a user can type here (tests/test_quickstart.py: a checkout's bootstrap)
    assert f"Online: {fetch_command('squad-v1.1', tmp_path)}" in text
    assert "download = True" in text and "COURSE_DATA_DIR" in text
    assert "COURSE_DATA_MIRROR" in text and "https://rajpurkar.github.io" in text
    assert "shared" not in text and "require(" not in text


def test_a_run_with_download_fetches_its_data_sets_first(mirror, tmp_path, monkeypatch):
    from course_lib.core.runs import start_run
    from tests.core.toy import toy_assignment

    monkeypatch.setenv("COURSE_DATA_MIRROR", mirror)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    toy = toy_assignment(datasets=("cifar10-jpg|yahoo-answers-topics",))  # the first has no download
    root = tmp_path / "data"
    params = {"profile": "smoke", "device": "cpu", "data_dir": str(root), "output_dir": str(tmp_path / "out")}
    start_run(toy, {**params, "download": False})
    assert not root.exists()  # nothing fetched unless asked (or on Colab)
    with pytest.raises(TypeError, match="download='yes' has the wrong type"):
        start_run(toy, {**params, "download": "yes"})
    start_run(toy, {**params, "download": True})
    for remote in DATASETS["yahoo-answers-topics"].checked:
        assert hashlib.sha256((root / "yahoo-answers-topics" / remote.path).read_bytes()).hexdigest() == \
            remote.sha256


MAINTENANCE = (b"<!DOCTYPE html>\n<html><head><title>Down for maintenance</title></head>"
               b"<body>Back soon</body></html>")
OVERRIDES: dict[str, bytes] = {}


@pytest.fixture
def bad_mirror(data_root: Path):
    """The mirror of :func:`mirror`, except that the paths in ``OVERRIDES`` answer 200 with their bytes
    (a maintenance page, by default)."""
    if not (data_root / "wikitext-2").is_dir():
        pytest.skip(f"no data under {data_root}")

    OVERRIDES.clear()
    with serving(data_root, overrides=OVERRIDES) as url:
        yield url


def _list(root: Path) -> dict[str, str]:
    env = {**os.environ, "COURSE_CACHE_DIR": str(root.parent / "cache")}
    done = subprocess.run([sys.executable, "-m", "course_lib", "data", "list", "--root", str(root)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return dict(line.split(maxsplit=1) for line in done.stdout.splitlines())


def _wikitext_like(valid: Path, tokens: int = 2_088_628) -> bytes:
    """Text with the size and token count of WikiText-2's train split (its valid lines, repeated)."""
    lines, count = valid.read_text(encoding="utf-8").splitlines(keepends=True), 0
    out = []
    while count < tokens:
        for line in lines:
            out.append(line)
            count += len(line.split()) + 1
            if count >= tokens:
                break
    return "".join(out).encode()


@pytest.mark.fault("clear_error")
def test_a_maintenance_page_from_the_mirror_is_never_taken_for_data(bad_mirror, tmp_path, data_root,
                                                                    monkeypatch):
    from course_lib.lm.data import load_wikitext2

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "data"
    OVERRIDES["/wikitext-2/train.txt"] = MAINTENANCE
    done = _fetch(bad_mirror, root, "wikitext-2")
    assert "optional file train.txt not fetched" in done.stdout
    assert "is an HTML/XML page, not data (it begins '<!DOCTYPE html> <html><head><title>Down" in done.stdout
    assert not (root / "wikitext-2" / "train.txt").exists()
    with pytest.raises(MissingDataError, match=r"split='official' needs WikiText-2 \['train'\]"):
        load_wikitext2("official", root)

    (root / "wikitext-2" / "train.txt").write_bytes(MAINTENANCE)  # kept by an earlier version
    assert _list(root)["wikitext-2"].startswith(f"damaged: {root / 'wikitext-2' / 'train.txt'}: is an HTML")
    with pytest.raises(CorruptDataError, match=r"train.txt: is an HTML/XML page.*fetch wikitext-2"):
        load_wikitext2("official", root)

    OVERRIDES["/wikitext-2/train.txt"] = real = _wikitext_like(data_root / "wikitext-2" / "valid.txt")
    again = _fetch(bad_mirror, root, "wikitext-2")  # the mirror is back: the bad file is replaced
    assert again.returncode == 0, again.stderr
    assert "train.txt: is an HTML/XML page" in again.stdout and "removed, fetching it again" in again.stdout
    assert (root / "wikitext-2" / "train.txt").read_bytes() == real
    assert _list(root)["wikitext-2"] == "present"


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("path, name", [("/ag-news/train.json", "ag-news"),
                                        ("/wili-2018/wili-2018.zip", "wili-2018")])
def test_a_maintenance_page_in_place_of_a_required_file_fails_the_fetch(bad_mirror, tmp_path, path, name):
    OVERRIDES[path] = MAINTENANCE
    done = _fetch(bad_mirror, tmp_path / "data", name)
    assert done.returncode == 1 and f"{name}: FAILED" in done.stderr
    assert "is an HTML/XML page, not data" in done.stderr and "the file was deleted" in done.stderr
    assert not (tmp_path / "data" / name / Path(path).name).exists()
    assert not list((tmp_path / "cache").rglob("*.zip"))  # not kept in the downloads cache either


@pytest.mark.fault("clear_error")
def test_a_truncated_squad_train_file_is_refused(bad_mirror, tmp_path, data_root):
    OVERRIDES["/squad-v1.1/train-v1.1.json"] = (data_root / "squad-v1.1" / "dev-v1.1.json").read_bytes()
    done = _fetch(bad_mirror, tmp_path / "data", "squad-v1.1")  # the dev set in place of train: too small
    assert done.returncode == 0 and "optional file train-v1.1.json not fetched" in done.stdout
    assert "has 4,854,279 bytes, outside the 28,000,000 to 33,000,000 of the real file" in done.stdout
    assert not (tmp_path / "data" / "squad-v1.1" / "train-v1.1.json").exists()
