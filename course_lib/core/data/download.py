"""Download one file: progress bar, size, sha256 and content checks, atomic rename; unpack archives
atomically.

Nothing half-written or wrong is left behind: bytes go to a temporary file next to the destination and
are renamed into place only after the size and checksum match and the content passes (never an HTML
page; see :mod:`course_lib.core.data.checks`); on any error the partial file is removed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.core.data.checks import BadContent, refuse_markup
from course_lib.core.io import DiskFull, atomic_write, disk_full


class DownloadError(RuntimeError):
    """A download failed (network, truncated transfer or checksum mismatch); nothing was kept."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the registered file: another checksum, an HTML page, or content that
    fails the file's check (not retried: the source itself differs)."""


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    retries: int = 3,
    backoff: float = 0.5,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (atomically, see :func:`course_lib.core.io.atomic_write`) and return it.

    A dropped connection, an interrupted transfer or a server error is tried again, up to ``retries``
    attempts in all, waiting ``backoff`` seconds, then twice as long. Raises :class:`DownloadError` when
    every attempt failed or the server answers 4xx, and :class:`ChecksumMismatch` when the sha256 does not
    match ``sha256``, the bytes are an HTML page, or ``check(path)`` raises
    :class:`~course_lib.core.data.checks.BadContent`; nothing is kept then. A full disk raises
    :class:`~course_lib.core.io.DiskFull` naming the folder.
    """
    dest = Path(dest)

    def fetch(tmp: Path) -> None:
        digest = hashlib.sha256()
        written = 0
        with urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            expected = size if size is not None else (int(announced) if announced else None)
            with (
                tmp.open("wb") as out,
                tqdm(total=expected, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
            ):
                while block := response.read(1 << 16):
                    out.write(block)
                    digest.update(block)
                    written += len(block)
                    bar.update(len(block))
        if expected is not None and written != expected:
            raise DownloadError(
                f"{url}: transfer interrupted after {written} of {expected} bytes; nothing kept")
        try:
            refuse_markup(tmp)
            if sha256 is None and check is not None:
                check(tmp)
        except BadContent as err:
            raise ChecksumMismatch(f"{url}: the download {err}; the file was deleted") from err
        if sha256 is not None and (actual := digest.hexdigest()) != sha256.lower():
            raise ChecksumMismatch(f"{url}: sha256 mismatch (expected {sha256}, got {actual}); the file was "
                                   "deleted")

    for attempt in range(1, retries + 1):
        try:
            return atomic_write(dest, fetch)
        except (ChecksumMismatch, DiskFull):
            raise
        except DownloadError:
            if attempt == retries:
                raise
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # 404 and the like: asking again will not help
                raise DownloadError(f"{url}: download failed ({exc}); nothing kept") from exc
            if attempt == retries:
                raise DownloadError(f"{url}: download failed after {retries} attempts ({exc}); "
                                    "nothing kept") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            if attempt == retries:
                raise DownloadError(f"{url}: download failed after {retries} attempts ({exc}); "
                                    "nothing kept") from exc
        time.sleep(backoff * 2 ** (attempt - 1))
    raise DownloadError(f"{url}: retries must be >= 1, got {retries}")


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Unpack a .zip / .tar(.gz) into ``target`` atomically (unpacked beside it, then renamed)."""
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _unpack(archive, target, tmp)
    except OSError as err:
        if (full := disk_full(err, target / archive.name)) is not None:
            raise full from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unpack(archive: Path, target: Path, tmp: Path) -> None:
    """Unpack ``archive`` into ``tmp``, then move it to ``target`` (into it, when it exists)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="data")
    entries = list(tmp.iterdir())
    # An archive holding one top folder whose name matches the target is unwrapped.
    source = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    if target.exists():
        for item in source.iterdir():
            os.replace(item, target / item.name)
    else:
        os.replace(source, target)
