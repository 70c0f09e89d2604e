"""Training tables and curves, error analysis helpers."""

from __future__ import annotations

from course_lib.core.training import History
from course_lib.qa.analysis import question_word, training_table


def test_question_word():
    assert question_word(["In", "which", "year", "?"]) == "which"
    assert question_word(["Name", "the", "team"]) == "other"


def test_training_table_puts_both_losses_per_pointer():
    history = History([{"epoch": 1, "train_loss": 16.0, "step_losses": [16.0],
                        "val_loss": 6.0, "val_exact_match": 10.0, "val_f1": 20.0}])
    table = training_table(history, terms=8, initial={"val_loss": 8.0, "val_exact_match": 0.0, "val_f1": 1.0})
    assert table.index.tolist() == [0, 1]
    assert table.loc[1, "train loss / pointer"] == 2.0 and table.loc[1, "val loss / pointer"] == 3.0
    assert table.loc[0, "val loss / pointer"] == 4.0 and table.loc[1, "val F1"] == 20.0
