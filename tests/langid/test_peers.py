"""The language identifiers a user would install instead (course_lib.langid.peers), on a few sentences.

Each peer is an optional package: its tests run where it is installed (``pip install
lingua-language-detector py3langid pycld2``) and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.langid import peers

LANGUAGES = ["eng", "deu", "nld", "rus", "ukr", "heb", "zho", "fra"]
SENTENCES = [
    ("The committee will publish its report on the new railway line next week.", "eng"),
    ("Der Ausschuss wird seinen Bericht über die neue Bahnstrecke nächste Woche veröffentlichen.", "deu"),
    ("De commissie publiceert volgende week haar rapport over de nieuwe spoorlijn.", "nld"),
    ("Комитет опубликует свой доклад о новой железной дороге на следующей неделе.", "rus"),
    ("Комітет оприлюднить свою доповідь про нову залізницю наступного тижня.", "ukr"),
    ("הוועדה תפרסם את הדוח שלה על קו הרכבת החדש בשבוע הבא.", "heb"),
    ("委员会将于下周公布关于新铁路线的报告。", "zho"),
    ("Grâce à eux, le dialogue peut s\x92établir sur des bases scientifiques.", "fra"),  # a stray C1 code
]
TEXTS = [text for text, _ in SENTENCES]
LABELS = np.array([LANGUAGES.index(code) for _, code in SENTENCES])
MODULES = {"lingua": "lingua", "langid.py": "py3langid", "CLD2": "pycld2"}


@pytest.mark.parametrize("peer", peers.PEERS, ids=lambda p: p.name)
def test_each_peer_names_the_languages_of_clear_sentences(peer):
    pytest.importorskip(MODULES[peer.name],
                        reason=f"{peer.name} is not installed (pip install {peer.package})")
    answers = peer.predict(TEXTS, LANGUAGES)
    assert answers == [code for _, code in SENTENCES]  # ISO 639-3, CLD2's 'iw' read as Hebrew


def test_langid_py_chooses_only_among_the_languages():
    pytest.importorskip("py3langid", reason="langid.py is not installed (pip install py3langid)")
    # Danish, but Danish is not among the choices: the restricted model answers one of them
    assert peers.langid_py_predict(["Jeg kan ikke komme i morgen, desværre."], ["swe", "nno", "eng"])[0] in {
        "swe", "nno", "eng"}


def test_compare_with_peers_scores_ours_and_says_how_to_install_a_missing_one():
    def missing(texts, languages):
        peers._require("no_such_module_for_the_test", "no-such-package", "fake")

    def one_wrong(texts, languages):
        return ["deu"] + [code for _, code in SENTENCES[1:]]

    ours = LABELS.copy()
    ours[:2] = LANGUAGES.index("fra")  # two of eight wrong
    table = peers.compare_with_peers(TEXTS, LABELS, LANGUAGES, {"strong net": ours},
                                     peers=[peers.Peer("fake", "no-such-package", "-", missing),
                                            peers.Peer("almost", "numpy", "restricted", one_wrong)])
    assert list(table.index) == ["strong net", "fake", "almost"]
    assert table.loc["strong net", "accuracy"] == 0.75 and table.loc["strong net", "errors"] == 2
    assert math.isnan(table.loc["fake", "accuracy"]) and table["errors"].isna()["fake"]
    assert table.loc["fake", "note"] == "fake is not installed: pip install no-such-package"
    assert table.loc["almost", "accuracy"] == 7 / 8 and table.loc["almost", "errors"] == 1
    assert peers.comparison_lines(table, len(TEXTS)) == [
        "strong net  accuracy 0.7500, 2 errors of 8 (this workbook)",
        "fake        not installed (pip install no-such-package)",
        f"almost      accuracy 0.8750, 1 errors of 8 ({table.loc['almost', 'note']})"]
    note = table.loc["almost", "note"]
    assert note.startswith("numpy ") and note.endswith("restricted")
    with pytest.raises(ValueError, match="predictions of 'short'"):
        peers.compare_with_peers(TEXTS, LABELS, LANGUAGES, {"short": LABELS[:3]}, peers=[])
