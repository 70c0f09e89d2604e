"""Token ids, answer-preserving crops and padded batches."""

from __future__ import annotations

from course_lib.qa.batching import collate, encode


def test_training_crops_keep_the_answer(dev_sample):
    encoded = encode(dev_sample.examples, dev_sample.index, window=dev_sample.window, seed=0)
    for ex, enc in zip(dev_sample.examples, encoded, strict=True):
        assert len(enc.context) <= dev_sample.window
        assert [dev_sample.vocab[i] for i in enc.context[enc.start : enc.end + 1]] == [
            t.lower() for t in ex.context_tokens[ex.span[0] : ex.span[1] + 1]]
    batch = collate(encoded[:3])
    assert batch["context"].shape[0] == 3
    assert batch["context_mask"].sum(dim=1).tolist() == [len(e.context) for e in encoded[:3]]
