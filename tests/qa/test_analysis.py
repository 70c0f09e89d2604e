"""Error analysis helpers."""

from __future__ import annotations

from course_lib.qa.analysis import question_word


def test_question_word():
    assert question_word(["In", "which", "year", "?"]) == "which"
    assert question_word(["Name", "the", "team"]) == "other"
