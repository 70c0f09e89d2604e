"""Every profile's code path on the CPU at tiny size: the notebook's steps (fine-tuning, the modules of
every concern and method, the concern-blind baseline, the headline metrics) with the profile's settings,
except a few questions, one epoch and the tiny BERT, so that a GPU run of ``full`` meets no error a CPU
could have found."""

from __future__ import annotations

import pytest

from course_lib.modularization import (
    ASSIGNMENT,
    baseline_margins,
    encode,
    fine_tune,
    headline_metrics,
    modularize,
    per_class_sample,
)

from .tiny import CLASSES, CPU, synthetic_split, tiny_bert


@pytest.mark.parametrize("profile", sorted(ASSIGNMENT.profiles))
def test_profile_runs_at_tiny_size(profile, tokenizer, tmp_path):
    s = ASSIGNMENT.profiles[profile]
    layers = 2  # the tiny BERT's
    s = s.override(epochs=1, freeze_layers=min(s.freeze_layers, layers),
                   concerns=None if s.concerns is None else (0, 2))
    train, test = synthetic_split(36, 0), synthetic_split(15, 1)
    finetune_set = per_class_sample(train, s.train_per_class, seed=0)
    model = tiny_bert(tokenizer.vocab_size)
    result = fine_tune(model, encode(tokenizer, finetune_set, s.max_length),
                       encode(tokenizer, test, s.max_length), s, tmp_path, CPU, seed=0, data_digest="tiny",
                       progress=False)
    assert len(result.history) == 1 and not result.cached
    modules = modularize(model, tokenizer, train, test, s, device=CPU, seed=0, cca_components=3,
                         progress=False)
    concerns = list(CLASSES) if s.concerns is None else ["alpha", "gamma"]
    assert list(modules.table["concern"]) == concerns * len(s.methods)
    first = s.methods[0]
    blind = modularize(model, tokenizer, train, test, s.override(score="random", methods=(first,)),
                       device=CPU, seed=0, cca_components=3, progress=False)
    metrics = {**headline_metrics(modules, s.methods), **baseline_margins(modules, blind, first)}
    assert set(ASSIGNMENT.expected[profile]) <= set(metrics)
    assert metrics["sparsity"] == pytest.approx(s.sparsity_ratio, abs=0.01)
