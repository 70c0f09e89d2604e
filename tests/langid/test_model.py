"""Assignment 01 model (the exercises): the MLP's forward, the float32 cast, the vectorizer, the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from course_lib.langid import experiments, model


@pytest.mark.exercise("LangIdMLP.forward")
def test_mlp_forward_matches_the_layers():
    torch.manual_seed(0)
    net = model.LangIdMLP(7, 3, width=5, depth=2, nonlinearity="tanh").eval()
    x = torch.randn(4, 7)
    h = torch.tanh(net.hidden[1](torch.tanh(net.hidden[0](x))))
    out = net(x)
    assert out.shape == (4, 3)
    torch.testing.assert_close(out, net.output(h))
    with pytest.raises(ValueError, match=r"nonlinearity='gelu' is not valid; choose one of \['relu'"):
        model.LangIdMLP(7, 3, nonlinearity="gelu")


@pytest.mark.exercise("LangIdMLP.forward")
def test_mlp_forward_course_shape_first_layer_nonlinearity_only():
    torch.manual_seed(0)
    net = model.LangIdMLP(6, 4, width=5, depth=2, inner_width=3, nonlinearity="tanh",
                          inner_nonlinearity="relu").eval()
    assert [(lin.in_features, lin.out_features) for lin in net.hidden] == [(6, 5), (5, 3)]
    x = torch.randn(2, 6)
    h = torch.relu(net.hidden[1](torch.tanh(net.hidden[0](x))))
    torch.testing.assert_close(net(x), net.output(h))
    course = model.LangIdMLP(100, 26, **experiments.COURSE_NET)
    assert [lin.out_features for lin in course.hidden] + [course.output.out_features] == [200, 50, 26]


@pytest.mark.exercise("LangIdMLP.forward")
def test_mlp_forward_reference_values():
    """The numbers the notebook prints beside its exercise cell."""
    torch.manual_seed(0)
    net = model.LangIdMLP(4, 3, width=5, depth=2, inner_width=2, nonlinearity="tanh",
                          inner_nonlinearity="relu")
    out = net(torch.ones(2, 4)).detach().numpy()
    np.testing.assert_allclose(out[0], [-0.5140, -0.4666, -0.3684], atol=1e-4)


@pytest.mark.exercise("to_float32")
def test_float32_cast_keeps_sparsity_and_values():
    counts = sparse.csr_matrix(np.array([[0, 2], [1, 0]], dtype=np.int64))
    cast = model.to_float32(counts)
    assert sparse.issparse(cast) and cast.dtype == np.float32
    np.testing.assert_array_equal(cast.toarray(), [[0, 2], [1, 0]])
    dense = model.to_float32(np.array([[1, 2]], dtype=np.int64))
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32


@pytest.mark.exercise("make_vectorizer")
def test_baseline_vectorizer_is_binary_char_bigrams(samples):
    vec = model.make_vectorizer()
    x = vec.fit_transform(samples["en"] + samples["deu"])
    assert x.shape == (12, 100)
    assert set(np.unique(x.toarray())) <= {0.0, 1.0}
    assert all(len(f) == 2 for f in vec.get_feature_names_out())
    tfidf = model.make_vectorizer("char_wb", (1, 3), None, tfidf=True).fit_transform(samples["fi"])
    assert tfidf.dtype == np.float32 and tfidf.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match=r"analyzer='chars' is not valid; choose one of \['char'"):
        model.make_vectorizer("chars")
    with pytest.raises(ValueError, match="ngram_range"):
        model.make_vectorizer("char", (3, 2))


@pytest.mark.exercise("make_vectorizer")
def test_vectorizer_reference_values():
    """Binary, lower-cased bigrams: the example the notebook prints beside its exercise cell."""
    vec = model.make_vectorizer(max_features=None)
    x = vec.fit_transform(["Banana", "bandana"])
    assert list(vec.get_feature_names_out()) == ["an", "ba", "da", "na", "nd"] and x.dtype == np.float32
    np.testing.assert_array_equal(x.toarray(), [[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]])


def test_small_vocabularies_are_densified_large_stay_sparse():
    small = sparse.csr_matrix(np.ones((2, 3), dtype=np.float32))
    assert isinstance(model.densify_small(small), np.ndarray)
    large = sparse.csr_matrix((2, model.DENSE_MAX_FEATURES + 1), dtype=np.float32)
    assert sparse.issparse(model.densify_small(large))


@pytest.mark.exercise("LangIdMLP.forward")
def test_classifier_sizes_itself_from_data_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 9)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    nets = [model.make_net(optimizer="adam", lr=0.01, max_epochs=15, seed=3).fit(x, y) for _ in range(2)]
    assert nets[0].module_.hidden[0].in_features == 9 and nets[0].module_.output.out_features == 4
    np.testing.assert_array_equal(nets[0].predict_proba(x), nets[1].predict_proba(x))
    assert np.mean(nets[0].predict(x) == y) > 0.9
    with pytest.raises(ValueError, match=r"optimizer='rmsprop' is not valid"):
        model.make_net(optimizer="rmsprop")


@pytest.mark.exercise("LangIdMLP.forward")
def test_pipeline_learns_real_languages(real_pipeline, small_real):
    assert isinstance(real_pipeline.named_steps["net"].module_, model.LangIdMLP)
    assert experiments.accuracy(real_pipeline, small_real.x_test, small_real.y_test) > 0.9
