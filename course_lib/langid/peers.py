"""The language identifiers a user would install instead of training one, scored on the same sentences.

Three peers, each an optional package (absent: its row says how to install it, nothing fails):

* **lingua** (``lingua-language-detector``): n-gram models of 1 to 5 characters with a rule-based
  first pass, in its default high-accuracy mode, restricted to the assignment's languages;
* **langid.py** (``py3langid``): a naive Bayes classifier over byte n-grams, restricted to the
  assignment's languages (``set_languages``);
* **CLD2** (``pycld2``, Chrome's Compact Language Detector 2): it cannot be restricted, so of the up to
  three languages it reports, best first, the first that is one of the assignment's is its answer; a
  sentence where none is (or CLD2 reports nothing) counts as wrong. CLD2 refuses a text holding a
  control character (some sentences carry a stray C1 code, ``\x92`` for an apostrophe), so those are
  removed from what it reads.

A peer that cannot name a language of the assignment (not in its inventory) simply never predicts it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd

from course_lib.langid.data import ISO_639_1_TO_3

ISO_639_3_TO_1 = {three: one for one, three in ISO_639_1_TO_3.items()}
"""ISO 639-3 to 639-1 (langid.py's labels)."""

CLD2_CODES = {"iw": "heb", "zh-Hant": "zho", "no": "nob"}
"""CLD2's codes that are not ISO 639-1 (its old code for Hebrew, traditional Chinese, Norwegian)."""


class PeerMissing(ImportError):
    """A peer's package is not installed; the message says how to install it."""


def _require(module: str, package: str, name: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise PeerMissing(f"{name} is not installed: pip install {package}") from err


def lingua_predict(texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
    """lingua's language of each text (ISO 639-3, ``None`` when it declines), high-accuracy mode,
    choosing only among ``languages`` (ISO 639-3) it knows."""
    lingua = _require("lingua", "lingua-language-detector", "lingua")
    known = []
    for code in languages:
        try:
            known.append(lingua.IsoCode639_3.from_str(code))
        except ValueError:
            continue
    if len(known) < 2:
        raise ValueError(f"lingua knows fewer than two of the languages {list(languages)}")
    detector = lingua.LanguageDetectorBuilder.from_iso_codes_639_3(*known).build()
    found = detector.detect_languages_in_parallel_of(list(texts))
    return [None if language is None else language.iso_code_639_3.name.lower() for language in found]


def langid_py_predict(texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
    """langid.py's language of each text (ISO 639-3), choosing only among ``languages`` it knows."""
    langid = _require("py3langid.langid", "py3langid", "langid.py")
    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE)
    known = set(identifier.labels)
    codes = [ISO_639_3_TO_1.get(c, c) for c in languages]
    restricted = [c for c in codes if c in known]
    if len(restricted) < 2:
        raise ValueError(f"langid.py knows fewer than two of the languages {list(languages)}")
    identifier.set_languages(restricted)
    return [ISO_639_1_TO_3.get(code, code) for code, _ in map(identifier.classify, texts)]


def cld2_predict(texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
    """CLD2's language of each text (ISO 639-3): the best-ranked of the up to three it reports that is
    one of ``languages``; ``None`` when none is (or it cannot read the text). Control characters are
    removed first (CLD2 refuses them)."""
    cld2 = _require("pycld2", "pycld2", "CLD2")
    wanted = set(languages)
    answers: list[str | None] = []
    for text in texts:
        try:
            _, _, details = cld2.detect("".join(c for c in text if c.isprintable()), bestEffort=True)
        except cld2.error:  # what it still cannot read
            answers.append(None)
            continue
        codes = (CLD2_CODES.get(code, ISO_639_1_TO_3.get(code, code)) for _, code, _, _ in details)
        answers.append(next((code for code in codes if code in wanted), None))
    return answers


@dataclass(frozen=True)
class Peer:
    """One identifier: its name, its PyPI package, how it is restricted, and its predictor."""

    name: str
    package: str
    restriction: str
    predict: Callable[[Sequence[str], Sequence[str]], list[str | None]]


PEERS = (
    Peer("lingua", "lingua-language-detector", "high-accuracy mode, restricted to the languages",
         lingua_predict),
    Peer("langid.py", "py3langid", "restricted to the languages", langid_py_predict),
    Peer("CLD2", "pycld2", "its best-ranked answer among the languages", cld2_predict),
)
"""The peers, in the order they are printed."""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def compare_with_peers(texts: Sequence[str], labels: np.ndarray, languages: Sequence[str],
                       ours: Mapping[str, np.ndarray], peers: Sequence[Peer] = PEERS) -> pd.DataFrame:
    """Accuracy on ``texts`` with true ``labels`` (N,) (indices into ``languages``, ISO 639-3 codes) of
    each of ``ours`` (name -> predicted indices (N,)) and of each peer, one row each: ``accuracy``,
    ``errors`` (of N) and ``note`` (the package version and how it was restricted, or how to install
    a missing peer, whose accuracy and errors are then empty)."""
    labels = np.asarray(labels)
    rows = {}
    for name, predicted in ours.items():
        predicted = np.asarray(predicted)
        if predicted.shape != labels.shape:
            raise ValueError(f"predictions of {name!r} are {predicted.shape}, the labels {labels.shape}")
        rows[name] = {"accuracy": float((predicted == labels).mean()),
                      "errors": int((predicted != labels).sum()), "note": "this workbook"}
    truth = [languages[k] for k in labels]
    for peer in peers:
        try:
            answers = peer.predict(list(texts), languages)
        except PeerMissing as missing:
            rows[peer.name] = {"accuracy": np.nan, "errors": np.nan, "note": str(missing)}
            continue
        hits = sum(a == t for a, t in zip(answers, truth, strict=True))
        rows[peer.name] = {"accuracy": hits / len(truth), "errors": len(truth) - hits,
                           "note": f"{peer.package} {_version(peer.package)}, {peer.restriction}"}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["errors"] = table["errors"].astype("Int64")
    return table


def comparison_lines(table: pd.DataFrame, n_texts: int) -> list[str]:
    """One line per row of :func:`compare_with_peers`'s ``table``: its accuracy, errors of ``n_texts`` and
    note, or for a missing peer ``not installed (pip install ...)``."""
    width = max(map(len, table.index)) + 1
    lines = []
    for name, row in table.iterrows():
        if pd.isna(row["accuracy"]):
            lines.append(f"{name:{width}s} not installed ({row['note'].partition(': ')[2]})")
        else:
            lines.append(f"{name:{width}s} accuracy {row['accuracy']:.4f}, {row['errors']} errors of "
                         f"{n_texts} ({row['note']})")
    return lines
