"""Hidden tests of assignment 01's exercises: the MLP's forward on other depths and nonlinearities, the
float32 cast on other matrix types, the vectorizer's other options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from course_lib.langid import model


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
