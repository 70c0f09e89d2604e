"""Building readers from the settings, training with resume, predicting answer texts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.core.digests import code_digest
from course_lib.core.training import divergence_limit
from course_lib.qa.batching import EncodedExample, collate, encode
from course_lib.qa.config import FULL, READER_KINDS, SMOKE
from course_lib.qa.evaluation import evaluate
from course_lib.qa.models import BiLSTMPointerReader, DynamicCoattentionNetwork
from course_lib.qa.pipeline import (
    READERS,
    checkpoint_key,
    checkpoint_name,
    embeddings_digest,
    kept_epoch,
    loss_terms,
    make_reader,
    max_span_loss,
    predict_spans,
    round_scores,
    spans_to_predictions,
    train_reader,
    validate,
)
from tests.qa.sample import TINY, train_tiny


def test_make_reader_takes_sizes_from_the_settings():
    settings = SMOKE.override(hidden=6, max_iters=3, train_iters=2, dropout=0.1, question_match=True)
    dcn = make_reader("dcn", torch.randn(5, 4), settings)
    assert isinstance(dcn, DynamicCoattentionNetwork) and (dcn.max_iters, dcn.train_iters) == (3, 2)
    assert dcn.encoder.hidden_size == 6 and dcn.dropout.p == 0.1 and dcn.inputs.size == 5
    assert not dcn.encoder.bidirectional
    bidirectional = make_reader("dcn", torch.randn(5, 4), settings.override(dcn_encoder="bilstm"))
    assert bidirectional.encoder.bidirectional and bidirectional.fusion.forward_lstm.input_size == 36
    bilstm = make_reader("bilstm", torch.randn(5, 4), settings)
    assert isinstance(bilstm, BiLSTMPointerReader) and bilstm.encoder.hidden_size == 6
    assert bilstm.inputs.size == 5  # the same features for both readers
    context, question = torch.tensor([[2, 3, 4]]), torch.tensor([[3, 0]])
    out = dcn.train()(context, context != 0, question, question != 0)
    assert len(out.starts) == 2  # train_iters rounds in training
    assert len(dcn.eval()(context, context != 0, question, question != 0).starts) <= 3


def test_make_reader_names_the_valid_readers():
    assert tuple(READERS) == READER_KINDS
    with pytest.raises(ValueError, match=r"reader='lstm' is not valid; choose one of \['dcn', 'bilstm'\]"):
        make_reader("lstm", torch.randn(5, 4), SMOKE)


def test_checkpoint_key_holds_everything_that_determines_the_weights():
    key = checkpoint_key("dcn", SMOKE, seed=0, data_digest="d", embeddings_digest="e")
    assert key == {"kind": "dcn", "settings": SMOKE.to_dict(), "seed": 0, "data": "d", "embeddings": "e",
                   "code": code_digest("course_lib.qa", "course_lib.core.training")}
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


def test_loss_terms_count_a_start_and_an_end_per_round():
    assert loss_terms("bilstm", SMOKE) == 2
    assert loss_terms("dcn", SMOKE.override(max_iters=3)) == 6
    assert loss_terms("dcn", SMOKE.override(max_iters=4, train_iters=2)) == 4  # the rounds trained
    with pytest.raises(ValueError, match="reader='lstm'"):
        loss_terms("lstm", SMOKE)


def test_every_epoch_keeps_its_step_losses_and_validation_metrics(dev_sample, tmp_path):
    run = train_tiny(dev_sample, "bilstm", tmp_path)
    steps = len(dev_sample.examples) // TINY.batch_size + bool(len(dev_sample.examples) % TINY.batch_size)
    for record in run.history.epochs:
        assert len(record["step_losses"]) == steps
        mean = sum(record["step_losses"]) / steps  # equal batches but the last: close to the epoch mean
        assert mean == pytest.approx(record["train_loss"], rel=0.2)


def test_validate_scores_like_evaluate_and_averages_the_final_pointer_losses(dev_sample):
    torch.manual_seed(0)
    encoded = encode(dev_sample.examples, dev_sample.index)
    for kind in READER_KINDS:
        model = make_reader(kind, torch.randn(len(dev_sample.vocab), 8), TINY)
        metrics = validate(model, dev_sample.examples, encoded, dev_sample.articles, TINY, device="cpu",
                           batch_size=5)
        spans = predict_spans(model, encoded, TINY, device="cpu", batch_size=5)
        scores = evaluate(dev_sample.articles, spans_to_predictions(dev_sample.examples, spans))
        assert (metrics["val_exact_match"], metrics["val_f1"]) == (scores["exact_match"], scores["f1"])
    batch = collate(encoded)  # the BiLSTM reader has one round: one batch gives the same mean loss
    with torch.no_grad():
        out = model(batch["context"], batch["context_mask"], batch["question"], batch["question_mask"])
    want = F.cross_entropy(out.start, batch["start"]) + F.cross_entropy(out.end, batch["end"])
    assert metrics["val_loss"] == pytest.approx(float(want), rel=1e-5)
    unaligned = [EncodedExample(e.context, e.question, -1, -1) if i % 2 else e for i, e in enumerate(encoded)]
    partial = validate(model, dev_sample.examples, unaligned, dev_sample.articles, TINY, device="cpu")
    kept = collate(encoded[::2])
    with torch.no_grad():
        out = model(kept["context"], kept["context_mask"], kept["question"], kept["question_mask"])
    want = F.cross_entropy(out.start, kept["start"]) + F.cross_entropy(out.end, kept["end"])
    assert partial["val_loss"] == pytest.approx(float(want), rel=1e-5)  # unaligned: not in the loss
    assert partial["val_f1"] == metrics["val_f1"]  # but scored


def test_round_scores_score_inference_capped_at_each_round(dev_sample):
    """Row r scores what inference with ``max_iters = r`` predicts; the questions' final rounds add up."""
    torch.manual_seed(2)
    settings = TINY.override(max_iters=4)
    encoded = encode(dev_sample.examples, dev_sample.index)
    model = make_reader("dcn", torch.randn(len(dev_sample.vocab), 8), settings).eval()
    with torch.no_grad():  # larger decoder weights: estimates that move for several rounds
        for weight in model.decoder.parameters():
            weight.mul_(4)
    table = round_scores(model, dev_sample.examples, encoded, dev_sample.articles, settings, device="cpu",
                         batch_size=7)
    assert [row["rounds"] for row in table] == [1, 2, 3, 4]
    batch = collate(encoded)
    with torch.no_grad():
        out = model(batch["context"], batch["context_mask"], batch["question"], batch["question_mask"])
    final = out.rounds
    assert [row["final here"] for row in table] == [int((final == r).sum()) for r in (1, 2, 3, 4)]
    assert sum(row["final here"] for row in table) == len(encoded)
    assert len({row["final here"] for row in table}) > 1 and len({row["f1"] for row in table}) > 1
    for row in table:
        model.max_iters = row["rounds"]
        spans = predict_spans(model, encoded, settings, device="cpu", batch_size=7)
        scores = evaluate(dev_sample.articles, spans_to_predictions(dev_sample.examples, spans))
        assert (row["exact_match"], row["f1"]) == (scores["exact_match"], scores["f1"]), row


def test_early_stopping_keeps_the_best_epoch_and_skips_the_rest(dev_sample, tmp_path):
    """Validation F1 10, 30, 20, 25 with patience 2: epoch 2 is kept, training ends after epoch 4, and
    the finished run served from its checkpoint gives the same weights back."""
    settings = TINY.override(bilstm_epochs=8, patience=2)
    encoded = encode(dev_sample.examples, dev_sample.index, window=dev_sample.window, seed=0)
    vectors = torch.randn(len(dev_sample.vocab), 8, generator=torch.Generator().manual_seed(0))
    key = checkpoint_key("bilstm", settings, seed=0, data_digest="d", embeddings_digest="e")

    def scripted(model, weights):
        def evaluate(m):
            weights.append({k: v.clone() for k, v in m.state_dict().items()})
            return {"val_loss": 1.0, "val_f1": (10.0, 30.0, 20.0, 25.0)[len(weights) - 1]}
        return evaluate

    for attempt in range(2):
        torch.manual_seed(0)
        model = make_reader("bilstm", vectors, settings)
        seen: list[dict[str, torch.Tensor]] = []
        history = train_reader(model, encoded, settings, kind="bilstm", device="cpu",
                               evaluate=scripted(model, seen), checkpoint_path=tmp_path / "r.pt",
                               checkpoint_key=key)
        assert [r["epoch"] for r in history.epochs] == [1, 2, 3, 4]
        assert [r["kept"] for r in history.epochs] == [False, True, False, False]
        assert kept_epoch(history)["val_f1"] == 30.0
        if attempt == 0:
            assert len(seen) == 4  # epochs 5 to 8 neither train nor validate
            best = seen[1]
        else:
            assert not seen  # served from the checkpoint
        for name, value in model.state_dict().items():
            torch.testing.assert_close(value, best[name])
    with pytest.raises(ValueError, match="patience .* needs evaluate"):
        train_reader(model, encoded, settings, kind="bilstm", device="cpu")


@pytest.mark.parametrize("kind", READER_KINDS)
def test_the_full_profile_trains_and_predicts_on_the_cpu(dev_sample, kind):
    """FULL's settings (hidden 200, whole paragraphs, dropout, question_match, early stopping) for one
    epoch on 16 questions, validated and scored: what a GPU run does, at tiny size."""
    settings = FULL.override(epochs=1, bilstm_epochs=1)
    examples = dev_sample.examples[:16]
    encoded = encode(examples, dev_sample.index)  # FULL trains on whole paragraphs
    torch.manual_seed(0)
    model = make_reader(kind, torch.randn(len(dev_sample.vocab), 50), settings)
    assert model.inputs.match_feature == settings.question_match

    def evaluate(m):
        return validate(m, examples, encoded, dev_sample.articles, settings, device="cpu")

    history = train_reader(model, encoded, settings, kind=kind, device="cpu", evaluate=evaluate)
    assert kept_epoch(history)["epoch"] == 1 and math.isfinite(history.last()["train_loss"])
    spans = predict_spans(model, encoded, settings, device="cpu")
    assert all(0 <= s <= e < s + settings.max_answer_len for s, e in spans)
