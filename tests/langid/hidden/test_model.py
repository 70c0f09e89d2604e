"""Hidden tests of assignment 01's exercises: the MLP's forward on other depths and nonlinearities, the
float32 cast on other matrix types, the vectorizer's other options, the skorch net with other arguments, the
pipeline on word counts, the grids the public tests do not route."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from course_lib.langid import experiments, model
from course_lib.langid.grids import EXTENDED_GRID
from tests.langid import checks


@pytest.mark.exercise("LangIdMLP.forward")
def test_mlp_forward_three_layers_sigmoid_then_relu():
    torch.manual_seed(3)
    net = model.LangIdMLP(5, 4, width=6, depth=3, inner_width=2, nonlinearity="sigmoid",
                          inner_nonlinearity="relu").eval()
    x = torch.randn(7, 5)
    h = torch.sigmoid(net.hidden[0](x))
    h = torch.relu(net.hidden[2](torch.relu(net.hidden[1](h))))
    torch.testing.assert_close(net(x), net.output(h))


@pytest.mark.exercise("LangIdMLP.forward")
def test_mlp_forward_applies_dropout_in_training_only():
    torch.manual_seed(4)
    net = model.LangIdMLP(8, 3, width=64, depth=1, dropout=0.5)
    x = torch.randn(16, 8)
    net.eval()
    expected = net.output(torch.relu(net.hidden[0](x)))
    torch.testing.assert_close(net(x), expected)
    net.train()
    assert not torch.allclose(net(x), expected)


@pytest.mark.exercise("to_float32")
def test_float32_cast_of_csc_integers_and_lists():
    counts = sparse.csc_matrix(np.array([[0, 2, 0], [1, 0, 3]], dtype=np.int64))
    cast = model.to_float32(counts)
    assert sparse.isspmatrix_csr(cast) and cast.dtype == np.float32
    np.testing.assert_array_equal(cast.toarray(), [[0, 2, 0], [1, 0, 3]])
    dense = model.to_float32([[1, 2], [3, 4]])
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32 and dense.shape == (2, 2)


@pytest.mark.exercise("make_vectorizer")
def test_word_counts_not_binary():
    vec = model.make_vectorizer("word", (1, 1), None, binary=False)
    X = vec.fit_transform(["the cat the dog", "The bird"])
    vocab = vec.vocabulary_
    assert set(vocab) == {"the", "cat", "dog", "bird"}
    assert X[0, vocab["the"]] == 2 and X[1, vocab["the"]] == 1


@pytest.mark.exercise("make_vectorizer")
def test_tfidf_rows_are_unit_length_and_capped():
    vec = model.make_vectorizer("char", (1, 2), 5, tfidf=True)
    X = vec.fit_transform(["abab", "abc", "ccca"])
    assert X.shape == (3, 5) and X.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(X.multiply(X).sum(axis=1)).A.ravel(), 1.0, rtol=1e-5)


@pytest.mark.exercise("make_net")
def test_make_net_routes_every_argument():
    """Other values of every argument than the public tests (the net is only configured, not trained)."""
    args = dict(width=32, depth=3, nonlinearity="sigmoid", inner_width=8, inner_nonlinearity="tanh",
                dropout=0.25)
    net = model.make_net(**args, optimizer="sgd", lr=0.05, max_epochs=4, batch_size=16, patience=2, seed=11)
    checks.check_net_settings(net, module_args=args, optimizer=torch.optim.SGD, lr=0.05, max_epochs=4,
                              batch_size=16, validation=True, patience=2, seed=11)
    net = model.make_net(width=8, depth=1, optimizer="adam", lr=0.02, max_epochs=2, batch_size=256,
                         validation=False, seed=5)
    checks.check_net_settings(net, module_args=dict(width=8, depth=1), optimizer=torch.optim.Adam, lr=0.02,
                              max_epochs=2, batch_size=256, validation=False, patience=None, seed=5)


@pytest.mark.exercise("make_pipeline")
def test_make_pipeline_casts_word_counts(monkeypatch):
    """Word counts (int32) reach the net as float32 with the same values; the cast is the library's (a
    reference cast stands in for it, so that this test grades the pipeline alone)."""
    monkeypatch.setattr(model, "to_float32", lambda X: X.astype(np.float32))
    vectorizer = CountVectorizer(analyzer="word", dtype=np.int32)
    pipe = model.make_pipeline(vectorizer, checks.Recorder())
    assert [name for name, _ in pipe.steps] == ["vect", "cast", "net"], pipe.steps
    texts = ["one two two", "three three three", "two one"]
    pipe.fit(texts, [0, 1, 0])
    seen = pipe.named_steps["net"].seen_
    assert seen.dtype == np.float32, f"expected float32 features at the net, got {seen.dtype}"
    np.testing.assert_array_equal(seen.toarray(), [[1, 0, 2], [0, 3, 0], [1, 0, 1]])
    assert pipe.named_steps["vect"] is vectorizer


def _sgd_adam(shared, sgd, adam):
    return [{**shared, "net__optimizer": [torch.optim.SGD], "net__lr": sgd},
            {**shared, "net__optimizer": [torch.optim.Adam], "net__lr": adam}]


@pytest.mark.exercise("param_grid")
def test_param_grid_of_the_extended_grid():
    expected = _sgd_adam({"vect__analyzer": ["char", "char_wb"], "vect__ngram_range": [(2, 2), (1, 3)],
                          "vect__max_features": [100, 1000], "net__module__nonlinearity": ["relu", "tanh"],
                          "net__module__width": [64, 256]}, [0.1], [0.003])
    checks.check_param_grid_equals(experiments.param_grid(EXTENDED_GRID), expected, "the extended grid")
    checks.check_param_grid_equals(experiments.param_grid("extended"), expected, "param_grid('extended')")


@pytest.mark.exercise("param_grid")
def test_param_grid_inner_layer_no_vocabulary_cap_and_the_default_optimizer():
    grid = {"max_features": [None, 50], "inner_width": [4, 8], "inner_nonlinearity": ["tanh"],
            "patience": [3, 7]}
    expected = [{"vect__max_features": [None, 50], "net__module__inner_width": [4, 8],
                 "net__module__inner_nonlinearity": ["tanh"],
                 "net__callbacks__EarlyStopping__patience": [3, 7],
                 "net__optimizer": [torch.optim.SGD], "net__lr": [0.1]}]
    checks.check_param_grid_equals(experiments.param_grid(grid), expected, f"grid {grid}")
    grid = {"ngram_range": [[1, 4]], "optimizer": {"adam": [0.03, 0.01, 0.003]}}
    expected = [{"vect__ngram_range": [(1, 4)], "net__optimizer": [torch.optim.Adam],
                 "net__lr": [0.03, 0.01, 0.003]}]
    checks.check_param_grid_equals(experiments.param_grid(grid), expected, f"grid {grid}")
