"""course_lib.modularization.finetune: fine-tuning with fit, the safetensors cache and its key, and
the offline MiniLM."""

from __future__ import annotations

import torch

from course_lib.core.cache import key_path
from course_lib.core.io import jsonable, read_json
from course_lib.modularization import find_layers, fine_tune, finetune_key, load_classifier

from .tiny import CPU, SETTINGS, tiny_bert


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
