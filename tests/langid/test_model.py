"""Assignment 01's exercises: the vectorizer, the float32 cast, the MLP's forward, the skorch net, the
pipeline and the grid that GridSearchCV takes (the last three through ``tests/langid/checks.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from course_lib.langid import experiments, model
from course_lib.langid.config import SMOKE
from tests.langid import checks


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


@pytest.mark.exercise("make_net")
def test_make_net_configures_the_course_nets():
    """The course's baseline (SGD at 0.1, 20 epochs, a stratified 20% validation split), trial 2 (Adam at
    0.005, early stopping after 5 epochs without improvement) and a net that does not validate."""
    checks.check_make_net(model.make_net)


@pytest.mark.exercise("make_net")
def test_make_net_trains_and_stops_early():
    checks.check_net_trains(model.make_net)


@pytest.mark.exercise("make_net")
def test_make_net_baseline_reference():
    """The configuration the notebook prints beside its exercise cell."""
    net = model.make_net(**experiments.COURSE_NET, lr=0.1, max_epochs=20)
    assert model.describe_net(net) == ("criterion CrossEntropyLoss, optimizer SGD, lr 0.1, max_epochs 20, "
                                 "batch_size 128, train_split ValidSplit(0.2, stratified=True), callbacks []")


@pytest.mark.exercise("make_net")
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
    with pytest.raises(ValueError, match=r"patience=5 needs validation=True"):
        model.make_net(validation=False, patience=5)


@pytest.mark.exercise("make_pipeline")
def test_make_pipeline_chains_vect_cast_net():
    checks.check_make_pipeline(model.make_pipeline)


@pytest.mark.exercise("make_pipeline")
def test_pipeline_learns_real_languages(real_pipeline, small_real):
    assert [name for name, _ in real_pipeline.steps] == ["vect", "cast", "net"]
    assert isinstance(real_pipeline.named_steps["net"].module_, model.LangIdMLP)
    assert experiments.accuracy(real_pipeline, small_real.x_test, small_real.y_test) > 0.9


@pytest.mark.exercise("param_grid")
def test_param_grid_routes_the_course_grid():
    checks.check_param_grid(experiments.param_grid)


@pytest.mark.exercise("param_grid")
def test_grid_search_sets_what_the_grid_routes(small_real):
    """GridSearchCV over the library's pipeline with the grid's routing: two candidates that differ in the
    vectorizer's n-gram range, early stopping after 2 epochs; the refitted winner carries the values."""
    grid = {"ngram_range": [[1, 1], [1, 2]], "max_features": [200], "width": [16], "patience": [2],
            "optimizer": {"adam": [0.01]}}
    settings = SMOKE.override(grid=grid, cv_folds=2, grid_epochs=3, grid_max_train=120)
    result = experiments.grid_search(small_real, settings)
    assert len(result.search.cv_results_["params"]) == 2
    vect, net = result.best.named_steps["vect"], result.best.named_steps["net"]
    assert vect.ngram_range == result.best_params["ngram_range"] and vect.max_features == 200
    assert net.module_.hidden[0].out_features == 16 and net.optimizer is torch.optim.Adam and net.lr == 0.01
    assert [cb.patience for cb in checks.early_stopping(net)] == [2]
