"""Fixtures of the assignment 01 tests: a tiny sentence folder and four real languages."""

from __future__ import annotations

import pytest

from course_lib.core.data import require
from course_lib.langid import data, model

SAMPLES = {
    "en": ["the cat sat on the mat", "this is the house that jack built", "where is the station",
           "the weather is nice today", "i would like a cup of tea", "they went to the market"],
    "deu": ["der hund schläft im garten", "wo ist der bahnhof bitte", "das wetter ist heute schön",
            "ich möchte eine tasse tee", "sie gingen auf den markt", "die katze sitzt auf der matte"],
    "fi": ["kissa istuu matolla", "missä on rautatieasema", "sää on tänään kaunis",
           "haluaisin kupin teetä", "he menivät torille", "koira nukkuu puutarhassa"],
}


@pytest.fixture
def samples() -> dict[str, list[str]]:
    """Six short sentences in each of English (``en``), German (``deu``) and Finnish (``fi``)."""
    return SAMPLES


@pytest.fixture
def sentence_folder(tmp_path):
    """A langid-sentences folder of the samples (mixed 639-1/639-3 names), each line five times."""
    folder = tmp_path / "langid-sentences"
    folder.mkdir()
    for code, lines in SAMPLES.items():
        (folder / f"{code}.txt").write_text("\n".join(lines * 5) + "\n\n", encoding="utf-8")
    return folder


WILI_FILES = {
    "x_train.txt": "english text one\ndeutscher text eins\ntexte français\nenglish text two\n",
    "y_train.txt": "eng\ndeu\nfra\neng\n",
    "x_test.txt": "english test\ndeutscher test\n",
    "y_test.txt": "eng\ndeu\n",
    "labels.csv": "Label;English\ndeu;German\neng;English\nfra;French\n",
}


@pytest.fixture
def wili_folder(tmp_path):
    """A tiny ``wili-2018`` folder (three languages, the official layout) under ``tmp_path``."""
    folder = tmp_path / "wili-2018"
    folder.mkdir()
    for name, text in WILI_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="package")
def small_real(data_root):
    """Four real languages, 80 sentences each (a fast but honest learning problem)."""
    folder = require("langid-sentences", data_root)
    return data.load_sentences(folder, ["eng", "deu", "fin", "rus"], max_per_language=80, seed=0)


@pytest.fixture(scope="package")
def real_pipeline(small_real):
    """char_wb 1-3 grams (2000) into the MLP, trained 8 epochs with Adam on :func:`small_real`."""
    pipe = model.make_pipeline(model.make_vectorizer("char_wb", (1, 3), 2000),
                               model.make_net(optimizer="adam", lr=0.003, max_epochs=8))
    return pipe.fit(small_real.x_train, small_real.y_train)
