"""WikiText-2 loading for assignment 03: layouts, splits, vocabulary, next-token windows."""

from __future__ import annotations

import pytest
import torch

from course_lib.core.data import MissingDataError
from course_lib.lm.data import (
    EOS,
    UNK,
    ContiguousLanes,
    NextTokenWindows,
    Vocabulary,
    load_wikitext2,
    split_texts,
    tokenize_lines,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def _write(folder, names, lines):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(names, lines, strict=True):
        (folder / name).write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


TRAIN = [" = Title = ", " the cat sat on the mat ", " the dog sat "]
VALID = [" the cat ran ", " a bird sat "]
TEST = [" the mat ", " the zebra ", " a cat ", " the end "]


@pytest.mark.parametrize("names", [("train.txt", "valid.txt", "test.txt"),
                                   ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")])
def test_official_split_reads_both_layouts_and_builds_vocab_from_train(tmp_path, names):
    folder = _write(tmp_path / "wt2", names, (TRAIN, VALID, TEST))
    corpus = load_wikitext2("official", folder=folder)
    assert corpus.split == "official"
    assert corpus.vocab.itos[:4] == ("=", "Title", EOS, "the")
    assert corpus.train.numel() == len(tokenize_lines(TRAIN)) == 15
    # "ran", "a", "bird" are not in train
    assert corpus.vocab.decode(corpus.valid) == ["the", "cat", UNK, EOS, UNK, UNK, "sat", EOS]
    assert corpus.test.numel() == 12


def test_official_split_without_train_names_the_offline_split(tmp_path):
    folder = _write(tmp_path / "wt2", ("valid.txt", "test.txt"), (VALID, TEST))
    with pytest.raises(MissingDataError, match="split='offline'"):
        load_wikitext2("official", folder=folder)


def test_offline_split_trains_on_valid_and_halves_test(tmp_path):
    folder = _write(tmp_path / "wt2", ("valid.txt", "test.txt"), (VALID, TEST))
    corpus = load_wikitext2("offline", folder=folder)
    assert corpus.vocab.decode(corpus.train) == tokenize_lines(VALID)
    assert corpus.vocab.decode(corpus.valid) == ["the", UNK, EOS, "the", UNK, EOS]  # "mat", "zebra" unseen
    assert corpus.vocab.decode(corpus.test) == ["a", "cat", EOS, "the", UNK, EOS]  # "end" unseen
    assert "train = official valid" in corpus.description
    assert split_texts("offline", folder) == {"train": VALID, "valid": TEST[:2], "test": TEST[2:]}


def test_bad_split_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"split='train'.*\['official', 'offline'\]"):
        load_wikitext2("train", folder=tmp_path)


def test_cached_load_equals_fresh_load(tmp_path, capsys):
    folder = _write(tmp_path / "wt2", ("valid.txt", "test.txt"), (VALID, TEST))
    first = load_wikitext2("offline", folder=folder)
    assert len(list((tmp_path / "cache" / "wikitext-2").glob("*.npz"))) == 1
    second = load_wikitext2("offline", folder=folder)
    fresh = load_wikitext2("offline", folder=folder, use_cache=False)
    assert second.vocab == first.vocab == fresh.vocab and capsys.readouterr().out == ""
    for part in ("train", "valid", "test"):
        assert torch.equal(getattr(first, part), getattr(second, part))
        assert torch.equal(getattr(fresh, part), getattr(second, part))
    assert first.digest() == second.digest() == fresh.digest()
    assert load_wikitext2("offline", folder=folder, max_vocab=3).digest() != first.digest()


def test_max_vocab_keeps_the_most_frequent_tokens():
    vocab = Vocabulary.from_tokens("a b a c a b d".split(), max_size=3)
    assert vocab.itos == ("a", "b", UNK)
    assert vocab.decode(vocab.encode(["c", "a"])) == [UNK, "a"]
    with pytest.raises(ValueError, match="max_vocab"):
        Vocabulary.from_tokens(["a"], max_size=1)


def test_real_offline_split_matches_the_documented_token_counts(data_root):
    corpus = load_wikitext2("offline", data_root)
    # data README: official valid has 217,646 tokens and test 245,569 (one <eos> per line).
    assert corpus.train.numel() == 217_646
    assert corpus.valid.numel() + corpus.test.numel() == 245_569
    assert len(corpus.vocab) == 13_777


def test_windows_are_next_token_pairs_of_shape_b_t():
    ids = torch.arange(100)
    windows = NextTokenWindows(ids, seq_len=8)
    assert len(windows) == 12
    x, y = next(iter(torch.utils.data.DataLoader(windows, batch_size=4)))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="too short"):
        NextTokenWindows(torch.arange(5), seq_len=8)


def test_contiguous_lanes_continue_from_one_chunk_to_the_next():
    lanes = ContiguousLanes(torch.arange(23), batch_size=2, seq_len=4)  # 2 lanes of 11 tokens
    chunks = list(lanes)
    assert len(lanes) == len(chunks) == 3 and lanes.tokens == 22
    assert [first for _, _, first in chunks] == [True, False, False]
    assert [tuple(x.shape) for x, _, _ in chunks] == [(2, 4), (2, 4), (2, 3)]  # the last chunk is shorter
    x = torch.cat([x for x, _, _ in chunks], dim=1)
    y = torch.cat([y for _, y, _ in chunks], dim=1)
    assert torch.equal(x, torch.arange(22).view(2, 11)) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="too short for 30 lanes"):
        ContiguousLanes(torch.arange(23), batch_size=30, seq_len=4)
