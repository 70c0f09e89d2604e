"""Language-identification data: ISO codes, the two on-disk layouts, and the train/test split.

Two layouts are understood, both giving texts with ISO 639-3 labels:

* ``langid-sentences/<code>.txt``: one sample per line, files named by ISO 639-1 or 639-3 code.
* ``wili-2018/``: ``x_train.txt``/``y_train.txt``/``x_test.txt``/``y_test.txt`` (one paragraph or
  label per line) plus ``labels.csv``, as published by Thoma (2018); its official split is kept.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from course_lib.core.data import require
from course_lib.core.io import read_text
from course_lib.langid.config import LangIdSettings

COURSE_LANGUAGES = ("eng", "deu", "nld", "dan", "swe", "nno")
"""The course's six: English, German, Dutch and three Scandinavian languages that look alike."""

COURSE_ADDITIONAL = (
    "ara", "hak", "lzh", "tha", "fra", "mal", "zh-yue", "zho", "bar", "tam",
    "tur", "ukr", "vie", "cdo", "ces", "div", "ell", "jpn", "kor", "lad",
)
"""The course's twenty additional WiLI-2018 labels (Hakka, Literary Chinese, Malayalam, Cantonese,
Bavarian, Min Dong, Dhivehi and Ladino among them)."""

SUBSTITUTES = ("rus", "spa", "por", "ita", "pol", "fin", "hin", "heb")
"""What the default languages take instead of the course's labels that the sentence data lack."""

EXTRA_LANGUAGES = tuple(c for c in COURSE_ADDITIONAL if c in {
    "ara", "tha", "fra", "zho", "tam", "tur", "ukr", "vie", "ces", "ell", "jpn", "kor"}) + SUBSTITUTES
"""Twenty more: the course's additional languages that the sentence data hold, then :data:`SUBSTITUTES`."""


def course_languages_table(available: Sequence[str]) -> list[dict[str, str]]:
    """For each of the course's 26 languages: is it in ``available`` (ISO 639-3 codes), and if not,
    which of :data:`SUBSTITUTES` takes its place (in order)."""
    substitutes = iter(SUBSTITUTES)
    rows = []
    for code in COURSE_LANGUAGES + COURSE_ADDITIONAL:
        here = code in available
        rows.append({"course": code, "in the data": "yes" if here else "no",
                     "used": code if here else next(substitutes)})
    return rows


DEFAULT_LANGUAGES = COURSE_LANGUAGES + EXTRA_LANGUAGES

ISO_639_1_TO_3 = {
    "af": "afr", "ar": "ara", "az": "aze", "be": "bel", "bg": "bul", "bn": "ben", "bs": "bos",
    "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell", "en": "eng",
    "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra",
    "ga": "gle", "gu": "guj", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye",
    "id": "ind", "is": "isl", "it": "ita", "ja": "jpn", "ka": "kat", "kk": "kaz", "ko": "kor",
    "la": "lat", "lg": "lug", "lt": "lit", "lv": "lav", "mi": "mri", "mk": "mkd", "mn": "mon",
    "mr": "mar", "ms": "msa", "nb": "nob", "nl": "nld", "nn": "nno", "pa": "pan", "pl": "pol",
    "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sn": "sna", "so": "som",
    "sq": "sqi", "sr": "srp", "st": "sot", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel",
    "th": "tha", "tl": "tgl", "tn": "tsn", "tr": "tur", "ts": "tso", "uk": "ukr", "ur": "urd",
    "vi": "vie", "xh": "xho", "yo": "yor", "zh": "zho", "zu": "zul",
}


def to_iso639_3(code: str) -> str:
    """Normalise an ISO 639-1 (``"en"``) or 639-3 (``"eng"``) code to 639-3; others unchanged."""
    code = code.strip().lower()
    return ISO_639_1_TO_3.get(code, code)


@dataclass
class LangIdData:
    """Texts and integer labels; ``languages[k]`` is the ISO 639-3 code of class ``k``."""

    x_train: list[str]
    y_train: np.ndarray
    x_test: list[str]
    y_test: np.ndarray
    languages: list[str]
    source: str

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{language: (n_train, n_test)}``."""
        tr = np.bincount(self.y_train, minlength=len(self.languages))
        te = np.bincount(self.y_test, minlength=len(self.languages))
        return {lang: (int(a), int(b)) for lang, a, b in zip(self.languages, tr, te, strict=True)}


def check_languages(languages: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Normalise ``languages`` to ISO 639-3 (``None`` = the default 26) and check the data holds them."""
    if languages is None:
        languages = DEFAULT_LANGUAGES
    if isinstance(languages, str) or not all(isinstance(c, str) for c in languages):
        raise TypeError(f"languages must be a list of ISO codes such as ['eng', 'deu'], got {languages!r}")
    codes = [to_iso639_3(c) for c in languages]
    missing = [orig for c, orig in zip(codes, languages, strict=True) if c not in available]
    if missing:
        raise ValueError(f"languages {missing} are not in the data; available: {sorted(available)}")
    if len(set(codes)) != len(codes) or len(codes) < 2:
        raise ValueError(f"languages must hold at least two distinct codes, got {list(languages)}")
    return codes


def read_sentences(path: str | os.PathLike, at_least: int = 1) -> list[str]:
    """The non-blank lines of a sentence file, stripped; text that is not UTF-8 raises ``ValueError``
    naming the file and line, and so does a file with fewer than ``at_least`` sentences."""
    lines = [s for s in (line.strip() for line in read_text(path).splitlines()) if s]
    if len(lines) < at_least:
        found = "no sentences (it is empty or blank)" if not lines else f"only {len(lines)} sentence(s)"
        raise ValueError(f"{path}: {found}; a language file needs at least {at_least} sentences, "
                         "one per line, for the train/test split")
    return lines


def sentence_files(folder: str | os.PathLike) -> dict[str, Path]:
    """``{iso639_3: path}`` for every ``<code>.txt`` in a langid-sentences folder."""
    return {to_iso639_3(p.stem): p for p in sorted(Path(folder).glob("*.txt"))}


def load_sentences(
    folder: str | os.PathLike,
    languages: Sequence[str] | None = None,
    *,
    max_per_language: int | None = None,
    test_size: float = 0.2,
    seed: int = 0,
) -> LangIdData:
    """Load ``<code>.txt`` files (one sample per line) and make a seeded, stratified split.

    ``max_per_language`` keeps a seeded random subset of each language (before splitting). A
    language file needs enough sentences for one test sentence (``1 / test_size``, at least 2).
    """
    files = sentence_files(folder)
    codes = check_languages(languages, list(files))
    if max_per_language is not None and max_per_language < 5:
        raise ValueError(f"max_per_language must be >= 5 (or None for all), got {max_per_language}")
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for k, code in enumerate(codes):
        lines = read_sentences(files[code], at_least=max(2, math.ceil(1 / test_size)))
        if max_per_language is not None and len(lines) > max_per_language:
            keep = np.sort(rng.choice(len(lines), size=max_per_language, replace=False))
            lines = [lines[i] for i in keep]
        texts += lines
        labels += [k] * len(lines)
    x_train, x_test, y_train, y_test = train_test_split(
        texts, np.asarray(labels, dtype=np.int64), test_size=test_size, random_state=seed,
        stratify=labels,
    )
    return LangIdData(list(x_train), y_train, list(x_test), y_test, codes, "langid-sentences")


def _wili_lines(path: Path) -> list[str]:
    """The lines of a WiLI text file (split at newlines only: paragraphs may hold other line breaks)."""
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
    return text.removesuffix("\n").split("\n") if text else []


def wili_labels(path: str | os.PathLike) -> set[str]:
    """The labels of WiLI-2018's ``labels.csv`` (``;``-separated, first column ``Label``); a file
    without that header or a row with a blank label raises ``ValueError`` naming the file (and line)."""
    lines = read_text(path).removeprefix("\ufeff").splitlines()
    if not lines or lines[0].split(";")[0].strip() != "Label":
        raise ValueError(f"{path}:1: expected a header starting with 'Label;' (WiLI-2018's labels.csv)")
    labels = set()
    for number, line in enumerate(lines[1:], start=2):
        label = line.split(";")[0].strip()
        if not label and line.strip():
            raise ValueError(f"{path}:{number}: blank label in {line!r}")
        labels.add(label)
    return labels - {""}


def load_wili(
    folder: str | os.PathLike,
    languages: Sequence[str] | None = None,
    *,
    max_per_language: int | None = None,
    seed: int = 0,
) -> LangIdData:
    """Load WiLI-2018 paragraphs for ``languages`` with the official train/test split.

    ``x_<split>.txt`` and ``y_<split>.txt`` must have one line each per paragraph, every label one of
    ``labels.csv``; otherwise ``ValueError`` names the files and the line.
    """
    folder = Path(folder)
    known = wili_labels(folder / "labels.csv")
    split = {}
    for name in ("train", "test"):
        x_path, y_path = folder / f"x_{name}.txt", folder / f"y_{name}.txt"
        xs, ys = _wili_lines(x_path), [y.strip() for y in _wili_lines(y_path)]
        if len(xs) != len(ys):
            raise ValueError(f"{x_path} has {len(xs)} lines but {y_path} has {len(ys)}: line "
                             f"{min(len(xs), len(ys)) + 1} has no partner; each paragraph needs one label")
        for number, label in enumerate(ys, start=1):
            if label not in known:
                raise ValueError(f"{y_path}:{number}: label {label!r} is not in {folder / 'labels.csv'} "
                                 f"({len(known)} labels, e.g. {sorted(known)[:5]})")
        split[name] = (xs, [to_iso639_3(y) for y in ys])
    codes = check_languages(languages, sorted(set(split["train"][1])))
    index = {c: k for k, c in enumerate(codes)}
    rng = np.random.default_rng(seed)
    out = []
    for xs, ys in split.values():
        rows = np.array([i for i, y in enumerate(ys) if y in index], dtype=np.int64)
        labels = np.array([index[ys[i]] for i in rows], dtype=np.int64)
        if max_per_language is not None:
            keep = np.concatenate([
                rng.permutation(np.flatnonzero(labels == k))[:max_per_language] for k in range(len(codes))
            ])
            rows, labels = rows[np.sort(keep)], labels[np.sort(keep)]
        out.append(([xs[i].strip() for i in rows], labels))
    (x_train, y_train), (x_test, y_test) = out
    return LangIdData(x_train, y_train, x_test, y_test, codes, "wili-2018")


def load_langid(data_dir: str | os.PathLike | None, settings: LangIdSettings, *, seed: int = 0) -> LangIdData:
    """Find the data under the data root and load ``settings.languages`` (``max_per_language`` each).

    ``settings.source="auto"`` prefers WiLI-2018 when present, else the langid-sentences folder.
    """
    source, languages, cap = settings.source, settings.languages, settings.max_per_language
    if source in ("auto", "wili-2018"):
        try:
            folder = require("wili-2018", data_dir)
            return load_wili(folder, languages, max_per_language=cap, seed=seed)
        except FileNotFoundError:
            if source == "wili-2018":
                raise
    folder = require("langid-sentences", data_dir)
    return load_sentences(folder, languages, max_per_language=cap, seed=seed)
