"""course_lib.modularization.finetune: fine-tuning with fit, the safetensors cache and its key, and
the offline MiniLM."""

from __future__ import annotations

import pytest
import torch

from course_lib.core.cache import key_path
from course_lib.core.io import jsonable, read_json
from course_lib.modularization import encode, find_layers, fine_tune, finetune_key, load_classifier
from course_lib.modularization.finetune import lr_factor

from .tiny import CPU, SETTINGS, synthetic_split, tiny_bert


def test_fine_tune_learns_and_is_cached(tokenizer, trained):
    model, result, out, _, _ = trained
    assert not result.cached and result.weights_path.exists()
    assert result.weights_path.name == "finetuned.safetensors"
    assert read_json(key_path(result.weights_path)) == {"key": jsonable(finetune_key(SETTINGS, 0, "v1"))}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "a temporary file was left"
    assert result.history[-1]["test_accuracy"] >= 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    steps = len(range(0, 240, SETTINGS.batch_size))  # per-step losses, one list per epoch
    assert [len(e["step_losses"]) for e in result.history] == [steps] * SETTINGS.epochs
    assert result.history[0]["step_losses"][0] > result.history[-1]["step_losses"][-1]
    assert all(p.requires_grad for p in model.parameters())
    again = tiny_bert(tokenizer.vocab_size)
    hit = fine_tune(again, {}, {}, SETTINGS, out, CPU, seed=0, data_digest="v1",
                    progress=False)  # no data needed on a cache hit
    assert hit.cached and hit.history == result.history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                   strict=True))


def test_finetune_key_depends_on_what_shapes_the_weights_only():
    key = finetune_key(SETTINGS, 0, "v1")
    assert finetune_key(SETTINGS.override(lr=3e-3), 0, "v1") == key  # the same settings, the same key
    assert finetune_key(SETTINGS.override(sparsity_ratio=0.3, methods=["structured"]), 0, "v1") == key
    assert finetune_key(SETTINGS.override(score="wanda", negative_weight=1.0, num_samples=4), 0, "v1") == key
    assert finetune_key(SETTINGS.override(lr=1e-3), 0, "v1") != key
    assert finetune_key(SETTINGS.override(freeze_layers=1), 0, "v1") != key
    for knob, value in (("lr_schedule", "linear"), ("warmup_ratio", 0.1), ("length_pool", 4)):
        assert finetune_key(SETTINGS.override(**{knob: value}), 0, "v1") != key, knob
    assert finetune_key(SETTINGS, 1, "v1") != key
    assert finetune_key(SETTINGS, 0, "v2") != key
    assert finetune_key(SETTINGS.override(model_name="prajjwal1/bert-tiny"), 0, "v1") != key
    assert set(key) == {"settings", "seed", "data", "pretrained", "code"}


def test_minilm_loads_offline_quietly(capfd):
    tokenizer, model = load_classifier("minilm", num_labels=4)
    assert model.config.hidden_size == 384 and model.config.num_labels == 4
    assert len(find_layers(model)) == 12
    assert not model.training
    captured = capfd.readouterr()
    assert captured.err == "", captured.err


def test_finetune_code_leaves_out_the_pruning_and_similarity_exercises():
    from course_lib.modularization.finetune import FINETUNE_CODE

    assert "course_lib.modularization.finetune" in FINETUNE_CODE
    assert not any(m.endswith(("pruning", "similarity")) or m == "course_lib.modularization"
                   for m in FINETUNE_CODE)


def test_lr_factor_warms_up_then_holds_or_decays_linearly():
    assert [lr_factor(s, 10, 0, "constant") for s in range(10)] == [1.0] * 10
    assert [lr_factor(s, 10, 3, "constant") for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    linear = [lr_factor(s, 10, 3, "linear") for s in range(10)]
    assert linear[:4] == [0.25, 0.5, 0.75, 1.0]
    assert linear[3:] == pytest.approx([7 / 7, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7])  # never 0
    with pytest.raises(ValueError, match="lr_schedule='cosine'"):
        lr_factor(0, 10, 0, "cosine")


def test_the_schedule_is_stepped_every_batch(tokenizer, tmp_path):
    settings = SETTINGS.override(epochs=2, lr_schedule="linear", warmup_ratio=0.25, length_pool=2)
    model = tiny_bert(tokenizer.vocab_size)
    train, test = encode(tokenizer, synthetic_split(48, 0), 10), encode(tokenizer, synthetic_split(12, 1), 10)
    result = fine_tune(model, train, test, settings, tmp_path, CPU, seed=0, data_digest="v1", progress=False)
    # 3 batches of 16 per epoch, 6 steps, 2 of warm-up: the last epoch ends at lr * factor(step 6)
    assert [len(e["step_losses"]) for e in result.history] == [3, 3]
    assert result.history[0]["lr"] == pytest.approx(settings.lr * lr_factor(3, 6, 2, "linear"))
    assert result.history[1]["lr"] == pytest.approx(settings.lr * lr_factor(6, 6, 2, "linear"))
