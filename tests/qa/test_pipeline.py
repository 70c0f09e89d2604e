"""Building readers from the settings, training with resume, predicting answer texts."""

from __future__ import annotations

import pytest
import torch

from course_lib.qa.batching import encode
from course_lib.qa.config import READER_KINDS, SMOKE
from course_lib.qa.models import BiLSTMPointerReader, DynamicCoattentionNetwork
from course_lib.qa.pipeline import (
    READERS,
    checkpoint_name,
    make_reader,
    predict_spans,
    spans_to_predictions,
    train_reader,
)


def test_make_reader_takes_sizes_from_the_settings():
    settings = SMOKE.override(hidden=6, max_iters=2, dropout=0.1)
    dcn = make_reader("dcn", torch.randn(5, 4), settings)
    assert isinstance(dcn, DynamicCoattentionNetwork) and dcn.max_iters == 2
    assert dcn.encoder.hidden_size == 6 and dcn.dropout.p == 0.1
    bilstm = make_reader("bilstm", torch.randn(5, 4), settings)
    assert isinstance(bilstm, BiLSTMPointerReader) and bilstm.encoder.hidden_size == 6


def test_make_reader_names_the_valid_readers():
    assert tuple(READERS) == READER_KINDS
    with pytest.raises(ValueError, match=r"reader='lstm' is not valid; choose one of \['dcn', 'bilstm'\]"):
        make_reader("lstm", torch.randn(5, 4), SMOKE)


def test_checkpoint_name_is_keyed_by_kind_and_settings():
    assert checkpoint_name("dcn", SMOKE) == checkpoint_name("dcn", SMOKE.override(hidden=32))
    assert checkpoint_name("dcn", SMOKE) != checkpoint_name("bilstm", SMOKE)
    assert checkpoint_name("dcn", SMOKE) != checkpoint_name("dcn", SMOKE.override(lr=0.01))


def test_training_resumes_and_predictions_respect_the_span_limit(dev_sample, tmp_path):
    encoded = encode(dev_sample.examples, dev_sample.index, window=dev_sample.window, seed=0)
    settings = SMOKE.override(hidden=8, max_iters=2, lr=0.01, batch_size=16, epochs=1, max_answer_len=5)
    torch.manual_seed(0)
    vectors = torch.randn(len(dev_sample.vocab), 8)
    ckpt = tmp_path / "dcn.pt"
    model = make_reader("dcn", vectors, settings)
    first = train_reader(model, encoded, settings, kind="dcn", device="cpu", checkpoint_path=ckpt)
    resumed = make_reader("dcn", vectors, settings)
    both = train_reader(resumed, encoded, settings.override(epochs=2), kind="dcn", device="cpu",
                        checkpoint_path=ckpt)
    assert [e["epoch"] for e in both.epochs] == [1, 2]
    assert both.epochs[0]["train_loss"] == first.epochs[0]["train_loss"]
    spans = predict_spans(resumed, encode(dev_sample.examples, dev_sample.index), settings, device="cpu")
    assert all(0 <= s <= e < s + 5 for s, e in spans)
    predictions = spans_to_predictions(dev_sample.examples, spans)
    assert set(predictions) == {ex.qid for ex in dev_sample.examples}
    assert all(isinstance(t, str) and t for t in predictions.values())
