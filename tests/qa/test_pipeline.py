"""Building readers from the settings, training with resume, predicting answer texts."""

from __future__ import annotations

import pytest
import torch

from course_lib.core.io import code_digest
from course_lib.core.training import divergence_limit
from course_lib.qa.batching import EncodedExample, encode
from course_lib.qa.config import READER_KINDS, SMOKE
from course_lib.qa.models import BiLSTMPointerReader, DynamicCoattentionNetwork
from course_lib.qa.pipeline import (
    READERS,
    checkpoint_key,
    checkpoint_name,
    embeddings_digest,
    make_reader,
    max_span_loss,
    predict_spans,
    spans_to_predictions,
)
from tests.qa.sample import TINY, train_tiny


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


def test_checkpoint_key_holds_everything_that_determines_the_weights():
    key = checkpoint_key("dcn", SMOKE, seed=0, data_digest="d", embeddings_digest="e")
    assert key == {"kind": "dcn", "settings": SMOKE.to_dict(), "seed": 0, "data": "d", "embeddings": "e",
                   "code": code_digest("course_lib.qa")}
    others = [checkpoint_key("bilstm", SMOKE, seed=0, data_digest="d", embeddings_digest="e"),
              checkpoint_key("dcn", SMOKE.override(lr=0.01), seed=0, data_digest="d", embeddings_digest="e"),
              checkpoint_key("dcn", SMOKE, seed=1, data_digest="d", embeddings_digest="e")]
    assert len({checkpoint_name(k) for k in [key, *others]}) == 4
    # other data or code: the same file (overwritten), the key inside differs
    same_name = checkpoint_key("dcn", SMOKE, seed=0, data_digest="other", embeddings_digest="e")
    assert checkpoint_name(same_name) == checkpoint_name(key) and same_name != key


def test_embeddings_digest_tells_vocabularies_and_vectors_apart():
    vectors = torch.zeros(3, 2)
    digest = embeddings_digest(["<pad>", "a", "b"], vectors)
    assert digest == embeddings_digest(["<pad>", "a", "b"], vectors.clone())
    assert digest != embeddings_digest(["<pad>", "b", "a"], vectors)
    assert digest != embeddings_digest(["<pad>", "a", "b"], vectors + 1e-6)


def test_span_loss_limit_scales_with_rounds_and_context_length():
    encoded = [EncodedExample(torch.ones(n, dtype=torch.long), torch.ones(3, dtype=torch.long), 0, 0)
               for n in (12, 30, 7)]  # the longest context has 30 tokens
    assert max_span_loss("bilstm", SMOKE, encoded) == pytest.approx(2 * divergence_limit(30))
    dcn = max_span_loss("dcn", SMOKE.override(max_iters=3), encoded)
    assert dcn == pytest.approx(3 * 2 * divergence_limit(30))


def test_finished_training_is_served_and_predictions_respect_the_span_limit(dev_sample, tmp_path):
    first = train_tiny(dev_sample, "dcn", tmp_path, TINY.override(epochs=1))
    both = train_tiny(dev_sample, "dcn", tmp_path, TINY)  # other settings: trained from the start
    assert [e["epoch"] for e in both.history.epochs] == [1, 2]
    assert both.history.epochs[0]["train_loss"] == first.history.epochs[0]["train_loss"]
    again = train_tiny(dev_sample, "dcn", tmp_path, TINY)  # finished: served from its checkpoint
    assert again.history.epochs == both.history.epochs and again.scores == both.scores
    model = make_reader("dcn", torch.randn(len(dev_sample.vocab), 8), TINY)
    spans = predict_spans(model, encode(dev_sample.examples, dev_sample.index), TINY, device="cpu")
    assert all(0 <= s <= e < s + TINY.max_answer_len for s, e in spans)
    predictions = spans_to_predictions(dev_sample.examples, spans)
    assert set(predictions) == {ex.qid for ex in dev_sample.examples}
    assert all(isinstance(t, str) and t for t in predictions.values())
