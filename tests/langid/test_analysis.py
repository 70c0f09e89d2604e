"""Assignment 01 analysis: predictions as ISO codes, per-language report, confusions and examples."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.langid import analysis


def test_predict_language_names_codes_and_refuses_bad_input(real_pipeline, small_real):
    codes = analysis.predict_language(real_pipeline, ["Die Regierung hat heute ein neues Gesetz beschlossen.",
                                                      "Сегодня правительство приняло новый закон."],
                                      small_real.languages)
    assert codes == ["deu", "rus"]
    assert analysis.predict_language(real_pipeline, "The government passed a new law today.",
                                     small_real.languages) == ["eng"]
    with pytest.raises(ValueError, match="texts\\[1\\] is empty"):
        analysis.predict_language(real_pipeline, ["hello", "  "], small_real.languages)
    with pytest.raises(TypeError, match="texts\\[0\\] is a int"):
        analysis.predict_language(real_pipeline, [42], small_real.languages)
    with pytest.raises(TypeError, match="got int"):
        analysis.predict_language(real_pipeline, 42, small_real.languages)


def test_confusions_report_and_examples():
    langs = ["dan", "nno", "swe"]
    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1, 2, 1])
    pairs = analysis.most_confused_pairs(y_true, y_pred, langs, top=5)
    assert pairs.iloc[0].tolist() == ["dan", "nno", 2, 0.667]
    assert len(pairs) == 3
    texts = [f"t{i}" for i in range(8)]
    assert analysis.confused_examples(texts, y_true, y_pred, langs, "dan", "nno") == ["t1", "t2"]
    with pytest.raises(ValueError, match="'nob' is not among"):
        analysis.confused_examples(texts, y_true, y_pred, langs, "nob", "nno")
    report = analysis.per_language_report(y_true, y_pred, langs)
    assert report.loc["swe", "precision"] == 1.0 and report.loc["swe", "recall"] == 0.5
    assert report.index[0] == "dan"  # worst F1 first
