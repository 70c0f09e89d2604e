"""course_lib.modularization.evaluation: concerns by name or index, the per-module evaluation and
the whole experiment on the tiny BERT."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from course_lib.modularization import (
    baseline_margins,
    encode,
    find_layers,
    headline_metrics,
    modularize,
    resolve_concerns,
)
from course_lib.modularization.evaluation import Modularization, evaluate_module, forward

from .tiny import CLASSES, CPU, SETTINGS


def test_resolve_concerns_accepts_names_and_indices():
    assert resolve_concerns(["gamma", 0], CLASSES) == [2, 0]
    assert resolve_concerns(None, CLASSES) == [0, 1, 2]
    with pytest.raises(ValueError, match="concerns holds 'delta', which is not a class.*alpha"):
        resolve_concerns(["delta"], CLASSES)


def test_unpruned_module_evaluates_as_the_original(tokenizer, trained):
    model, _, _, _, test = trained
    enc = encode(tokenizer, test, 10)
    outputs = forward(model, enc, CPU)
    layers = list(find_layers(model))
    row = evaluate_module(model, 1, CLASSES, outputs, outputs, layer_names=layers, seed=0,
                          cca_components=5).row
    assert row["accuracy"] == pytest.approx(float((outputs.predictions() == test.labels).mean()))
    for key in ("cca_concern", "linear_cka_concern", "kernel_cka_non_concern", "linear_cka_non_concern"):
        assert row[key] == pytest.approx(1.0, abs=1e-4)
    assert row["perplexity_pruned_concern"] == pytest.approx(row["perplexity_original_concern"])
    assert row["sparsity"] < 0.01


def test_modularize_table_has_one_row_per_module(tokenizer, trained):
    model, _, _, train, test = trained
    result = modularize(model, tokenizer, train, test, SETTINGS, device=CPU, seed=0, cca_components=5)
    table = result.table
    assert list(zip(table["method"], table["concern"], strict=True)) == [
        (m, c) for m in ("unstructured", "structured") for c in ("alpha", "gamma")
    ]
    assert table["sparsity"].between(0.49, 0.51).all()
    concern = result.concern_table()
    assert list(concern.columns[:3]) == ["method", "concern", "support"]
    assert (concern["support"] == 20).all()  # 60 test questions, 3 classes
    classes = result.original_classes()
    assert list(classes.index) == list(CLASSES) and classes["predicted"].sum() == 60
    assert classes.loc["alpha", "f1"] == pytest.approx(result.original_report["alpha"]["f1-score"])
    similarity = table.filter(regex="cka|cca")
    assert ((similarity > 0) & (similarity <= 1 + 1e-9)).all().all()
    assert result.original_report["accuracy"] >= 0.9
    assert set(result.modules["structured", "gamma"].sparsity) == set(find_layers(model))
    metrics = headline_metrics(result, SETTINGS.methods)
    assert metrics["sparsity"] == pytest.approx(table[table["method"] == "unstructured"]["sparsity"].mean())
    assert metrics["structured_mean_concern_recall"] == pytest.approx(
        table[table["method"] == "structured"]["concern_recall"].mean())
    assert metrics["concern_f1_minus_original"] == pytest.approx(
        metrics["mean_concern_f1"] - metrics["mean_original_concern_f1"])


def test_forward_sorted_and_trimmed_matches_one_padded_batch(tokenizer, trained):
    model, _, _, _, test = trained
    enc = encode(tokenizer, test, 10)
    enc = {k: torch.nn.functional.pad(v, (0, 4)) if v.ndim == 2 else v for k, v in enc.items()}  # padding
    outputs = forward(model, enc, CPU, batch_size=7)
    with torch.no_grad():
        whole = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                      output_hidden_states=True)
    assert torch.allclose(outputs.logits, whole.logits, atol=1e-5)
    mask = enc["attention_mask"].bool()
    assert torch.allclose(outputs.tokens(), whole.hidden_states[-1][mask], atol=1e-5)
    assert outputs.hidden.shape == whole.hidden_states[-1].shape and (outputs.hidden[~mask] == 0).all()


def _result(concerns, f1, recall=0.5, accuracy=0.6, method="unstructured"):
    table = pd.DataFrame({"method": method, "concern": concerns, "concern_f1": f1, "concern_recall": recall,
                          "accuracy": accuracy})
    return Modularization(table, {}, {}, {})


def test_baseline_margins_against_the_random_modules():
    ours = _result(["alpha", "gamma"], [0.8, 0.6], recall=[0.9, 0.7])
    blind = _result(["alpha", "gamma"], [0.3, 0.5], recall=0.4, accuracy=0.2)
    margins = baseline_margins(ours, blind, "unstructured")
    assert margins == pytest.approx({"mean_random_concern_f1": 0.4, "mean_random_concern_recall": 0.4,
                                     "mean_random_accuracy": 0.2, "concern_f1_minus_random": 0.3,
                                     "concern_recall_minus_random": 0.4})


@pytest.mark.parametrize("blind", [
    _result(["gamma", "alpha"], [0.3, 0.5]),  # the same concerns in another order
    _result(["alpha"], [0.3]),  # fewer concerns
    _result(["alpha", "gamma"], [0.3, 0.5], method="structured"),  # another method: nothing to compare
])
def test_baseline_margins_refuse_other_concerns(blind):
    with pytest.raises(ValueError, match="prune the same concerns"):
        baseline_margins(_result(["alpha", "gamma"], [0.8, 0.6]), blind, "unstructured")
