"""Language-identification data: ISO codes, the two on-disk layouts, and the train/test split.

Two layouts are understood, both giving texts with ISO 639-3 labels:

* ``langid-sentences/<code>.txt``: one sample per line, files named by ISO 639-1 or 639-3 code.
* ``wili-2018/``: ``x_train.txt``/``y_train.txt``/``x_test.txt``/``y_test.txt`` (one paragraph or
  label per line) plus ``labels.csv``, as published by Thoma (2018); its official split is kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from course_lib.core.data import require
from course_lib.langid.config import LangIdSettings

COURSE_LANGUAGES = ("eng", "deu", "nld", "dan", "swe", "nno")
"""The course's six: English, German, Dutch and three Scandinavian languages that look alike."""

EXTRA_LANGUAGES = (
    "ara", "tha", "fra", "zho", "tam", "tur", "ukr", "vie", "ces", "ell", "jpn", "kor",
    "rus", "spa", "por", "ita", "pol", "fin", "hin", "heb",
)
"""Twenty more: the course's extra choices first, then widely spoken languages the data holds."""

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


def _read_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s]


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

    ``max_per_language`` keeps a seeded random subset of each language (before splitting).
    """
    files = sentence_files(folder)
    codes = check_languages(languages, list(files))
    if max_per_language is not None and max_per_language < 5:
        raise ValueError(f"max_per_language must be >= 5 (or None for all), got {max_per_language}")
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for k, code in enumerate(codes):
        lines = _read_lines(files[code])
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


def load_wili(
    folder: str | os.PathLike,
    languages: Sequence[str] | None = None,
    *,
    max_per_language: int | None = None,
    seed: int = 0,
) -> LangIdData:
    """Load WiLI-2018 paragraphs for ``languages`` with the official train/test split."""
    folder = Path(folder)
    split = {}
    for name in ("train", "test"):
        xs = (folder / f"x_{name}.txt").read_text(encoding="utf-8").split("\n")
        ys = [to_iso639_3(y) for y in (folder / f"y_{name}.txt").read_text(encoding="utf-8").split("\n")]
        n = len([y for y in ys if y])
        split[name] = (xs[:n], ys[:n])
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
