"""Assignment 03 fault trials: bad knobs, killed and stale checkpoints, damaged caches and run files,
diverging optimizers, text that is not UTF-8.

A checkpoint, the corpus cache and a finished grid run are served only for their key (settings, seed,
corpus, embeddings, device, code); anything stale or damaged is rebuilt, with a one-line notice.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from course_lib.core import training
from course_lib.core.cache import key_path
from course_lib.core.io import atomic_write_json
from course_lib.core.runs import start_run
from course_lib.core.training import TrainingDiverged, load_checkpoint
from course_lib.lm import data
from course_lib.lm.compare import compare_runs
from course_lib.lm.config import ASSIGNMENT
from course_lib.lm.data import PARTS, LMCorpus, load_wikitext2
from course_lib.lm.train import OPTIMIZERS, checkpoint_key, train_language_model
from tests.lm.synthetic import RANDOM, tiny, tiny_grid


class Killed(Exception):
    """Stands for the process being killed."""


def _train(corpus, run_dir, seed=0, **values):
    settings = tiny(checkpoint=True, **values)
    return train_language_model(settings, corpus, RANDOM, device="cpu", run_dir=run_dir, seed=seed,
                                progress=False)


def _numbers(result):
    """What a resumed or rebuilt run must reproduce exactly (times and throughput aside)."""
    keys = ("train_loss", "train_ppl", "valid_loss", "valid_ppl")
    losses = [tuple(e[k] for k in keys) for e in result.history.epochs]
    metrics = {k: result.metrics[k] for k in ("valid_ppl", "best_valid_ppl", "test_ppl", "train_ppl",
                                              "epochs")}
    return losses, metrics


def _record_saves(monkeypatch, real=training.save_checkpoint) -> list[int]:
    """The epochs whose checkpoint is written from now on (the real ``save_checkpoint`` still runs)."""
    epochs = []

    def save(path, state):
        real(path, state)
        epochs.append(state["epoch"])

    monkeypatch.setattr(training, "save_checkpoint", save)
    return epochs


@pytest.fixture
def saved_epochs(monkeypatch) -> list[int]:
    return _record_saves(monkeypatch)


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("knobs", "message"), [
    ({"epochs": 0}, r"epochs=0 is not valid; it must be >= 1"),
    ({"optimizer": "rmsprop"}, r"optimizer='rmsprop' is not valid; choose one of \['adam', 'adamw', 'sgd', "
                               r"'momentum'\]"),
    ({"lr": -1.0}, r"lr=-1.0 is not valid; it must be > 0"),
])
def test_start_run_refuses_bad_knobs(tmp_path, knobs, message):
    with pytest.raises(ValueError, match=message):
        start_run(ASSIGNMENT, {"device": "cpu", "output_dir": str(tmp_path / "out"), **knobs})
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("knobs", [dict(model="lstm"), dict(model="gpt1"),
                                   dict(model="lstm", stateful_training=True, optimizer="sgd", lr=10.0,
                                        lr_plateau_factor=4.0, epochs=4)],
                         ids=["lstm", "gpt1", "lstm-stateful"])
def test_killed_run_resumes_exactly(cyclic, tmp_path, monkeypatch, capsys, knobs):
    values = dict(epochs=3, dropout=0.1) | knobs  # dropout draws from the global generator
    straight = _train(cyclic, tmp_path / "straight", **values)
    real = training.save_checkpoint

    def killed_after_epoch_1(path, state):
        real(path, state)
        raise Killed(f"killed after epoch {state['epoch']}")

    monkeypatch.setattr(training, "save_checkpoint", killed_after_epoch_1)
    with pytest.raises(Killed, match="after epoch 1"):
        _train(cyclic, tmp_path / "killed", **values)
    saved = _record_saves(monkeypatch, real)
    resumed = _train(cyclic, tmp_path / "killed", **values)
    assert saved == list(range(2, values["epochs"] + 1))  # resumed at epoch 2
    assert "training from the start" not in capsys.readouterr().out
    assert _numbers(resumed) == _numbers(straight)
    if "lr_plateau_factor" in knobs:  # the schedule's state came back too: lr / 4 after epoch 3
        assert resumed.history.column("lr") == straight.history.column("lr") == [10.0, 10.0, 10.0, 2.5]


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("change", ["lr", "seed", "code", "corpus"])
def test_rerun_with_another_key_retrains(cyclic, tmp_path, monkeypatch, capsys, saved_epochs, change):
    first = _train(cyclic, tmp_path / "run", epochs=2)
    assert saved_epochs == [1, 2]
    again = _train(cyclic, tmp_path / "run", epochs=2)  # same key: served, nothing trained
    assert saved_epochs == [1, 2] and _numbers(again) == _numbers(first)
    corpus, values, seed = cyclic, dict(epochs=2), 0
    if change == "lr":
        values["lr"] = 3e-3
    elif change == "seed":
        seed = 1
    elif change == "code":  # an edited exercise
        monkeypatch.setattr("course_lib.lm.train.code_digest", lambda *packages: "edited")
    else:
        corpus = dataclasses.replace(cyclic, train=cyclic.train.roll(1))
    capsys.readouterr()
    rerun = _train(corpus, tmp_path / "run", seed=seed, **values)
    assert "made by other settings, data or code; training from the start" in capsys.readouterr().out
    assert saved_epochs == [1, 2, 1, 2]
    assert _numbers(rerun) == _numbers(_train(corpus, tmp_path / "fresh", seed=seed, **values))
    if change != "code":
        assert _numbers(rerun) != _numbers(first)  # new numbers, not the first run's
    stored = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["key"]
    assert stored == checkpoint_key(tiny(checkpoint=True, **values), corpus, RANDOM, seed=seed, device="cpu")


@pytest.mark.fault("recovery")
@pytest.mark.parametrize(("damage", "notice"), [("truncate", "is damaged"), ("garbage", "is damaged"),
                                                 ("wrong_shapes", "does not fit this model")])
def test_damaged_checkpoint_is_ignored(cyclic, tmp_path, capsys, saved_epochs, damage, notice):
    fresh = _train(cyclic, tmp_path / "fresh", epochs=2)
    _train(cyclic, tmp_path / "run", epochs=2)
    path = tmp_path / "run" / "checkpoint.pt"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        state = load_checkpoint(path)
        state["model"][next(iter(state["model"]))] = torch.zeros(3)  # well-formed, same key, wrong shape
        torch.save(state, path)
    capsys.readouterr()
    saved_epochs.clear()
    rerun = _train(cyclic, tmp_path / "run", epochs=2)
    assert f"checkpoint checkpoint.pt {notice}" in capsys.readouterr().out and saved_epochs == [1, 2]
    assert _numbers(rerun) == _numbers(fresh)


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("model", ["lstm", "gpt1"])
def test_huge_learning_rate_diverges_for_every_optimizer(cyclic, tmp_path, model, optimizer):
    # plain SGD at such a rate used to finish with a validation perplexity like 5.7e116
    with pytest.raises(TrainingDiverged, match=r"limit 8.987\); lower the learning rate or set grad_clip"):
        _train(cyclic, tmp_path, model=model, optimizer=optimizer, lr=1e3, epochs=1)
    assert not (tmp_path / "history.json").exists()


# --- the corpus and its cache ------------------------------------------------------------------------


@pytest.fixture
def wikitext(tmp_path, monkeypatch):
    """A tiny offline WikiText-2 folder and a private cache."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "wt2"
    folder.mkdir()
    (folder / "valid.txt").write_text(" = T = \n the cat sat on the mat \n the dog sat \n", encoding="utf-8")
    (folder / "test.txt").write_text(" the cat ran \n a dog \n the mat \n a cat \n", encoding="utf-8")
    return folder


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("name", "line"), [("valid.txt", 4), ("test.txt", 5)])
def test_text_that_is_not_utf8_names_file_and_line(wikitext, tmp_path, name, line):
    path = wikitext / name
    path.write_bytes(path.read_bytes() + b" caf\xe9 \n")  # Latin-1, appended as the last line
    with pytest.raises(ValueError, match=rf"{path}:{line}: not UTF-8 text"):
        load_wikitext2("offline", folder=wikitext)
    assert not any((tmp_path / "cache").rglob("*.npz"))  # nothing half-built is cached


def _rewrite(path, **arrays):
    with np.load(path) as stored:
        contents = {name: stored[name] for name in stored.files}
    with path.open("wb") as f:
        np.savez(f, **{**contents, **arrays})


@pytest.mark.fault("recovery")
@pytest.mark.parametrize(("damage", "notice"), [
    ("truncate", "is damaged"), ("short_vocab", "is damaged"), ("truncated_array", "is damaged"),
    ("int32_ids", "is damaged"), ("missing_part", "is damaged"), ("no_key", "other settings, data or code"),
    ("other_code", "other settings, data or code"),
])
def test_damaged_or_stale_corpus_cache_is_rebuilt(wikitext, tmp_path, monkeypatch, capsys, damage, notice):
    load_wikitext2("offline", folder=wikitext)
    [path] = (tmp_path / "cache" / "wikitext-2").glob("*.npz")
    with np.load(path) as stored:
        vocab, train = stored["vocab"], stored["train"]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "short_vocab":
        _rewrite(path, vocab=vocab[:-2])
    elif damage == "truncated_array":
        _rewrite(path, train=train[:5])
    elif damage == "int32_ids":
        _rewrite(path, train=train.astype(np.int32))
    elif damage == "missing_part":
        with path.open("wb") as f:
            np.savez(f, vocab=vocab, train=train)
    elif damage == "no_key":
        key_path(path).unlink()
    else:
        monkeypatch.setattr(data, "code_digest", lambda *packages: "edited")
    capsys.readouterr()
    served = load_wikitext2("offline", folder=wikitext)
    out = capsys.readouterr().out
    assert out.startswith("WikiText-2 cache: ") and notice in out and "rebuilding it" in out
    assert len(out.splitlines()) == 1
    fresh = load_wikitext2("offline", folder=wikitext, use_cache=False)
    assert served.vocab == fresh.vocab and served.digest() == fresh.digest()
    assert all(torch.equal(getattr(served, p), getattr(fresh, p)) for p in PARTS)
    assert load_wikitext2("offline", folder=wikitext).digest() == fresh.digest()
    assert capsys.readouterr().out == ""  # the rebuilt cache is served from now on


@pytest.mark.fault("recovery")
def test_edited_source_file_rebuilds_the_cache(wikitext, tmp_path):
    first = load_wikitext2("offline", folder=wikitext)
    (wikitext / "valid.txt").write_text(" the bird sat \n", encoding="utf-8")
    second = load_wikitext2("offline", folder=wikitext)
    assert second.digest() != first.digest() and "bird" in second.vocab.stoi


# --- the in-process grid and the comparison ----------------------------------------------------------


@pytest.mark.fault("recovery")
@pytest.mark.parametrize(("file", "damage"), [("metrics.json", b'{"valid_ppl": 1'),
                                              ("history.json", b"[{"), ("args.json", b"{}")])
def test_damaged_run_file_in_a_grid_folder_runs_again(cyclic, tmp_path, capsys, file, damage):
    first, _ = tiny_grid(cyclic, tmp_path / "runs")
    (tmp_path / "runs" / "lstm-sgd-L1" / file).write_bytes(damage)
    capsys.readouterr()
    again, lines = tiny_grid(cyclic, tmp_path / "runs")
    assert lines == ["[lstm-sgd-L1] running",
                     "[gpt1-adamw-L1] finished earlier with the same settings, skipped"]
    if file != "metrics.json":  # the engine itself re-runs a run whose metrics do not load
        assert f"[lstm-sgd-L1] {tmp_path / 'runs' / 'lstm-sgd-L1' / file}" in capsys.readouterr().out
    assert again.ok and again.skipped == ["gpt1-adamw-L1"]
    columns = ["exp_id", "best_valid_ppl", "best_epoch", "valid_ppl_stateful", "test_ppl"]
    assert again.comparison.table[columns].equals(first.comparison.table[columns])


@pytest.mark.fault("recovery")
@pytest.mark.parametrize("change", ["code", "corpus"])
def test_grid_runs_again_after_a_code_or_corpus_change(cyclic, tmp_path, monkeypatch, change):
    first, _ = tiny_grid(cyclic, tmp_path / "runs")
    corpus = cyclic
    if change == "code":  # a student fixed an exercise
        monkeypatch.setattr("course_lib.lm.train.code_digest", lambda *packages: "edited")
    else:
        corpus = LMCorpus(cyclic.split, cyclic.vocab, cyclic.train.roll(1), cyclic.valid, cyclic.test)
    again, lines = tiny_grid(corpus, tmp_path / "runs")
    assert lines == ["[lstm-sgd-L1] running", "[gpt1-adamw-L1] running"] and again.skipped == []
    fresh, _ = tiny_grid(corpus, tmp_path / "fresh")
    columns = ["exp_id", "best_valid_ppl", "test_ppl"]
    assert again.comparison.table[columns].equals(fresh.comparison.table[columns])


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("file", "text", "message"), [
    ("metrics.json", '{"valid_ppl": 1', r"metrics.json:1:16: malformed JSON"),
    ("history.json", "[{}]", r"history.json \(epoch record 1\): missing field\(s\) \['epoch', 'train_loss'"),
    ("args.json", '{"model": "lstm"}', r"args.json: missing field\(s\) \['num_layers', 'optimizer'"),
    ("history.json", "{}", r"history.json: expected a non-empty list of epoch records"),
])
def test_compare_names_the_folder_and_file_of_a_bad_run_file(cyclic, tmp_path, file, text, message):
    outcome, _ = tiny_grid(cyclic, tmp_path / "runs")
    folder = outcome.finished[0]
    (folder / file).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{folder}/{message}"):
        compare_runs(outcome.finished, tmp_path / "cmp")


@pytest.mark.fault("clear_error")
def test_compare_of_metrics_without_a_field_names_it(cyclic, tmp_path):
    outcome, _ = tiny_grid(cyclic, tmp_path / "runs")
    atomic_write_json(outcome.finished[1] / "metrics.json", {"valid_ppl": 3.0})
    with pytest.raises(ValueError, match=r"gpt1-adamw-L1/metrics.json: missing field\(s\) \['epochs', "):
        compare_runs(outcome.finished, tmp_path / "cmp")


@pytest.mark.fault("clear_error")
@pytest.mark.parametrize(("file", "field", "value", "kind"), [
    ("metrics.json", "best_valid_ppl", "about 200", "a number or null"),
    ("metrics.json", "best_epoch", 2.5, "a whole number"),
    ("args.json", "nesterov", "no", "true or false"),
    ("args.json", "model", 3, "text"),
])
def test_a_hand_edited_run_file_field_is_named_not_a_pandas_error(cyclic, tmp_path, file, field, value, kind):
    outcome, _ = tiny_grid(cyclic, tmp_path / "runs")
    path = outcome.finished[0] / file
    record = json.loads(path.read_text())
    atomic_write_json(path, {**record, field: value})
    with pytest.raises(ValueError, match=rf"{path}: field '{field}' holds {value!r}, expected {kind}; the "
                                         r"file was edited or damaged"):
        compare_runs(outcome.finished, tmp_path / "cmp")


@pytest.mark.fault("recovery")
def test_the_grid_runs_a_hand_edited_run_again(cyclic, tmp_path, capsys):
    first, _ = tiny_grid(cyclic, tmp_path / "runs")
    path = tmp_path / "runs" / "lstm-sgd-L1" / "metrics.json"
    atomic_write_json(path, {**json.loads(path.read_text()), "test_ppl": "n/a"})
    capsys.readouterr()
    again, lines = tiny_grid(cyclic, tmp_path / "runs")
    assert lines[0] == "[lstm-sgd-L1] running" and again.ok
    assert f"[lstm-sgd-L1] {path}: field 'test_ppl' holds 'n/a'" in capsys.readouterr().out
    assert again.comparison.table["test_ppl"].equals(first.comparison.table["test_ppl"])
