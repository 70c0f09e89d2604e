"""Assignment 01 data: ISO codes, the two on-disk layouts and the seeded, stratified split."""

from __future__ import annotations

import pytest

from course_lib.langid import data
from course_lib.langid.config import SMOKE


def test_iso_codes_normalise_to_639_3():
    assert data.to_iso639_3("en") == "eng"
    assert data.to_iso639_3(" NN ") == "nno"
    assert data.to_iso639_3("deu") == "deu"
    assert len(data.DEFAULT_LANGUAGES) == 26 and len(set(data.DEFAULT_LANGUAGES)) == 26
    assert data.DEFAULT_LANGUAGES[:6] == ("eng", "deu", "nld", "dan", "swe", "nno")


def test_sentence_folder_mixed_codes_and_stratified_split(sentence_folder, samples):
    d = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=1)
    assert d.languages == ["eng", "deu", "fin"]
    assert d.counts() == {"eng": (24, 6), "deu": (24, 6), "fin": (24, 6)}  # 30 lines each, blank dropped
    assert d.x_train[0] in samples[["en", "deu", "fi"][d.y_train[0]]]
    again = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=1)
    assert again.x_test == d.x_test
    other = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=2)
    assert other.y_test.tolist() != d.y_test.tolist() or other.x_test != d.x_test
    capped = data.load_sentences(sentence_folder, ["eng", "fin"], max_per_language=10)
    assert capped.counts() == {"eng": (8, 2), "fin": (8, 2)}


def test_unknown_language_lists_available(sentence_folder, monkeypatch):
    from course_lib.core.data.registry import DATASETS, DatasetSpec

    # a folder of the user's own sentences: a registry entry without the published files' checksums
    monkeypatch.setitem(DATASETS, "langid-sentences", DatasetSpec("langid-sentences", "own", ("*.txt",)))
    with pytest.raises(ValueError, match=r"\['xx'\].*available: \['deu', 'eng', 'fin'\]"):
        data.load_sentences(sentence_folder, ["eng", "xx"])
    with pytest.raises(ValueError, match="two distinct"):
        data.load_sentences(sentence_folder, ["eng", "en"])
    with pytest.raises(TypeError, match="list of ISO codes"):
        data.load_sentences(sentence_folder, "eng")
    with pytest.raises(ValueError, match=r"\['fr'\] are not in the data"):
        data.load_langid(sentence_folder.parent, SMOKE.override(languages=["eng", "fr"]))


def test_wili_layout_keeps_official_split(wili_folder):
    wili = SMOKE.override(source="wili-2018")
    d = data.load_langid(wili_folder.parent, wili.override(languages=["en", "de"]))
    assert d.source == "wili-2018" and d.languages == ["eng", "deu"]
    assert d.x_train == ["english text one", "deutscher text eins", "english text two"]
    assert d.y_train.tolist() == [0, 1, 0] and d.y_test.tolist() == [0, 1]
    with pytest.raises(ValueError, match="available: \\['deu', 'eng', 'fra'\\]"):
        data.load_langid(wili_folder.parent, wili.override(languages=["eng", "nno"]))


def test_real_data_holds_the_default_languages(data_root):
    d = data.load_langid(data_root, SMOKE.override(source="auto", max_per_language=20))
    assert d.source == "langid-sentences" and len(d.languages) == 26
    assert all(tr == 16 and te == 4 for tr, te in d.counts().values())
