"""Pretrained input embeddings for a vocabulary: GloVe (50d package or an official .txt) or random."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course_lib.core.data.glove import embedding_matrix, load_glove
from course_lib.core.digests import content_digest
from course_lib.lm.data import Vocabulary

EMBEDDINGS = ("glove", "random")


def check_embeddings(source: str) -> str:
    """Return ``source`` if it is one of :data:`EMBEDDINGS` or a ``.txt`` path, else raise listing them."""
    if source not in EMBEDDINGS and Path(source).suffix != ".txt":
        raise ValueError(f"embeddings={source!r} is not valid; choose one of {list(EMBEDDINGS)} "
                         "or the path of an official glove.6B.<d>d.txt file")
    return source


@dataclass(frozen=True)
class VocabEmbeddings:
    """Rows for a vocabulary: ``matrix`` (V, E) or ``None`` (random init), and GloVe's coverage."""

    source: str
    matrix: torch.Tensor | None
    coverage: float | None

    @property
    def dim(self) -> int | None:
        return None if self.matrix is None else int(self.matrix.shape[1])

    def digest(self) -> str:
        """Short sha256 of the source name and the rows (keys runs by their initial word vectors)."""
        return content_digest(self.source, self.matrix)


def vocab_embeddings(vocab: Vocabulary, source: str = "glove", *, seed: int = 0) -> VocabEmbeddings:
    """``"glove"``: GloVe 6B 50d from the package; a path to ``glove.6B.<d>d.txt``: that file (cached
    as .npy); ``"random"``: no pretrained rows. Words are looked up lower-cased; the rest (and
    ``<unk>``/``<eos>``) get seeded random vectors. ``coverage`` is the share of the vocabulary found.
    """
    if check_embeddings(source) == "random":
        return VocabEmbeddings("random", None, None)
    glove = load_glove(None if source == "glove" else source)
    matrix, coverage = embedding_matrix(list(vocab.itos), glove, seed=seed)
    name = "glove-6B-50d" if source == "glove" else Path(source).stem
    return VocabEmbeddings(name, torch.from_numpy(np.ascontiguousarray(matrix)), coverage)
