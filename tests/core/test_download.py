"""The downloader against a local HTTP server on 127.0.0.1: good file, bad checksum, cut transfer."""

from __future__ import annotations

import errno
import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from course_lib.core.data import MissingDataError
from course_lib.core.data.checks import BadContent, SquadJson, TokenText, ZipArchive, refuse_markup
from course_lib.core.data.download import ChecksumMismatch, DownloadError, download, extract_archive
from course_lib.core.data.registry import (
    DATASETS,
    CorruptDataError,
    DatasetSpec,
    RemoteFile,
    fetch,
    require,
    sha256_of,
)
from course_lib.core.data.root import fetch_command
from course_lib.core.io import DiskFull

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


REQUESTS: list[str] = []
FLAKY = {"failures_left": 0}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        REQUESTS.append(self.path)
        if self.path == "/flaky.bin" and FLAKY["failures_left"] > 0:
            FLAKY["failures_left"] -= 1
            self.send_error(503)
        elif self.path in ("/good.bin", "/other.bin", "/flaky.bin"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/cut.bin":  # announces everything, sends a third, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_good_file_is_written_with_matching_checksum(server, tmp_path):
    dest = download(f"{server}/good.bin", tmp_path / "good.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.bin"]


@pytest.mark.fault("clear_error")
def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(f"{server}/good.bin", tmp_path / "x.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault("clear_error")
def test_interrupted_transfer_raises_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError):
        download(f"{server}/cut.bin", tmp_path / "cut.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_is_an_interrupted_transfer(server, tmp_path):
    with pytest.raises(DownloadError, match="interrupted"):
        download(f"{server}/good.bin", tmp_path / "g.bin", size=len(PAYLOAD) + 1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="download failed"):
        download("http://127.0.0.1:9/none.bin", tmp_path / "n.bin", progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_require_downloads_a_registered_dataset(server, tmp_path, monkeypatch):
    spec = DatasetSpec("toy", "toy data", ("good.bin",),
                       (RemoteFile(f"{server}/good.bin", "good.bin", SHA, len(PAYLOAD)),))
    monkeypatch.setitem(DATASETS, "toy", spec)
    folder = require("toy", tmp_path, download_missing=True, progress=False)
    assert (folder / "good.bin").read_bytes() == PAYLOAD
    assert require("toy", tmp_path) == folder  # present now: no download needed


@pytest.mark.fault("clear_error")
def test_require_offline_names_files_place_and_remedy(tmp_path, monkeypatch):
    spec = DatasetSpec("toy", "toy data", ("a.txt", "b.txt"),
                       (RemoteFile("http://127.0.0.1:9/a.txt", "a.txt"),))
    monkeypatch.setitem(DATASETS, "toy", spec)
    with pytest.raises(MissingDataError) as err:
        require("toy", tmp_path, download_missing=True, progress=False)
    text = str(err.value)
    assert "a.txt, b.txt" in text and str(tmp_path / "toy") in text
    assert "COURSE_DATA_DIR" in text and "Download attempt failed" in text
    assert not (tmp_path / "toy" / "a.txt").exists()


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(KeyError, match="wikitext-2"):
        require("wikitext-3")


def test_fetch_extracts_archives_atomically(server, tmp_path, monkeypatch):
    import zipfile

    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("toy/inner.txt", "hello")
    target = extract_archive(archive, tmp_path / "root" / "toy")
    assert (target / "inner.txt").read_text() == "hello"
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["toy"]  # no temp folder left
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    spec = DatasetSpec("toy2", "toy", ("good.bin",),
                       (RemoteFile(f"{server}/good.bin", "good.bin", SHA),))
    fetch(spec, tmp_path / "toy2", progress=False)
    assert (tmp_path / "toy2" / "good.bin").exists()


def test_registered_datasets_have_sources_or_notes():
    for spec in DATASETS.values():
        assert spec.files, spec.name
        assert spec.remote or spec.notes, f"{spec.name}: no way to get it is documented"


def test_shared_data_matches_the_registry(data_root: Path):
    present = [s for s in DATASETS.values() if (data_root / s.name).is_dir()]
    if not present:
        pytest.skip(f"no data under {data_root}")
    for spec in present:
        assert spec.missing(data_root / spec.name) == [], spec.name
        assert require(spec.name, data_root) == data_root / spec.name  # every checksum verifies


def _two_file_spec(server):
    return DatasetSpec("toy", "toy data", ("*.bin",), (
        RemoteFile(f"{server}/good.bin", "good.bin", SHA, len(PAYLOAD)),
        RemoteFile(f"{server}/other.bin", "other.bin", SHA, len(PAYLOAD)),
    ))


@pytest.mark.fault("clear_error")
def test_require_verifies_files_already_present(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(DATASETS, "toy", _two_file_spec(server))
    folder = require("toy", tmp_path, download_missing=True, progress=False)
    bad = folder / "other.bin"
    bad.write_bytes(PAYLOAD[::-1])  # same size, another language's file in its place
    with pytest.raises(CorruptDataError) as err:
        require("toy", tmp_path)
    text = str(err.value)
    assert str(bad) in text and SHA in text and hashlib.sha256(PAYLOAD[::-1]).hexdigest() in text
    assert fetch_command("toy", tmp_path) in text  # a command the user can type
    REQUESTS.clear()  # a download repairs the damaged file and keeps the verified one
    require("toy", tmp_path, download_missing=True, progress=False)
    assert REQUESTS == ["/other.bin"] and bad.read_bytes() == PAYLOAD


@pytest.mark.fault("recovery")
def test_an_interrupted_multi_file_download_is_not_complete_and_resumes(server, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(DATASETS, "toy", _two_file_spec(server))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "good.bin").write_bytes(PAYLOAD)  # the first file arrived, then the run died
    with pytest.raises(MissingDataError, match="other.bin"):
        require("toy", tmp_path)
    REQUESTS.clear()
    require("toy", tmp_path, download_missing=True, progress=False)
    assert REQUESTS == ["/other.bin"]


def test_verification_is_remembered_by_path_size_and_mtime(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert sha256_of(path) == SHA
    stat = path.stat()
    path.write_bytes(PAYLOAD[::-1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sha256_of(path) == SHA  # same path, size and mtime: the remembered checksum, no re-read
    path.write_bytes(PAYLOAD[::-1] + b"x")
    assert sha256_of(path) == hashlib.sha256(PAYLOAD[::-1] + b"x").hexdigest()


@pytest.mark.fault("recovery")
def test_a_server_error_is_tried_again(server, tmp_path):
    FLAKY["failures_left"] = 2
    REQUESTS.clear()
    download(f"{server}/flaky.bin", tmp_path / "f.bin", sha256=SHA, progress=False, backoff=0)
    assert REQUESTS == ["/flaky.bin"] * 3 and (tmp_path / "f.bin").read_bytes() == PAYLOAD
    FLAKY["failures_left"] = 5
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"{server}/flaky.bin", tmp_path / "g.bin", progress=False, backoff=0)
    REQUESTS.clear()
    with pytest.raises(DownloadError, match="404"):  # not worth asking again
        download(f"{server}/nothing.bin", tmp_path / "h.bin", progress=False, backoff=0)
    assert REQUESTS == ["/nothing.bin"] and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


# --- content checks: files without a registered sha256 ------------------------------------------------


def _squad(questions: int) -> dict:
    qas = [{"id": f"q{i}", "question": "Why?", "answers": [{"text": "because", "answer_start": 0}]}
           for i in range(questions)]
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "because", "qas": qas}]}]}


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("content, message", [
    (b"  <HTML><body>Login</body></HTML>", r"is an HTML/XML page, not data \(it begins '<HTML><body>Login"),
    (b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', r"is an HTML/XML page"),
    (json.dumps(_squad(1)).encode(), r"holds 1 questions, outside the 2 to 5 of the real file"),
    (json.dumps({"version": "2.0", "data": []}).encode(),
     r"is not SQuAD v1.1 JSON .*found \['data', 'version'\]"),
    (json.dumps({"version": "1.1", "data": [{"title": "T"}]}).encode(),
     r"article 0 does not follow SQuAD's schema \(KeyError\('paragraphs'\)\)"),
    (b'{"version": "1.1", "data": [', r"is not JSON"),
])
def test_squad_content_check(tmp_path, content, message):
    path = tmp_path / "train.json"
    path.write_bytes(json.dumps(_squad(3)).encode())
    refuse_markup(path)
    SquadJson("1.1", 10, 10_000, 2, 5)(path)  # the real thing passes
    path.write_bytes(content)
    with pytest.raises(BadContent, match=message):
        refuse_markup(path)
        SquadJson("1.1", 10, 10_000, 2, 5)(path)


@pytest.mark.fault("clear_error")
def test_token_text_and_zip_content_checks(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text(" = Heading = \n a b c \n")  # 3 + 1 + 3 + 1 tokens
    TokenText(1, 100, 8, 8)(text)
    with pytest.raises(BadContent, match=r"holds 8 tokens \(one per line end included\), outside the 9 to "):
        TokenText(1, 100, 9, 10)(text)
    with pytest.raises(BadContent, match=r"has 22 bytes, outside the 100 to 200 of the real file"):
        TokenText(100, 200, 8, 8)(text)
    archive = tmp_path / "w.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("w/x_train.txt", "a\nb\n")
        zf.writestr("w/y_train.txt", "en\n")
    with pytest.raises(BadContent, match=r"holds 2 lines in x_train.txt but 1 in y_train.txt"):
        ZipArchive(1, 10_000, ("x_train.txt", "y_train.txt"), (("x_train.txt", "y_train.txt"),))(archive)
    with pytest.raises(BadContent, match=r"is a zip archive without \['labels.csv'\]"):
        ZipArchive(1, 10_000, ("x_train.txt", "labels.csv"))(archive)
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(BadContent, match="is not a zip archive"):
        ZipArchive(1, 10_000, ("x_train.txt",))(archive)


@pytest.mark.fault("clear_error")
def test_a_download_that_fails_its_content_check_is_not_kept_nor_retried(server, tmp_path):
    def too_short(path):
        raise BadContent(f"has {path.stat().st_size:,} bytes, fewer than the real file")

    REQUESTS.clear()
    with pytest.raises(ChecksumMismatch, match=r"good.bin: the download has 102,400 bytes, fewer than the "
                                               r"real file; the file was deleted"):
        download(f"{server}/good.bin", tmp_path / "g.bin", check=too_short, progress=False, backoff=0)
    assert REQUESTS == ["/good.bin"] and list(tmp_path.iterdir()) == []


@pytest.mark.fault("clear_error")
def test_a_full_disk_during_a_download_names_the_cache_and_is_not_retried(server, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("course_lib.core.data.download.refuse_markup", full)  # fails after the transfer
    REQUESTS.clear()
    dest = tmp_path / "cache" / "downloads" / "g.bin"
    with pytest.raises(DiskFull) as err:
        download(f"{server}/good.bin", dest, progress=False, backoff=0)
    assert REQUESTS == ["/good.bin"] and not dest.exists()
    assert f"{dest.parent}: no space left on the device while writing g.bin" in str(err.value)
    assert f"set COURSE_CACHE_DIR to a folder there (now {tmp_path / 'cache'})" in str(err.value)
