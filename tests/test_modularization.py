"""course_lib.modularization: data, concern samples, weight scores, pruning, fine-tuning cache and the
whole experiment, on a tiny BERT trained on a synthetic 3-topic task (plus the real data loaders)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from course_lib.modularization import (
    FineTuneSettings,
    concern_samples,
    concern_scores,
    encode,
    find_layers,
    fine_tune,
    keep_mask,
    load_classifier,
    load_topics,
    modularize,
    per_class_sample,
    prune_concern,
    resolve_concerns,
)
from course_lib.modularization.data import TopicSplit, concern_indices
from course_lib.modularization.evaluation import evaluate_module, forward
from course_lib.modularization.pruning import activation_rms, overall_sparsity

CLASSES = ("alpha", "beta", "gamma")
CPU = torch.device("cpu")


def synthetic_split(n: int, seed: int) -> TopicSplit:
    """Texts of 3 topics: 3 words from the topic's own 8 words, 3 from 8 shared words, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    texts = []
    for k in labels:
        words = [f"{CLASSES[k]}{j}" for j in rng.integers(0, 8, 3)]
        words += [f"common{j}" for j in rng.integers(0, 8, 3)]
        texts.append(" ".join(rng.permutation(words)))
    return TopicSplit(texts, labels.astype(np.int64), CLASSES)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    words = [f"{c}{j}" for c in (*CLASSES, "common") for j in range(8)]
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return BertTokenizer(str(vocab))


def tiny_bert(vocab_size: int) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval()


SETTINGS = FineTuneSettings("tiny-bert-test", "synthetic", "v1", None, 10, 6, 3e-3, 16, 0, 0)


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    """A tiny BERT fine-tuned (with course_lib.training.fit) on the synthetic task, and its cache dir."""
    out = tmp_path_factory.mktemp("finetune")
    model = tiny_bert(tokenizer.vocab_size)
    train, test = synthetic_split(240, 0), synthetic_split(60, 1)
    result = fine_tune(model, encode(tokenizer, train, 10), encode(tokenizer, test, 10), SETTINGS, out, CPU,
                       progress=False)
    return model, result, out, train, test


# -- data ----------------------------------------------------------------------------------------


def test_yahoo_sample_has_ten_classes(data_root):
    train, test = load_topics("yahoo-answers-topics", "train"), load_topics("yahoo-answers-topics", "test")
    assert (len(train), len(test)) == (1000, 100)
    assert len(train.classes) == 10 and set(train.counts().values()) == {100}
    assert min(test.counts().values()) >= 5  # the test sample is not balanced (5 to 14 per class)
    assert all(isinstance(t, str) and t for t in train.texts)


def test_ag_news_loads_with_its_label_order(data_root):
    train = load_topics("ag-news", "train")
    assert train.classes == ("World", "Sports", "Business", "Science or Technology")
    assert len(train) == 4000 and not train.texts[0].startswith("Title:")


def test_bad_dataset_and_split_name_the_choices():
    with pytest.raises(ValueError, match="ag-news"):
        load_topics("imdb", "train")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_topics("ag-news", "valid")


def test_per_class_sample_is_balanced_and_seeded():
    split = synthetic_split(90, 0)
    a, b = per_class_sample(split, 5, seed=3), per_class_sample(split, 5, seed=3)
    assert a.counts() == {c: 5 for c in CLASSES}
    assert a.texts == b.texts
    assert per_class_sample(split, None, 0) is split


def test_concern_samples_are_positive_negative_and_balanced():
    labels = np.repeat(np.arange(4), 30)
    pos, neg = concern_indices(labels, 2, 12, seed=0)
    assert len(pos) == len(neg) == 12
    assert (labels[pos] == 2).all() and (labels[neg] != 2).all()
    assert sorted(np.bincount(labels[neg], minlength=4).tolist()) == [0, 4, 4, 4]
    assert np.array_equal(concern_indices(labels, 2, 12, seed=0)[1], neg)
    all_pos, all_neg = concern_indices(labels, 1, None, seed=0)
    assert len(all_pos) == len(all_neg) == 30
    with pytest.raises(ValueError, match="concern=4"):
        concern_indices(labels, 4, 5, seed=0)


def test_resolve_concerns_accepts_names_and_indices():
    assert resolve_concerns(["gamma", 0], CLASSES) == [2, 0]
    assert resolve_concerns(None, CLASSES) == [0, 1, 2]
    with pytest.raises(ValueError, match="'delta'.*alpha"):
        resolve_concerns(["delta"], CLASSES)


# -- scores and masks ------------------------------------------------------------------------------


def test_concern_scores_prefer_features_active_on_positives():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    pos, neg = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 3.0])
    assert torch.allclose(concern_scores(w, pos, neg, 1.0), torch.tensor([[1.0, -4.0], [0.5, 0.0]]))
    assert torch.allclose(concern_scores(w, pos, neg, 0.5), torch.tensor([[1.5, -1.0], [0.75, 0.0]]))
    assert torch.allclose(concern_scores(w, pos, neg, 0.0), w.abs() * pos)  # Wanda on the positives


def test_unstructured_mask_prunes_exactly_the_lowest_scores():
    scores = torch.arange(20.0).reshape(4, 5).flip(1)
    mask = keep_mask(scores, 0.3, "unstructured")
    assert int((~mask).sum()) == 6
    assert scores[~mask].max() < scores[mask].min()


def test_structured_mask_prunes_whole_rows_by_summed_score():
    scores = torch.tensor([[1.0, 1.0], [-3.0, 6.0], [0.0, -1.0], [4.0, 4.0]])
    mask = keep_mask(scores, 0.5, "structured")
    assert (~mask).all(dim=1).nonzero().flatten().tolist() == [0, 2]  # row sums 2, 3, -1, 8
    assert mask[[1, 3]].all()


@pytest.mark.parametrize("method, ratio", [("magnitude", 0.5), ("structured", 1.0), ("unstructured", -0.1)])
def test_bad_method_or_ratio_names_the_choices(method, ratio):
    with pytest.raises(ValueError, match="unstructured" if method == "magnitude" else r"\[0, 1\)"):
        keep_mask(torch.ones(2, 2), ratio, method)


# -- layers, activations, pruning ---------------------------------------------------------------------


def test_find_layers_defaults_to_feed_forward_without_attention(tokenizer):
    model = tiny_bert(tokenizer.vocab_size)
    names = list(find_layers(model))
    ffn = ("intermediate", "output")
    assert names == [f"bert.encoder.layer.{i}.{n}.dense" for i in range(2) for n in ffn]
    assert list(find_layers(model, include=[r"layer\.1\.intermediate"], exclude=[])) == [
        "bert.encoder.layer.1.intermediate.dense"]
    with pytest.raises(ValueError, match="no linear layer matches"):
        find_layers(model, include=["decoder"])
    with pytest.raises(ValueError, match="not a valid regular expression"):
        find_layers(model, include=["dense("])
    with pytest.raises(TypeError, match="sequence"):
        find_layers(model, include=r"dense$")


def test_activation_rms_ignores_padding(tokenizer, trained):
    model = trained[0]
    enc = encode(tokenizer, synthetic_split(6, 5), 10)
    padded = {k: torch.nn.functional.pad(v, (0, 4)) if v.ndim == 2 else v for k, v in enc.items()}
    padded["input_ids"][:, -4:] = tokenizer.convert_tokens_to_ids("alpha1")  # masked out, must not count
    layers = find_layers(model)
    a, b = activation_rms(model, enc, layers, CPU), activation_rms(model, padded, layers, CPU)
    for name in layers:
        assert a[name].shape == (layers[name].in_features,)
        assert torch.allclose(a[name], b[name], atol=1e-5)


@pytest.mark.parametrize("method", ["unstructured", "structured"])
def test_prune_concern_masks_a_copy_in_place_and_keeps_the_original(tokenizer, trained, method):
    model = trained[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pos, neg = concern_samples(trained[3], 0, 20, seed=0)
    module = prune_concern(model, encode(tokenizer, pos, 10), encode(tokenizer, neg, 10),
                           sparsity_ratio=0.4, method=method)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the original model was changed"
    layers = find_layers(module)
    pruned_state = module.state_dict()
    for k, v in before.items():
        assert pruned_state[k].shape == v.shape
        if not any(k.startswith(name) for name in layers):
            assert torch.equal(pruned_state[k], v), f"{k} is not a target layer but changed"
    for layer in layers.values():
        zeros = layer.weight == 0
        expected = round(0.4 * (zeros.numel() if method == "unstructured" else zeros.shape[0]))
        if method == "unstructured":
            assert int(zeros.sum()) == expected
        else:
            dead = zeros.all(dim=1)
            assert int(dead.sum()) == expected and (layer.bias[dead] == 0).all()
    assert overall_sparsity(module, layers) == pytest.approx(0.4, abs=0.01)


def test_concern_pruning_keeps_the_concern_better_than_anti_concern_pruning(tokenizer, trained):
    """Pruning by the concern score must hurt the concern's own inputs less than pruning by the
    opposite score (positives and negatives swapped) at the same sparsity."""
    model, _, _, train, test = trained
    test_enc = encode(tokenizer, test, 10)
    margins = {}
    for concern in range(3):
        pos, neg = (encode(tokenizer, s, 10) for s in concern_samples(train, concern, 40, seed=0))
        keep = prune_concern(model, pos, neg, sparsity_ratio=0.5, method="unstructured")
        anti = prune_concern(model, neg, pos, sparsity_ratio=0.5, method="unstructured")
        rows = test_enc["labels"] == concern
        for tag, m in (("keep", keep), ("anti", anti)):
            logits = forward(m, test_enc, CPU).logits[rows]
            margins[tag, concern] = float(torch.log_softmax(logits, -1)[:, concern].mean())
    for concern in range(3):
        assert margins["keep", concern] > margins["anti", concern], margins


# -- fine-tuning cache, evaluation, the experiment ------------------------------------------------------


def test_fine_tune_learns_and_is_cached(tokenizer, trained):
    model, result, out, _, test = trained
    assert not result.cached and result.weights_path.exists()
    assert result.history[-1]["test_accuracy"] >= 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert all(p.requires_grad for p in model.parameters())
    again = tiny_bert(tokenizer.vocab_size)
    hit = fine_tune(again, {}, {}, SETTINGS, out, CPU, progress=False)  # no data needed on a cache hit
    assert hit.cached and hit.history == result.history
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                   strict=True))
    other = FineTuneSettings(**{**SETTINGS.__dict__, "lr": 1e-3})
    assert other.key() != SETTINGS.key()


def test_unpruned_module_evaluates_as_the_original(tokenizer, trained):
    model, _, _, _, test = trained
    enc = encode(tokenizer, test, 10)
    outputs = forward(model, enc, CPU)
    layers = list(find_layers(model))
    row = evaluate_module(model, 1, CLASSES, outputs, outputs, layer_names=layers, seed=0,
                          cca_components=5).row
    assert row["accuracy"] == pytest.approx(float((outputs.predictions() == test.labels).mean()))
    for key in ("cca_concern", "linear_cka_concern", "kernel_cka_non_concern", "linear_cka_non_concern"):
        assert row[key] == pytest.approx(1.0, abs=1e-4)
    assert row["perplexity_pruned_concern"] == pytest.approx(row["perplexity_original_concern"])
    assert row["sparsity"] < 0.01


def test_modularize_table_has_one_row_per_module(tokenizer, trained):
    model, _, _, train, test = trained
    result = modularize(model, tokenizer, train, test, [0, 2], methods=("unstructured", "structured"),
                        num_samples=20, sparsity_ratio=0.3, negative_weight=0.5, max_length=10, device=CPU,
                        seed=0, cca_components=5)
    table = result.table
    assert list(zip(table["method"], table["concern"], strict=True)) == [
        (m, c) for m in ("unstructured", "structured") for c in ("alpha", "gamma")
    ]
    assert table["sparsity"].between(0.29, 0.31).all()
    similarity = table.filter(regex="cka|cca")
    assert ((similarity > 0) & (similarity <= 1 + 1e-9)).all().all()
    assert result.original_report["accuracy"] >= 0.9
    assert set(result.modules["structured", "gamma"].sparsity) == set(find_layers(model))


def test_minilm_loads_offline_quietly(capfd):
    tokenizer, model = load_classifier("minilm", num_labels=4)
    assert model.config.hidden_size == 384 and model.config.num_labels == 4
    assert len(find_layers(model)) == 12
    assert not model.training
    captured = capfd.readouterr()
    assert captured.err == "", captured.err
