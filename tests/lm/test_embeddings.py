"""Assignment 03 embeddings: GloVe rows onto the vocabulary, random initialisation, bad sources."""

from __future__ import annotations

import pytest

from course_lib.lm.data import Vocabulary
from course_lib.lm.embeddings import check_embeddings, vocab_embeddings


def test_random_embeddings_have_no_rows():
    emb = vocab_embeddings(Vocabulary(("a", "<unk>")), "random")
    assert emb.matrix is None and emb.coverage is None and emb.dim is None


def test_unknown_embedding_source_lists_the_choices():
    with pytest.raises(ValueError, match=r"embeddings='word2vec'.*\['glove', 'random'\]"):
        vocab_embeddings(Vocabulary(("a", "<unk>")), "word2vec")
    assert check_embeddings("glove.6B.100d.txt") == "glove.6B.100d.txt"
