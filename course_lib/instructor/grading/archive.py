"""Reading a submitted zip without trusting it: hostile archives are rejected before anything is read out.

:func:`read_submission` looks at the archive's directory first and rejects, with the reason, a file over
the size limit, something that is not a zip, more than :data:`~course_lib.core.handin.MAX_ENTRIES`
entries, a name that leaves the archive's folder (absolute, ``..``, backslashes, a drive letter), a link
or any entry that is not a plain file or folder, an encrypted or repeated entry, a file that expands
beyond :data:`~course_lib.core.handin.MAX_FILE_BYTES`, all files together beyond
:data:`~course_lib.core.handin.MAX_TOTAL_BYTES`, or one compressed more than :data:`MAX_RATIO` times (a
zip bomb). Only then are the wanted files read, into memory, each stopped at its declared size. Nothing is
ever extracted to disk: the grader writes the files it builds from them itself.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from course_lib.core.handin import MAX_ARCHIVE_BYTES, MAX_ENTRIES, MAX_FILE_BYTES, MAX_TOTAL_BYTES

MAX_RATIO = 100
"""Largest compression ratio of a file over 1 MB (text compresses 3-10 times; a zip bomb thousands)."""
MB = 2**20


class ArchiveRejected(ValueError):
    """A submission archive that is not read, with the reason (it gets zero points)."""


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (not name or name.startswith("/") or "\\" in name or "\0" in name or ".." in parts
            or (len(name) > 1 and name[1] == ":")):
        raise ArchiveRejected(f"path traversal: the entry {name!r} would land outside the archive's folder")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveRejected(f"link: the entry {name!r} is a symbolic link")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a plain file
        raise ArchiveRejected(f"special file: the entry {name!r} is not a plain file or folder "
                              f"(mode {mode:o})")
    if info.flag_bits & 0x1:
        raise ArchiveRejected(f"encrypted: the entry {name!r} is encrypted")
    if info.file_size > MAX_FILE_BYTES:
        raise ArchiveRejected(f"huge file: the entry {name!r} expands to {info.file_size / MB:.1f} MB, over "
                              f"the {MAX_FILE_BYTES // MB} MB allowed per file")
    if info.file_size > MB and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise ArchiveRejected(f"zip bomb: the entry {name!r} is compressed {ratio:.0f} times "
                              f"(at most {MAX_RATIO})")


def check_archive(path: Path) -> zipfile.ZipFile:
    """``path`` opened as a zip whose directory passed every check above; :class:`ArchiveRejected`
    with the reason otherwise."""
    size = path.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise ArchiveRejected(f"huge archive: {size / MB:.1f} MB, over the {MAX_ARCHIVE_BYTES // MB} MB "
                              "allowed")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ArchiveRejected(f"not a zip archive ({err})") from None
    try:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ArchiveRejected(f"too many files: {len(infos)} entries, at most {MAX_ENTRIES}")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ArchiveRejected(f"repeated entry: {next(n for n in names if names.count(n) > 1)!r}")
        for info in infos:
            _check_entry(info)
        total = sum(info.file_size for info in infos)
        if total > MAX_TOTAL_BYTES:
            raise ArchiveRejected(f"zip bomb: the entries expand to {total / MB:.1f} MB in all, over the "
                                  f"{MAX_TOTAL_BYTES // MB} MB allowed")
    except BaseException:
        archive.close()
        raise
    return archive


def read_submission(path: Path, wanted: set[str]) -> tuple[dict[str, bytes], list[str]]:
    """The ``wanted`` files of the archive at ``path`` (those it holds) and the names of its other
    entries; :class:`ArchiveRejected` for a hostile or damaged archive."""
    with check_archive(path) as archive:
        files: dict[str, bytes] = {}
        others = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            if info.filename not in wanted:
                others.append(info.filename)
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
                raise ArchiveRejected(f"damaged entry {info.filename!r} ({err})") from None
            if len(data) != info.file_size:
                raise ArchiveRejected(f"damaged entry {info.filename!r}: its size is not the declared one")
            files[info.filename] = data
    return files, others
