"""Fault injection for assignment 05: bad knobs, corrupt topic files, damaged or stale fine-tuned
weights, a killed fine-tuning, a diverging one. Each trial ends in a clear error or the right result."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import course_lib.core.training as training
from course_lib.core.cache import key_path
from course_lib.core.data.registry import DATASETS, DatasetSpec
from course_lib.core.runs import start_run
from course_lib.core.training import TrainingDiverged
from course_lib.modularization import ASSIGNMENT, dataset_digest, encode, fine_tune, load_topics
from course_lib.modularization import finetune as finetune_module
from course_lib.modularization.finetune import CHECKPOINT_FILE, WEIGHTS_FILE

from .tiny import CPU, SETTINGS, synthetic_split, tiny_bert

SMALL = SETTINGS.override(epochs=2)
"""Two epochs of the tiny BERT: each rebuild below takes about a second."""


def _losses(history):
    return [(e["train_loss"], e["test_accuracy"]) for e in history]


def _run(tokenizer, out, settings=SMALL, n_train=60, log=print):
    model = tiny_bert(tokenizer.vocab_size)
    train = encode(tokenizer, synthetic_split(n_train, 0), 10)
    test = encode(tokenizer, synthetic_split(30, 1), 10)
    return model, fine_tune(model, train, test, settings, out, CPU, seed=0, data_digest="v1", progress=False,
                            log=log)


@pytest.fixture(scope="module")
def fresh(tokenizer, tmp_path_factory):
    """The tiny BERT fine-tuned with SMALL into a folder of its own: ``(folder, result)``."""
    out = tmp_path_factory.mktemp("small")
    return out, _run(tokenizer, out)[1]


# -- knobs -----------------------------------------------------------------------------------------


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("knob, value, message", [
    ("sparsity_ratio", 1.5, r"sparsity_ratio=1\.5"),
    ("methods", ["magic"], r"methods='magic'.*unstructured"),
    ("freeze_layers", -1, r"freeze_layers=-1"),
])
def test_bad_knob_values_stop_the_run_before_anything_is_written(tmp_path, knob, value, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        start_run(ASSIGNMENT, {"profile": "smoke", "output_dir": str(out), knob: value})
    assert not out.exists()


# -- corrupt topic files ---------------------------------------------------------------------------

YAHOO_ROW = {"id": "x", "title": "Who won?", "content": "the match", "label": "sports"}


def _yahoo_folder(tmp_path, monkeypatch, test_bytes: bytes):
    """A Yahoo-format folder (own data: no registered checksums) whose test.jsonl holds ``test_bytes``."""
    monkeypatch.setitem(DATASETS, "yahoo-answers-topics",
                        DatasetSpec("yahoo-answers-topics", "own", ("train_*.jsonl", "test.jsonl")))
    folder = tmp_path / "yahoo-answers-topics"
    folder.mkdir()
    (folder / "train_0.jsonl").write_text(json.dumps(YAHOO_ROW) + "\n", encoding="utf-8")
    (folder / "test.jsonl").write_bytes(test_bytes)
    return folder


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("line3, message", [
    (b'{"title": "cut', r"test\.jsonl:3:\d+: malformed JSON line"),
    ('{"title": "caf\u00e9"}'.encode("latin-1"), r"test\.jsonl:3: not UTF-8"),
    (json.dumps({"title": "t", "label": "sports"}).encode(),
     r"test\.jsonl:3: field\(s\) \['content'\] missing"),
    (json.dumps({**YAHOO_ROW, "label": "cooking"}).encode(),
     r"test\.jsonl:3: label 'cooking' is not a class.*valid labels: \['society & culture',"),
    (b"[1, 2]", r"test\.jsonl:3: expected a JSON object with fields \['title', 'content', 'label'\]"),
])
def test_corrupt_yahoo_line_names_file_and_line(tmp_path, monkeypatch, line3, message):
    good = json.dumps(YAHOO_ROW).encode()
    folder = _yahoo_folder(tmp_path, monkeypatch, good + b"\n\n" + line3 + b"\n" + good + b"\n")
    assert len(load_topics("yahoo-answers-topics", "train", tmp_path)) == 1
    with pytest.raises(ValueError, match=message) as err:
        load_topics("yahoo-answers-topics", "test", tmp_path)
    assert str(folder / "test.jsonl") in str(err.value)


def _ag_folder(tmp_path, monkeypatch, rows: str):
    spec = DatasetSpec("ag-news", "own", ("train.json", "test.json", "labels.json"))
    monkeypatch.setitem(DATASETS, "ag-news", spec)
    folder = tmp_path / "ag-news"
    folder.mkdir()
    (folder / "labels.json").write_text('["World", "Sports"]', encoding="utf-8")
    (folder / "train.json").write_text(rows, encoding="utf-8")
    (folder / "test.json").write_text("[]", encoding="utf-8")
    return folder


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("rows, message", [
    ('[{"label": "World",\n "sentence": "Title: a', r"train\.json:2:\d+: malformed JSON"),
    ('[{"label": "World", "sentence": "Title: a"}, {"label": "World"}]',
     r"train\.json: record 2: field\(s\) \['sentence'\] missing"),
    ('[{"label": "Weather", "sentence": "Title: a"}]',
     r"train\.json: record 1: label 'Weather' is not a class.*valid labels: \['World', 'Sports'\]"),
    ('{"label": "World"}', r"train\.json: expected a JSON list of records"),
])
def test_corrupt_ag_news_file_names_file_and_record(tmp_path, monkeypatch, rows, message):
    _ag_folder(tmp_path, monkeypatch, rows)
    with pytest.raises(ValueError, match=message):
        load_topics("ag-news", "train", tmp_path)


@pytest.mark.fault("recovery")
def test_edited_data_of_the_same_size_and_time_gets_another_digest(tmp_path, monkeypatch):
    """The key holds the files' contents: an edit that keeps size and mtime still retrains."""
    folder = _ag_folder(tmp_path, monkeypatch, '[{"label": "World", "sentence": "Title: a"}]')
    before = dataset_digest("ag-news", tmp_path)
    path = folder / "train.json"
    stat = path.stat()
    path.write_text(path.read_text().replace("World", "Sport"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert dataset_digest("ag-news", tmp_path) != before


# -- the fine-tuned weights cache ------------------------------------------------------------------


def _damage(out, fault, tokenizer, monkeypatch):
    weights = out / WEIGHTS_FILE
    if fault == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif fault == "wrong_shapes":  # well-formed, of the right key, but another model's tensors
        other = tiny_bert(tokenizer.vocab_size + 3).state_dict()
        save_file({k: v.contiguous() for k, v in other.items()}, str(weights),
                  metadata={"history": "[{}, {}]"})
    elif fault == "no_history":
        save_file(load_file(str(weights)), str(weights))
    elif fault == "other_settings":  # the meta JSON says the weights were made with another lr
        record = json.loads(key_path(weights).read_text())
        record["key"]["settings"]["lr"] = 1e-3
        key_path(weights).write_text(json.dumps(record))
    else:  # the package's code was edited since
        monkeypatch.setattr(finetune_module, "code_digest", lambda *packages: "edited")


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("fault, notice", [
    ("truncated", "is damaged (SafetensorError"),
    ("wrong_shapes", "is damaged (ValueError: finetuned.safetensors: bert.embeddings.word_embeddings.weight"),
    ("no_history", "is damaged (ValueError: finetuned.safetensors: the recorded history"),
    ("other_settings", "was made by other settings, data or code"),
    ("other_code", "was made by other settings, data or code"),
])
def test_damaged_or_stale_weights_are_rebuilt_never_served(tokenizer, fresh, tmp_path, monkeypatch, fault,
                                                           notice):
    source, first = fresh
    out = tmp_path / "out"
    shutil.copytree(source, out)
    _damage(out, fault, tokenizer, monkeypatch)
    notes: list[str] = []
    model, again = _run(tokenizer, out, log=notes.append)
    assert len(notes) == 1 and notice in notes[0] and notes[0].endswith("rebuilding it"), notes
    assert not again.cached and _losses(again.history) == _losses(first.history)
    rebuilt, original = load_file(str(out / WEIGHTS_FILE)), load_file(str(source / WEIGHTS_FILE))
    assert rebuilt.keys() == original.keys() and all(torch.equal(rebuilt[k], original[k]) for k in rebuilt)
    assert all(torch.equal(v, rebuilt[k]) for k, v in model.state_dict().items())
    served = _run(tokenizer, out, log=notes.append)[1]
    assert served.cached and len(notes) == 1  # the rebuilt weights are served from now on


# -- killed, diverging -----------------------------------------------------------------------------


def _kill_after_first_epoch(monkeypatch, saved: list[int] | None = None):
    """Make ``fit`` die right after writing epoch 1's checkpoint (and record the epochs saved)."""
    real = training.save_checkpoint

    def save_then_die(path, state):
        real(path, state)
        if saved is not None:
            saved.append(state["epoch"])
        if state["epoch"] == 1:
            raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)


@pytest.mark.fault("recovery")
def test_killed_fine_tuning_resumes_exactly(tokenizer, trained, tmp_path, monkeypatch):
    """Killed after epoch 1 of 6, then called again: the same history, weights and accuracy as the
    uninterrupted run (the ``trained`` fixture); the checkpoint is deleted once the weights are saved."""
    _, straight, straight_dir, _, _ = trained
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            _run(tokenizer, out, SETTINGS, n_train=240)
    assert (out / CHECKPOINT_FILE).exists() and not (out / WEIGHTS_FILE).exists()
    saved: list[int] = []
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m, saved)
        model, resumed = _run(tokenizer, out, SETTINGS, n_train=240)
    assert saved == [2, 3, 4, 5, 6], "did not resume after epoch 1"
    assert [e["epoch"] for e in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert _losses(resumed.history) == _losses(straight.history)
    assert resumed.history[-1]["test_accuracy"] == straight.history[-1]["test_accuracy"] >= 0.9
    expected = load_file(str(straight_dir / WEIGHTS_FILE))
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert not (out / CHECKPOINT_FILE).exists()


@pytest.mark.fault("recovery")
def test_checkpoint_of_other_settings_is_not_resumed(tokenizer, fresh, tmp_path, monkeypatch, capsys):
    _, first = fresh
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            _run(tokenizer, out, SMALL.override(lr=1e-3))
    capsys.readouterr()
    again = _run(tokenizer, out)[1]
    assert "training from the start" in capsys.readouterr().out
    assert _losses(again.history) == _losses(first.history)


@pytest.mark.fault("clear_error")
def test_huge_learning_rate_stops_with_training_diverged(tokenizer, tmp_path):
    """AdamW (the one optimizer) with lr=1e3: the loss passes 3 log(3) and nothing is cached."""
    with pytest.raises(TrainingDiverged, match=r"limit 3\.296.*lower the learning rate"):
        _run(tokenizer, tmp_path, SMALL.override(lr=1e3))
    assert not (tmp_path / WEIGHTS_FILE).exists()


@pytest.mark.fault("recovery")
def test_killed_scheduled_fine_tuning_resumes_exactly(tokenizer, tmp_path, monkeypatch):
    """With the warm-up / decay schedule and length pools (what ``laptop`` and ``full`` use), a run
    killed after epoch 1 of 3 resumes to the uninterrupted run's history and weights."""
    settings = SMALL.override(epochs=3, lr_schedule="linear", warmup_ratio=0.2, length_pool=2)
    straight, first = _run(tokenizer, tmp_path / "straight", settings)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _kill_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            _run(tokenizer, out, settings)
    model, resumed = _run(tokenizer, out, settings)
    assert _losses(resumed.history) == _losses(first.history)
    assert [e["lr"] for e in resumed.history] == [e["lr"] for e in first.history]
    assert all(torch.equal(v, straight.state_dict()[k]) for k, v in model.state_dict().items())


# -- the pretrained model ------------------------------------------------------------------------------


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("files, lacks", [
    ((), "config.json, weights, a tokenizer missing; it holds nothing"),
    (("config.json", "notes.txt"), "weights, a tokenizer missing; it holds ['config.json', 'notes.txt']"),
    (("config.json", "model.safetensors"), "a tokenizer missing"),
])
def test_a_model_folder_without_a_model_is_named(tmp_path, files, lacks):
    folder = tmp_path / "my-bert"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("{}")
    with pytest.raises(FileNotFoundError) as err:
        finetune_module.load_classifier(str(folder), num_labels=10)
    text = str(err.value)
    assert f"model_name='{folder}': the folder {folder} holds no model ({lacks}" in text
    assert "save_pretrained" in text and "'minilm' (offline)" in text


@pytest.mark.fault("clear_error")
def test_a_model_path_that_is_no_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"model_name='./bert-tiny': there is no folder "
                                                rf"{tmp_path}/bert-tiny"):
        finetune_module.finetune_key(SMALL.override(model_name="./bert-tiny"), 0, "v1")
