"""Content checks for data files that have no registered sha256: format, size range and a sanity property
of the real file, so that an error page, a truncated file or another data set never passes as the data.

Each check is called with the file's path and raises :class:`BadContent` saying what is wrong. Every
downloaded or verified file is first checked not to be an HTML (or XML error) page (:func:`refuse_markup`).
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

MARKUP = re.compile(rb"^\s*<(!doctype\s+html|html|head|body|title|\?xml)\b", re.IGNORECASE)
"""How an HTML page (a mirror's maintenance or login page) or an XML error document begins."""


class BadContent(ValueError):
    """A data file's content is not what its data set holds."""


def refuse_markup(path: Path) -> None:
    """Raise :class:`BadContent` when ``path`` holds an HTML page or an XML error document (quoting its
    beginning): no data file of the workbook is one."""
    with path.open("rb") as f:
        head = f.read(2048).removeprefix(b"\xef\xbb\xbf")
    if MARKUP.match(head) or b"<html" in head.lower():
        start = " ".join(head[:80].decode("utf-8", "replace").split())
        raise BadContent(f"is an HTML/XML page, not data (it begins {start!r}); the server sent an error or "
                         "maintenance page")


def _size(path: Path, low: int, high: int) -> int:
    size = path.stat().st_size
    if not low <= size <= high:
        raise BadContent(f"has {size:,} bytes, outside the {low:,} to {high:,} of the real file")
    return size


@dataclass(frozen=True)
class TokenText:
    """UTF-8 text of ``low_bytes``..``high_bytes`` bytes holding ``low_tokens``..``high_tokens``
    whitespace tokens, counting one end-of-line token per line (WikiText's count)."""

    low_bytes: int
    high_bytes: int
    low_tokens: int
    high_tokens: int

    def __call__(self, path: Path) -> None:
        _size(path, self.low_bytes, self.high_bytes)
        tokens = 0
        try:
            with path.open(encoding="utf-8") as f:
                for line in f:
                    tokens += len(line.split()) + 1
        except UnicodeDecodeError as err:
            raise BadContent(f"is not UTF-8 text ({err.reason} at byte {err.start} of a line)") from err
        if not self.low_tokens <= tokens <= self.high_tokens:
            raise BadContent(f"holds {tokens:,} tokens (one per line end included), outside the "
                             f"{self.low_tokens:,} to {self.high_tokens:,} of the real file")


@dataclass(frozen=True)
class SquadJson:
    """SQuAD's JSON of ``low_bytes``..``high_bytes`` bytes: ``{"version", "data": [{"title", "paragraphs":
    [{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}`` with the given
    version and ``low_questions``..``high_questions`` questions."""

    version: str
    low_bytes: int
    high_bytes: int
    low_questions: int
    high_questions: int

    def __call__(self, path: Path) -> None:
        _size(path, self.low_bytes, self.high_bytes)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadContent(f"is not JSON ({err})") from err
        if not (isinstance(data, dict) and data.get("version") == self.version
                and isinstance(data.get("data"), list)):
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise BadContent(f"is not SQuAD v{self.version} JSON (expected the keys 'version' = "
                             f"{self.version!r} and 'data', found {found})")
        questions = 0
        for a, article in enumerate(data["data"]):
            try:
                for paragraph in article["paragraphs"]:
                    if not isinstance(paragraph["context"], str):
                        raise TypeError("context is not text")
                    for qa in paragraph["qas"]:
                        if not (isinstance(qa["id"], str) and isinstance(qa["question"], str) and all(
                                isinstance(x["text"], str) and isinstance(x["answer_start"], int)
                                for x in qa["answers"])):
                            raise TypeError(f"question {qa.get('id')!r} lacks text or answer offsets")
                        questions += 1
            except (KeyError, TypeError) as err:
                raise BadContent(f"article {a} does not follow SQuAD's schema ({err!r})") from err
        if not self.low_questions <= questions <= self.high_questions:
            raise BadContent(f"holds {questions:,} questions, outside the {self.low_questions:,} to "
                             f"{self.high_questions:,} of the real file")


@dataclass(frozen=True)
class ZipArchive:
    """A zip archive of ``low_bytes``..``high_bytes`` bytes whose members (by file name, in any folder)
    include ``members``, every member's CRC intact; each pair of ``same_lines`` members has as many lines
    as the other (texts and their labels)."""

    low_bytes: int
    high_bytes: int
    members: tuple[str, ...]
    same_lines: tuple[tuple[str, str], ...] = ()

    def __call__(self, path: Path) -> None:
        _size(path, self.low_bytes, self.high_bytes)
        try:
            with zipfile.ZipFile(path) as zf:
                names = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
                missing = [m for m in self.members if m not in names]
                if missing:
                    raise BadContent(f"is a zip archive without {missing}")
                damaged = zf.testzip()
                if damaged is not None:
                    raise BadContent(f"is a damaged zip archive (member {damaged} fails its CRC)")
                for a, b in self.same_lines:
                    counts = [sum(1 for _ in zf.open(names[m])) for m in (a, b)]
                    if counts[0] != counts[1] or not counts[0]:
                        raise BadContent(f"holds {counts[0]:,} lines in {a} but {counts[1]:,} in {b}")
        except zipfile.BadZipFile as err:
            raise BadContent(f"is not a zip archive ({err})") from err
