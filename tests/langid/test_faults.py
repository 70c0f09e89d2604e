"""Assignment 01 fault trials: bad knob values, damaged or swapped data files, a failing GridSearchCV fit.

Assignment 01 trains with skorch and keeps no cache or checkpoint, so every fault here must stop the
run with an error that names the bad value (and the valid ones) or the file and line.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from course_lib.core.data.registry import DATASETS, CorruptDataError, DatasetSpec, require
from course_lib.core.data.root import CACHE_ENV
from course_lib.core.runs import start_run
from course_lib.langid import analysis, data, experiments
from course_lib.langid.config import ASSIGNMENT, SMOKE

WILI = SMOKE.override(source="wili-2018")


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("knobs", "error", "message"), [
    ({"source": "web"}, ValueError, r"source='web' is not valid; choose one of \['auto', 'langid-sentences'"),
    ({"cv_folds": 1}, ValueError, r"cv_folds=1 is not valid; it must be >= 2"),
    ({"grid": {"depth": [1, 2]}}, ValueError,
     r"unknown grid keys \['depth'\]; valid: \['analyzer', 'inner_nonlinearity'"),
    ({"grid": {"width": [64, 0]}}, ValueError,
     r"grid\['width'\] holds 0, which is not valid; .* an int >= 1"),
    ({"grid": {"nonlinearity": ["gelu"]}}, ValueError,
     r"grid\['nonlinearity'\] holds 'gelu', .* one of \['relu', 'tanh', 'sigmoid'\]"),
    ({"grid": {"ngram_range": [[3, 1]]}}, ValueError,
     r"grid\['ngram_range'\] holds \[3, 1\], .* 1 <= lo <= hi"),
    ({"grid": {"optimizer": {"adam": [-0.01]}}}, ValueError,
     r"grid\['optimizer'\]\['adam'\] holds -0.01, .* a number > 0"),
    ({"grid": {"optimizer": {"lbfgs": [1.0]}}}, ValueError,
     r"unknown optimizers \['lbfgs'\] .* \['sgd', 'adam'\]"),
    ({"languages": "eng"}, TypeError, r"languages='eng' has the wrong type"),
])
def test_start_run_refuses_bad_knobs(tmp_path, knobs, error, message):
    with pytest.raises(error, match=message):
        start_run(ASSIGNMENT, {"device": "cpu", "output_dir": str(tmp_path / "out"), **knobs})
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.fault("clear_error")
def test_unknown_language_is_named_with_the_valid_codes(tmp_path):
    # which codes exist depends on the data, so the check runs when the data loads (start_run succeeds)
    run = start_run(ASSIGNMENT, {"device": "cpu", "output_dir": str(tmp_path), "languages": ["xx"]})
    with pytest.raises(ValueError, match=r"languages \['xx'\] are not in the data; available: "
                                         r"\['afr', .*'eng', .*'zul'\]"):
        data.load_langid(run.data_dir, run.settings)


@pytest.fixture
def own_sentences(sentence_folder, monkeypatch):
    """The synthetic sentence folder, registered as the user's own data (no checksums to match)."""
    monkeypatch.setitem(DATASETS, "langid-sentences", DatasetSpec("langid-sentences", "own", ("*.txt",)))
    return sentence_folder


@pytest.mark.fault("clear_error")
def test_non_utf8_sentence_file_names_file_and_line(own_sentences):
    path = own_sentences / "deu.txt"
    # line 3 is Latin-1, not UTF-8
    path.write_bytes(b"der hund schl\xc3\xa4ft\nwo ist der bahnhof\nsch\xf6n ist es\n" * 3)
    with pytest.raises(ValueError, match=r"deu\.txt:3: not UTF-8 text"):
        data.load_langid(own_sentences.parent, SMOKE.override(languages=["eng", "deu"]))


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("text", "message"), [
    ("", r"fi\.txt: no sentences \(it is empty or blank\); .* at least 5 sentences"),
    ("\n  \n\n", r"fi\.txt: no sentences"),
    ("kissa\nkoira\nsää\n", r"fi\.txt: only 3 sentence\(s\); a language file needs at least 5 sentences"),
])
def test_empty_or_short_language_file_is_named(own_sentences, text, message):
    (own_sentences / "fi.txt").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        data.load_langid(own_sentences.parent, SMOKE.override(languages=["eng", "fin"]))
    assert data.load_sentences(own_sentences, ["eng", "deu"]).languages == ["eng", "deu"]  # others load


@pytest.mark.fault("clear_error")
def test_swapped_language_file_fails_the_checksum(data_root, tmp_path, monkeypatch):
    """nl.txt replaced by de.txt: the registered sha256 catches it (the rest are links to the real files)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    shared, folder = require("langid-sentences", data_root), tmp_path / "langid-sentences"
    folder.mkdir()
    for path in shared.glob("*.txt"):
        (folder / path.name).symlink_to(path)
    (folder / "nl.txt").unlink()
    shutil.copyfile(shared / "de.txt", folder / "nl.txt")
    actual = hashlib.sha256((shared / "de.txt").read_bytes()).hexdigest()
    expected = hashlib.sha256((shared / "nl.txt").read_bytes()).hexdigest()
    with pytest.raises(CorruptDataError, match=rf"nl\.txt: sha256 {actual} does not match the registered "
                                               rf"{expected} .* [Ff]etch it again"):
        data.load_langid(tmp_path, SMOKE.override(languages=["eng", "nld"]))


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("name", "text", "message"), [
    ("y_train.txt", "eng\ndeu\nfra\n",
     r"x_train\.txt has 4 lines but .*y_train\.txt has 3: line 4 has no partner"),
    ("x_test.txt", "english test\ndeutscher test\nmore\n",
     r"x_test\.txt has 3 lines but .*y_test\.txt has 2"),
    ("y_train.txt", "eng\ndeu\nfrench\neng\n", r"y_train\.txt:3: label 'french' is not in .*labels\.csv"),
    ("y_test.txt", "eng\n\n", r"y_test\.txt:2: label '' is not in .*labels\.csv"),
    ("labels.csv", "eng;English\n", r"labels\.csv:1: expected a header starting with 'Label;'"),
    ("labels.csv", "Label;English\n;German\n", r"labels\.csv:2: blank label"),
])
def test_damaged_wili_file_names_file_and_line(wili_folder, name, text, message):
    (wili_folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        data.load_langid(wili_folder.parent, WILI.override(languages=["eng", "deu"]))


@pytest.mark.fault("clear_error")
def test_non_utf8_wili_file_names_file_and_line(wili_folder):
    text = b"english text one\ndeutscher text eins\ntexte fran\xe7ais\nenglish text two\n"  # Latin-1 line 3
    (wili_folder / "x_train.txt").write_bytes(text)
    with pytest.raises(ValueError, match=r"x_train\.txt:3: not UTF-8 text"):
        data.load_langid(wili_folder.parent, WILI.override(languages=["eng", "deu"]))


def _tiny_data(texts: list[str]) -> data.LangIdData:
    """Two classes alternating over ``texts``, the same texts as test set."""
    y = np.arange(len(texts)) % 2
    return data.LangIdData(texts, y, texts, y, ["eng", "deu"], "langid-sentences")


@pytest.mark.fault("clear_error")
def test_failing_fit_in_a_worker_stops_the_grid_search():
    """Word n-grams of texts without words: every fit fails inside the loky workers (n_jobs=2)."""
    tiny = _tiny_data([f"{c} {d}" for c in "abcdefgh" for d in "1234"])
    settings = SMOKE.override(grid={"analyzer": ["word"], "width": [4, 8]}, n_jobs=2, grid_epochs=1)
    with pytest.raises(RuntimeError, match=r"GridSearchCV of grid \{'analyzer': \['word'\].* \(2 folds, "
                                           r"n_jobs=2\) failed: ValueError: empty vocabulary") as caught:
        experiments.grid_search(tiny, settings)
    assert isinstance(caught.value.__cause__, ValueError)  # the worker's own error, not a NaN score


@pytest.mark.fault("clear_error")
def test_more_folds_than_texts_per_language_is_named():
    tiny = _tiny_data(["the cat sat", "der hund", "the mat", "die katze"] * 2)  # 4 texts per class
    with pytest.raises(RuntimeError, match=r"\(5 folds, n_jobs=1\) failed: ValueError: n_splits=5 cannot be "
                                           r"greater than the number of members in each class"):
        experiments.grid_search(tiny, SMOKE.override(cv_folds=5, grid={"width": [4]}, grid_epochs=1))


@pytest.mark.fault("clear_error")
def test_predict_language_refuses_empty_text(real_pipeline, small_real):
    with pytest.raises(ValueError, match=r"texts\[0\] is empty or blank \(''\); give some text"):
        analysis.predict_language(real_pipeline, "", small_real.languages)
    with pytest.raises(ValueError, match=r"texts is empty; give at least one string"):
        analysis.predict_language(real_pipeline, [], small_real.languages)
