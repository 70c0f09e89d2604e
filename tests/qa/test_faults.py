"""Fault injection on assignment 04: bad knobs, corrupt SQuAD files, stale or damaged checkpoints, a
killed training run, a diverging one. Each trial ends in a clear error or in the right result."""

from __future__ import annotations

import json
import re

import pytest
import torch

import course_lib.core.training as training
import course_lib.qa.pipeline as pipeline
from course_lib.core.runs import start_run
from course_lib.core.training import TrainingDiverged, load_checkpoint
from course_lib.qa.batching import encode
from course_lib.qa.config import ASSIGNMENT, READER_KINDS
from course_lib.qa.data import load_split, load_squad
from course_lib.qa.pipeline import make_reader, train_reader
from tests.qa.sample import TINY, train_tiny


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("knobs, error, message", [
    ({"max_iters": 0}, ValueError, r"max_iters=0 is not valid; it must be >= 1"),
    ({"dropout": 1.0}, ValueError, r"dropout=1\.0 is not valid; it must be < 1"),
    ({"lr": 0}, ValueError, r"lr=0(\.0)? is not valid; it must be > 0"),
    ({"train_window": "48"}, TypeError, r"train_window='48'"),
])
def test_bad_knob_values_stop_the_run_before_anything_is_written(tmp_path, knobs, error, message):
    with pytest.raises(error, match=message):
        start_run(ASSIGNMENT, {"output_dir": str(tmp_path / "out"), "device": "cpu", **knobs})
    assert not (tmp_path / "out").exists()


def _squad(qa: dict | None = None, paragraph: dict | None = None, article: dict | None = None) -> dict:
    qa = {"id": "q1", "question": "Which city?", "answers": [{"text": "Paris", "answer_start": 0}],
          **(qa or {})}
    paragraph = {"context": "Paris is big.", "qas": [qa], **(paragraph or {})}
    return {"data": [{"title": "t", "paragraphs": [paragraph], **(article or {})}]}


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("content, message", [
    (json.dumps(_squad())[:40], r"squad\.json:1:41: malformed JSON"),
    (b'{"data": [{"title": "caf\xe9", "paragraphs": []}]}',
     r"squad\.json:1: not UTF-8 text \(invalid continuation byte at byte 24\)"),
    ({"version": "1.1"}, r"squad\.json: not a SQuAD file \(expected a JSON object with a 'data' list\)"),
    ({"data": [{"title": "t"}]}, r"squad\.json: data\[0\] has no field 'paragraphs'"),
    (_squad(paragraph={"context": 3}), r"data\[0\]\.paragraphs\[0\]\.context must be a str, got int"),
    ({"data": [{"paragraphs": [{"context": "x"}]}]}, r"data\[0\]\.paragraphs\[0\] has no field 'qas'"),
    ({"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q", "question": "?"}]}]}]},
     r"data\[0\]\.paragraphs\[0\]\.qas\[0\] has neither 'answers' \(official\) nor 'answer'"),
    (_squad(qa={"answers": [{"text": "Paris"}]}),
     r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\] has no field 'answer_start'"),
    (_squad(qa={"id": 7}), r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.id must be a str, got int"),
])
def test_corrupt_squad_files_name_the_file_and_the_place(tmp_path, content, message):
    path = tmp_path / "squad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        load_squad(path)
    assert str(path) in str(err.value)


@pytest.mark.fault("clear_error")
def test_a_truncated_dev_file_in_an_own_folder_names_the_file(tmp_path, monkeypatch):
    from course_lib.core.data.registry import DATASETS, DatasetSpec

    # the user's own copy of the data: a registry entry without the published file's checksum
    monkeypatch.setitem(DATASETS, "squad-v1.1", DatasetSpec("squad-v1.1", "own", ("dev-v1.1.json",)))
    dev = tmp_path / "squad-v1.1" / "dev-v1.1.json"
    dev.parent.mkdir()
    dev.write_text(json.dumps(_squad())[:-3], encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{dev}:1:") + r"\d+: malformed JSON"):
        load_split(tmp_path, TINY, use_official_train=False)


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("kind", READER_KINDS)
def test_killed_training_resumes_exactly(dev_sample, tmp_path, monkeypatch, capsys, kind):
    straight = train_tiny(dev_sample, kind, tmp_path / "straight")
    real = training.save_checkpoint

    def killed_after_epoch_1(path, state):
        real(path, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(training, "save_checkpoint", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(dev_sample, kind, tmp_path / "killed")
    monkeypatch.setattr(training, "save_checkpoint", real)
    written = load_checkpoint(straight.checkpoint.parent.parent / "killed" / straight.checkpoint.name)
    assert written["epoch"] == 1
    resumed = train_tiny(dev_sample, kind, tmp_path / "killed")
    assert capsys.readouterr().out == ""  # resumed silently
    resumed_first = {k: v for k, v in resumed.history.epochs[0].items() if k != "kept"}  # added after fit
    assert resumed_first == written["history"][0]  # epoch 1 came from the checkpoint
    assert resumed.history.column("train_loss") == straight.history.column("train_loss")
    assert resumed.history.column("lr") == straight.history.column("lr")
    assert resumed.scores == straight.scores


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("fault", ["edited_code", "other_data", "truncated", "other_shapes"])
def test_stale_or_damaged_checkpoints_are_retrained_not_served(dev_sample, tmp_path, monkeypatch, capsys,
                                                                fault):
    fresh = train_tiny(dev_sample, "dcn", tmp_path / "fresh")
    folder = tmp_path / "run"
    old = train_tiny(dev_sample, "dcn", folder, data_digest="other data" if fault == "other_data" else None)
    if fault == "edited_code":  # a student fixed coattention after training
        monkeypatch.setattr(pipeline, "code_digest", lambda *packages: "edited")
    elif fault == "truncated":
        old.checkpoint.write_bytes(old.checkpoint.read_bytes()[:200])
    elif fault == "other_shapes":  # well-formed, with the right key, of a smaller reader
        state = load_checkpoint(old.checkpoint)
        torch.manual_seed(0)
        smaller = make_reader("dcn", torch.randn(len(dev_sample.vocab), 8), TINY.override(hidden=4))
        state["model"] = smaller.state_dict()
        training.save_checkpoint(old.checkpoint, state)
    capsys.readouterr()
    again = train_tiny(dev_sample, "dcn", folder)
    expected = {"edited_code": "was made by other settings, data or code",
                "other_data": "was made by other settings, data or code",
                "truncated": "is damaged", "other_shapes": "does not fit this model"}[fault]
    notice = capsys.readouterr().out
    assert notice.count("\n") == 1, notice  # one line, not a traceback
    assert expected in notice and "training from the start" in notice
    assert again.checkpoint == old.checkpoint  # the same file, overwritten with the new key
    assert load_checkpoint(again.checkpoint)["key"] == again.key
    assert again.history.column("epoch_time_s") != old.history.column("epoch_time_s")  # retrained
    assert again.history.column("train_loss") == fresh.history.column("train_loss")
    assert again.scores == fresh.scores
    if fault == "edited_code":
        assert again.key == {**old.key, "code": "edited"}


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("kind, lr, limit", [("dcn", 3.0, "38.14"), ("bilstm", 100.0, "19.07")])
def test_a_huge_learning_rate_stops_with_training_diverged(dev_sample, kind, lr, limit):
    # limit: rounds (2 for this DCN, 1 for the BiLSTM) x 2 x divergence_limit(24 tokens)
    settings = TINY.override(lr=lr)
    torch.manual_seed(0)
    model = make_reader(kind, torch.randn(len(dev_sample.vocab), 8), settings)
    encoded = encode(dev_sample.examples, dev_sample.index, window=dev_sample.window, seed=0)
    with pytest.raises(TrainingDiverged, match=rf"limit {limit}\); lower the learning rate"):
        train_reader(model, encoded, settings, kind=kind, device="cpu")


@pytest.mark.fault("clear_error")
def test_a_checkpoint_needs_its_key(dev_sample, tmp_path):
    model = make_reader("dcn", torch.randn(len(dev_sample.vocab), 8), TINY)
    with pytest.raises(ValueError, match=r"checkpoint_path needs its checkpoint_key"):
        train_reader(model, [], TINY, kind="dcn", device="cpu", checkpoint_path=tmp_path / "dcn.pt")
    key = pipeline.checkpoint_key("bilstm", TINY, seed=0, data_digest="d", embeddings_digest="e")
    with pytest.raises(ValueError, match=r"checkpoint_key is for reader 'bilstm', not 'dcn'"):
        train_reader(model, [], TINY, kind="dcn", device="cpu", checkpoint_path=tmp_path / "dcn.pt",
                     checkpoint_key=key)
    assert not list(tmp_path.iterdir())
