"""Assignment 01 (language identification): data loaders, the skorch MLP, tuning helpers, analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from course_lib.langid import analysis, data, experiments, model
from course_lib.reproducibility import cpu_threads

SAMPLES = {
    "en": ["the cat sat on the mat", "this is the house that jack built", "where is the station",
           "the weather is nice today", "i would like a cup of tea", "they went to the market"],
    "deu": ["der hund schläft im garten", "wo ist der bahnhof bitte", "das wetter ist heute schön",
            "ich möchte eine tasse tee", "sie gingen auf den markt", "die katze sitzt auf der matte"],
    "fi": ["kissa istuu matolla", "missä on rautatieasema", "sää on tänään kaunis",
           "haluaisin kupin teetä", "he menivät torille", "koira nukkuu puutarhassa"],
}


@pytest.fixture
def sentence_folder(tmp_path):
    folder = tmp_path / "langid-sentences"
    folder.mkdir()
    for code, lines in SAMPLES.items():
        (folder / f"{code}.txt").write_text("\n".join(lines * 5) + "\n\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def small_real(data_root):
    """Four real languages, 80 sentences each (a fast but honest learning problem)."""
    folder = data_root / "langid-sentences"
    return data.load_sentences(folder, ["eng", "deu", "fin", "rus"], max_per_language=80, seed=0)


# -- data -------------------------------------------------------------------------------------------

def test_iso_codes_normalise_to_639_3():
    assert data.to_iso639_3("en") == "eng"
    assert data.to_iso639_3(" NN ") == "nno"
    assert data.to_iso639_3("deu") == "deu"
    assert len(data.DEFAULT_LANGUAGES) == 26 and len(set(data.DEFAULT_LANGUAGES)) == 26
    assert data.DEFAULT_LANGUAGES[:6] == ("eng", "deu", "nld", "dan", "swe", "nno")


def test_sentence_folder_mixed_codes_and_stratified_split(sentence_folder):
    d = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=1)
    assert d.languages == ["eng", "deu", "fin"]
    assert d.counts() == {"eng": (24, 6), "deu": (24, 6), "fin": (24, 6)}  # 30 lines each, blank dropped
    assert d.x_train[0] in SAMPLES[["en", "deu", "fi"][d.y_train[0]]]
    again = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=1)
    assert again.x_test == d.x_test
    other = data.load_sentences(sentence_folder, ["en", "deu", "fin"], seed=2)
    assert other.y_test.tolist() != d.y_test.tolist() or other.x_test != d.x_test
    capped = data.load_sentences(sentence_folder, ["eng", "fin"], max_per_language=10)
    assert capped.counts() == {"eng": (8, 2), "fin": (8, 2)}


def test_unknown_language_lists_available(sentence_folder):
    with pytest.raises(ValueError, match=r"\['xx'\].*available: \['deu', 'eng', 'fin'\]"):
        data.load_sentences(sentence_folder, ["eng", "xx"])
    with pytest.raises(ValueError, match="two distinct"):
        data.load_sentences(sentence_folder, ["eng", "en"])
    with pytest.raises(TypeError, match="list of ISO codes"):
        data.load_sentences(sentence_folder, "eng")
    with pytest.raises(ValueError, match="source='web' is not valid"):
        data.load_langid(sentence_folder.parent, source="web")


def test_wili_layout_keeps_official_split(tmp_path):
    folder = tmp_path / "wili-2018"
    folder.mkdir()
    x_train = ["english text one", "deutscher text eins", "texte français", "english text two"]
    y_train = ["eng", "deu", "fra", "eng"]
    (folder / "x_train.txt").write_text("\n".join(x_train) + "\n", encoding="utf-8")
    (folder / "y_train.txt").write_text("\n".join(y_train) + "\n", encoding="utf-8")
    (folder / "x_test.txt").write_text("english test\ndeutscher test\n", encoding="utf-8")
    (folder / "y_test.txt").write_text("eng\ndeu\n", encoding="utf-8")
    (folder / "labels.csv").write_text("Label;English\neng;English\n", encoding="utf-8")
    d = data.load_langid(tmp_path, ["en", "de"], source="wili-2018")
    assert d.source == "wili-2018" and d.languages == ["eng", "deu"]
    assert d.x_train == ["english text one", "deutscher text eins", "english text two"]
    assert d.y_train.tolist() == [0, 1, 0] and d.y_test.tolist() == [0, 1]
    with pytest.raises(ValueError, match="available: \\['deu', 'eng', 'fra'\\]"):
        data.load_langid(tmp_path, ["eng", "nno"], source="wili-2018")


def test_real_data_holds_the_default_languages(data_root):
    d = data.load_langid(data_root, source="auto", max_per_language=20)
    assert d.source == "langid-sentences" and len(d.languages) == 26
    assert all(tr == 16 and te == 4 for tr, te in d.counts().values())


# -- model ------------------------------------------------------------------------------------------

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


def test_float32_cast_keeps_sparsity_and_values():
    counts = sparse.csr_matrix(np.array([[0, 2], [1, 0]], dtype=np.int64))
    cast = model.to_float32(counts)
    assert sparse.issparse(cast) and cast.dtype == np.float32
    np.testing.assert_array_equal(cast.toarray(), [[0, 2], [1, 0]])
    dense = model.to_float32(np.array([[1, 2]], dtype=np.int64))
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32


def test_baseline_vectorizer_is_binary_char_bigrams():
    vec = model.make_vectorizer()
    x = vec.fit_transform(SAMPLES["en"] + SAMPLES["deu"])
    assert x.shape == (12, 100)
    assert set(np.unique(x.toarray())) <= {0.0, 1.0}
    assert all(len(f) == 2 for f in vec.get_feature_names_out())
    tfidf = model.make_vectorizer("char_wb", (1, 3), None, tfidf=True).fit_transform(SAMPLES["fi"])
    assert tfidf.dtype == np.float32 and tfidf.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match=r"analyzer='chars' is not valid; choose one of \['char'"):
        model.make_vectorizer("chars")
    with pytest.raises(ValueError, match="ngram_range"):
        model.make_vectorizer("char", (3, 2))


def test_classifier_sizes_itself_from_data_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 9)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    with cpu_threads(1, "cpu"):
        nets = [model.make_net(optimizer="adam", lr=0.01, max_epochs=15, seed=3).fit(x, y) for _ in range(2)]
    assert nets[0].module_.hidden[0].in_features == 9 and nets[0].module_.output.out_features == 4
    np.testing.assert_array_equal(nets[0].predict_proba(x), nets[1].predict_proba(x))
    assert np.mean(nets[0].predict(x) == y) > 0.9
    with pytest.raises(ValueError, match=r"optimizer='rmsprop' is not valid"):
        model.make_net(optimizer="rmsprop")


def test_pipeline_learns_real_languages(small_real):
    pipe = model.make_pipeline(model.make_vectorizer("char_wb", (1, 3), 2000),
                               model.make_net(optimizer="adam", lr=0.003, max_epochs=8))
    with cpu_threads(1, "cpu"):
        pipe.fit(small_real.x_train, small_real.y_train)
    assert experiments.accuracy(pipe, small_real.x_test, small_real.y_test) > 0.9
    codes = analysis.predict_language(pipe, ["Die Regierung hat heute ein neues Gesetz beschlossen.",
                                             "Сегодня правительство приняло новый закон."],
                                      small_real.languages)
    assert codes == ["deu", "rus"]
    assert analysis.predict_language(pipe, "The government passed a new law today.",
                                     small_real.languages) == ["eng"]
    with pytest.raises(ValueError, match="texts\\[1\\] is empty"):
        analysis.predict_language(pipe, ["hello", "  "], small_real.languages)
    with pytest.raises(TypeError, match="texts\\[0\\] is a int"):
        analysis.predict_language(pipe, [42], small_real.languages)
    with pytest.raises(TypeError, match="got int"):
        analysis.predict_language(pipe, 42, small_real.languages)


# -- experiments ------------------------------------------------------------------------------------

def test_hand_tuning_table(small_real):
    settings = [experiments.MANUAL_SETTINGS[0], experiments.MANUAL_SETTINGS[4]]
    results = experiments.run_settings(small_real, settings, epochs=2)
    assert [len(r.history) for r in results][0] == 2
    assert 2 < len(results[1].history) <= 8  # 4x epochs, possibly stopped early
    table = experiments.settings_table(results)
    assert list(table.index) == ["baseline", "Adam lr=0.001 + early stop"]
    assert all(0.0 <= a <= 1.0 for a in table["test acc"])
    assert results[1].test_accuracy > 0.5  # Adam learns 4 languages from bigrams well above chance


def test_param_grid_splits_optimizers():
    grid = {"analyzer": ["char"], "ngram_range": [[1, 2]], "width": [8, 16],
            "optimizer": {"sgd": [0.1], "adam": [0.01, 0.001]}}
    pg = experiments.param_grid(grid)
    assert pg[0]["vectorizer__ngram_range"] == [(1, 2)] and pg[0]["net__optimizer"] == [torch.optim.SGD]
    assert pg[1]["net__lr"] == [0.01, 0.001]
    assert experiments.grid_size(grid) == 6
    with pytest.raises(ValueError, match=r"unknown grid keys \['depthh'\]"):
        experiments.param_grid({"depthh": [1]})
    with pytest.raises(ValueError, match=r"unknown optimizers \['lbfgs'\]"):
        experiments.param_grid({"optimizer": {"lbfgs": [1.0]}})


def test_grid_search_is_seeded(small_real):
    grid = {"max_features": [50, 300], "optimizer": {"adam": [0.01]}}
    results = [experiments.grid_search(small_real, grid, cv_folds=2, epochs=3, max_train=120)
               for _ in range(2)]
    np.testing.assert_array_equal(results[0].search.cv_results_["mean_test_score"],
                                  results[1].search.cv_results_["mean_test_score"])
    assert results[0].n_cv_texts == 120
    assert list(results[0].best_params) == ["max_features", "optimizer", "lr"]
    best = results[0].best_params
    assert best["optimizer"] == "adam" and best["max_features"] in (50, 300)
    assert experiments.grid_table(results[0].search).shape[0] == 2
    # the winner is refitted on all training texts, not only on the CV subset
    n_batches = len(results[0].best.named_steps["net"].history[-1]["batches"])
    assert n_batches == -(-len(small_real.x_train) // 128)
    assert experiments.accuracy(results[0].best, small_real.x_test, small_real.y_test) > 0.5


# -- analysis ---------------------------------------------------------------------------------------

def test_confusions_report_and_examples():
    langs = ["dan", "nno", "swe"]
    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 1, 2, 1])
    pairs = analysis.most_confused_pairs(y_true, y_pred, langs, top=5)
    assert pairs.iloc[0].tolist() == ["dan", "nno", 2, 0.667]
    assert len(pairs) == 3
    texts = [f"t{i}" for i in range(8)]
    assert analysis.confused_examples(texts, y_true, y_pred, langs, "dan", "nno") == ["t1", "t2"]
    with pytest.raises(ValueError, match="'nob' is not among"):
        analysis.confused_examples(texts, y_true, y_pred, langs, "nob", "nno")
    report = analysis.per_language_report(y_true, y_pred, langs)
    assert report.loc["swe", "precision"] == 1.0 and report.loc["swe", "recall"] == 0.5
    assert report.index[0] == "dan"  # worst F1 first
