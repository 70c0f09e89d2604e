"""Assignment 04: SQuAD loading and alignment, official metrics, coattention, HMN, DCN, decoding."""

from __future__ import annotations

import json

import pytest
import torch

from course_lib.data import require
from course_lib.qa import evaluate, exact_match_score, f1_score, normalize_answer
from course_lib.qa.analysis import question_word
from course_lib.qa.baselines import sliding_window_predictions
from course_lib.qa.batching import build_vocab, collate, encode, trainable
from course_lib.qa.data import align_answer, build_examples, load_squad, split_articles, tokenize
from course_lib.qa.decoding import best_span
from course_lib.qa.evaluation import load_predictions, question_scores, save_predictions
from course_lib.qa.models import DynamicCoattentionNetwork, HighwayMaxout, coattention, span_loss
from course_lib.qa.pipeline import make_reader, predict_spans, spans_to_predictions, train_reader

# -- official v1.1 metrics on hand-made cases (values worked out by hand) ----------------------


def test_normalize_answer_follows_official_order():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theatre and Anthem") == "theatre and anthem"  # articles only as words
    assert normalize_answer("the-end") == "theend"  # punctuation is removed, not split on


def test_exact_match_and_f1_hand_cases():
    assert exact_match_score("Denver Broncos.", "the denver broncos")
    assert not exact_match_score("Broncos", "Denver Broncos")
    # pred {cat, sat}, truth {cat, sat, on, mat}: p = 1, r = 1/2 -> F1 = 2/3
    assert f1_score("the cat sat", "cat sat on the mat") == pytest.approx(2 / 3)
    # bags: pred x,x,y vs truth x,y,y share one x and one y: p = r = 2/3
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("nothing shared", "other words") == 0.0
    # both normalise to the empty string: EM counts it, F1 (no shared token) does not
    assert exact_match_score("The", "a") and f1_score("The", "a") == 0.0


ARTICLES = [{"title": "t", "paragraphs": [{"context": "The Denver Broncos won.", "qas": [
    {"id": "q1", "question": "Who won?", "answers": [
        {"text": "Denver Broncos", "answer_start": 4}, {"text": "Broncos", "answer_start": 11}]},
    {"id": "q2", "question": "What?", "answers": [{"text": "won", "answer_start": 19}]},
]}]}]


def test_evaluate_takes_max_over_truths_and_scores_missing_as_zero():
    # q1: "Broncos team" vs "Denver Broncos" -> F1 1/2; vs "Broncos" -> p 1/2, r 1 -> 2/3 (the max)
    # q2 has no prediction -> 0. Totals in percent over both questions.
    result = evaluate(ARTICLES, {"q1": "Broncos team"})
    assert result["exact_match"] == 0.0
    assert result["f1"] == pytest.approx(100 * (2 / 3) / 2)
    assert evaluate(ARTICLES, {"q1": "the Broncos", "q2": "won"}) == {"exact_match": 100.0, "f1": 100.0}
    assert question_scores(ARTICLES, {"q2": "won"})["q1"] == (0.0, 0.0)


def test_predictions_file_is_a_flat_id_to_text_object(tmp_path):
    path = save_predictions(tmp_path / "pred.json", {"q1": "Denver Broncos", "q2": "won"})
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw == {"q1": "Denver Broncos", "q2": "won"}
    assert load_predictions(path) == raw
    with pytest.raises(TypeError, match="answer texts"):
        save_predictions(tmp_path / "bad.json", {"q1": ["Denver"]})


# -- loading, tokenisation, alignment, split ---------------------------------------------------


def test_course_variant_with_one_answer_object(tmp_path):
    variant = {"data": [{"title": "t", "paragraphs": [{"context": "Paris is big.", "qas": [
        {"id": "a", "question": "Which city?", "answer": {"text": "Paris", "answer_start": 0}}]}]}]}
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(variant), encoding="utf-8")
    (ex,) = build_examples(load_squad(path))
    assert ex.answers == ["Paris"] and ex.span == (0, 0) and ex.span_text(*ex.span) == "Paris"


def test_tokenize_keeps_offsets_and_alignment_recovers_text():
    text = "In 1990-91, the U.S. won $5 million."
    tokens, spans = tokenize(text)
    assert all(text[s:e] == t for t, (s, e) in zip(tokens, spans, strict=True))
    start = text.index("$5 million")
    s, e = align_answer(spans, start, "$5 million")
    assert text[spans[s][0] : spans[e][1]] == "$5 million"
    assert align_answer(spans, len(text) + 5, "x") is None


def test_dev_answers_align_for_at_least_99_percent():
    articles = load_squad(require("squad-v1.1") / "dev-v1.1.json")
    examples = build_examples(articles)
    assert len(examples) == 10570
    exact = sum(ex.span is not None and ex.span_text(*ex.span) == ex.answers[0] for ex in examples)
    assert exact / len(examples) >= 0.99


def test_split_holds_out_whole_articles_deterministically():
    articles = [{"title": str(i), "paragraphs": []} for i in range(48)]
    train, test = split_articles(articles, 38, 10, seed=0)
    assert len(train) == 38 and len(test) == 10
    assert not {a["title"] for a in train} & {a["title"] for a in test}
    assert split_articles(articles, 38, 10, seed=0) == (train, test)
    assert split_articles(articles, 38, 10, seed=1) != (train, test)
    with pytest.raises(ValueError, match="n_train=40, n_test=10"):
        split_articles(articles, 40, 10)


# -- coattention (exercise), HMN (exercise), DCN -----------------------------------------------


def reference_coattention(D, Q):
    """Xiong et al. eqs. 3-5 for one unpadded example, in the paper's column layout (l x m)."""
    D, Q = D.T, Q.T  # (l, m), (l, n)
    L = D.T @ Q  # (m, n)
    A_Q = torch.softmax(L, dim=0)  # (m, n): columns sum to 1
    A_D = torch.softmax(L.T, dim=0)  # (n, m)
    C_Q = D @ A_Q  # (l, n)
    C_D = torch.cat([Q, C_Q], dim=0) @ A_D  # (2l, m)
    return C_D.T, A_D.T


def test_coattention_matches_the_paper_per_example_despite_padding():
    torch.manual_seed(0)
    lengths = [(7, 4), (5, 3), (9, 6)]
    B, M, N, H = 3, 9, 6, 5
    D, Q = torch.randn(B, M, H), torch.randn(B, N, H)
    d_mask = torch.arange(M) < torch.tensor([m for m, _ in lengths]).unsqueeze(1)
    q_mask = torch.arange(N) < torch.tensor([n for _, n in lengths]).unsqueeze(1)
    C_D, A_D = coattention(D * d_mask.unsqueeze(2), Q * q_mask.unsqueeze(2), d_mask, q_mask)
    assert C_D.shape == (B, M, 2 * H) and A_D.shape == (B, M, N)
    for b, (m, n) in enumerate(lengths):
        ref_C, ref_A = reference_coattention(D[b, :m], Q[b, :n])
        torch.testing.assert_close(C_D[b, :m], ref_C)
        torch.testing.assert_close(A_D[b, :m, :n], ref_A)
        assert torch.all(A_D[b, :, n:] == 0)


def test_highway_maxout_matches_its_equations():
    torch.manual_seed(0)
    hmn = HighwayMaxout(hidden=3, pool=2)
    U, h = torch.randn(2, 5, 6), torch.randn(2, 3)
    u_s, u_e = torch.randn(2, 6), torch.randn(2, 6)
    scores = hmn(U, h, u_s, u_e)
    assert scores.shape == (2, 5)
    b, t = 1, 3
    r = torch.tanh(hmn.w_d.weight @ torch.cat([h[b], u_s[b], u_e[b]]))
    m1 = (hmn.w_1.weight @ torch.cat([U[b, t], r]) + hmn.w_1.bias).view(2, 3).max(0).values
    m2 = (hmn.w_2.weight @ m1 + hmn.w_2.bias).view(2, 3).max(0).values
    expected = (hmn.w_3.weight @ torch.cat([m1, m2]) + hmn.w_3.bias).max()
    torch.testing.assert_close(scores[b, t], expected)


def tiny_batch(V=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.randint(2, V, (4, 12), generator=g)
    question = torch.randint(2, V, (4, 5), generator=g)
    cmask = torch.arange(12) < torch.tensor([12, 9, 7, 10]).unsqueeze(1)
    qmask = torch.arange(5) < torch.tensor([5, 3, 4, 2]).unsqueeze(1)
    return context * cmask, cmask, question * qmask, qmask


@pytest.mark.parametrize("kind", ["dcn", "bilstm"])
def test_readers_ignore_padding(kind):
    torch.manual_seed(0)
    model = make_reader(kind, torch.randn(50, 8), hidden=6, dropout=0.0).eval()
    context, cmask, question, qmask = tiny_batch()
    out = model(context, cmask, question, qmask)
    assert out.start.shape == (4, 12) and out.attention.shape == (4, 12, 5)
    assert torch.all(out.start[~cmask] == torch.finfo(out.start.dtype).min)
    # the same example alone, without the batch's padding, gives the same logits
    alone = model(context[1:2, :9], cmask[1:2, :9], question[1:2, :3], qmask[1:2, :3])
    torch.testing.assert_close(alone.start[0], out.start[1, :9], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(alone.end[0], out.end[1, :9], rtol=1e-4, atol=1e-4)


def test_dcn_loss_sums_iterations_and_the_model_learns_a_batch():
    torch.manual_seed(0)
    model = DynamicCoattentionNetwork(torch.randn(50, 8), hidden=8, max_iters=3, dropout=0.0)
    context, cmask, question, qmask = tiny_batch()
    start, end = torch.tensor([2, 0, 3, 5]), torch.tensor([4, 1, 3, 8])
    out = model(context, cmask, question, qmask)
    assert len(out.starts) == 3
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = float(span_loss(out, start, end).detach())
    for _ in range(40):
        loss = span_loss(model(context, cmask, question, qmask), start, end)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.2 * first
    with pytest.raises(ValueError, match="max_iters"):
        DynamicCoattentionNetwork(torch.randn(5, 4), max_iters=0)


def test_make_reader_names_the_valid_readers():
    with pytest.raises(ValueError, match=r"reader='lstm' is not valid; choose one of \['dcn', 'bilstm'\]"):
        make_reader("lstm", torch.randn(5, 4))


# -- decoding, baseline, batching, training glue -----------------------------------------------


def test_best_span_respects_order_length_and_mask():
    start = torch.log(torch.tensor([[0.1, 0.1, 0.7, 0.1, 0.0]]) + 1e-9)
    end = torch.log(torch.tensor([[0.6, 0.1, 0.0, 0.1, 0.2]]) + 1e-9)
    mask = torch.tensor([[True, True, True, True, True]])
    s, e = best_span(start, end, mask, max_len=5)
    assert (s.item(), e.item()) == (2, 4)  # end 0 is more likely but comes before the start
    s, e = best_span(start, end, mask, max_len=2)
    assert (s.item(), e.item()) == (2, 3)
    s, e = best_span(start, end, torch.tensor([[True, True, True, True, False]]), max_len=5)
    assert e.item() == 3
    with pytest.raises(ValueError, match="max_len"):
        best_span(start, end, mask, max_len=0)


def test_sliding_window_finds_the_span_next_to_the_question_words():
    # "fell" and "Vienna" both have "treaty" and "signed" within 6 tokens; "Vienna" is closer
    articles = [{"title": "t", "paragraphs": [{"context": (
        "Rain fell often. The treaty was signed in Vienna by the emperor. Snow came later."),
        "qas": [{"id": "q", "question": "Where was the treaty signed?",
                 "answers": [{"text": "Vienna", "answer_start": 42}]}]}]}]
    predictions = sliding_window_predictions(build_examples(articles))
    assert predictions == {"q": "Vienna"}


def test_training_crops_around_the_answer_and_resumes(tmp_path):
    articles = load_squad(require("squad-v1.1") / "dev-v1.1.json")[:1]
    examples = trainable(build_examples(articles)[:64], window=24)
    vocab = build_vocab(examples)
    index = {w: i for i, w in enumerate(vocab)}
    encoded = encode(examples, index, window=24, seed=0)
    for ex, enc in zip(examples, encoded, strict=True):
        assert len(enc.context) <= 24
        assert [vocab[i] for i in enc.context[enc.start : enc.end + 1]] == [
            t.lower() for t in ex.context_tokens[ex.span[0] : ex.span[1] + 1]]
    assert collate(encoded[:3])["context"].shape[0] == 3
    torch.manual_seed(0)
    vectors = torch.randn(len(vocab), 8)
    ckpt = tmp_path / "dcn.pt"
    model = make_reader("dcn", vectors, hidden=8, max_iters=2)
    first = train_reader(model, encoded, epochs=1, lr=0.01, batch_size=16, device="cpu",
                         checkpoint_path=ckpt)
    resumed = make_reader("dcn", vectors, hidden=8, max_iters=2)
    both = train_reader(resumed, encoded, epochs=2, lr=0.01, batch_size=16, device="cpu",
                        checkpoint_path=ckpt)
    assert [e["epoch"] for e in both.epochs] == [1, 2]
    assert both.epochs[0]["train_loss"] == first.epochs[0]["train_loss"]
    test_encoded = encode(examples, index)
    spans = predict_spans(resumed, test_encoded, device="cpu", max_answer_len=5)
    assert all(0 <= s <= e < s + 5 for s, e in spans)
    predictions = spans_to_predictions(examples, spans)
    assert set(predictions) == {ex.qid for ex in examples}
    assert all(isinstance(t, str) and t for t in predictions.values())


def test_question_word():
    assert question_word(["In", "which", "year", "?"]) == "which"
    assert question_word(["Name", "the", "team"]) == "other"
