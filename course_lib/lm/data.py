"""WikiText-2 for language modelling: splits, vocabulary and next-token windows.

Two splits are offered, each by name, and never substituted for one another:

- ``"official"``: train / valid / test as published (needs the official train file).
- ``"offline"``: for machines holding only the official valid and test files: train on official
  *valid*, validate on the first half of official *test*, test on its second half (cut at a line
  boundary). Numbers from it are not comparable with published WikiText-2 results.

Tokens follow the usual recipe: whitespace split, one ``<eos>`` per line. The vocabulary comes from
the train part only; other parts map unseen words to ``<unk>``. Encoded corpora are cached as one
.npz (ids of every part, the vocabulary and their digest), keyed by the split, ``max_vocab``, the
source files' digests and the code of ``course_lib.lm``; a stale or damaged cache is rebuilt.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from course_lib.core.cache import load_keyed
from course_lib.core.data import MissingDataError, cache_dir, require
from course_lib.core.digests import code_digest, content_digest, file_digest
from course_lib.core.io import read_text
from course_lib.core.settings import check_choice

EOS, UNK = "<eos>", "<unk>"
LAYOUTS = {  # part -> file names, first match wins
    "train": ("train.txt", "wiki.train.tokens"),
    "valid": ("valid.txt", "wiki.valid.tokens"),
    "test": ("test.txt", "wiki.test.tokens"),
}
PARTS = tuple(LAYOUTS)
SPLITS = {
    "official": "official WikiText-2 train / valid / test",
    "offline": "offline split: train = official valid; valid = first half of official test; "
    "test = second half of official test (cut at a line boundary)",
}


def check_split(split: str) -> str:
    """Return ``split`` if it is a known split name, else raise listing the valid names."""
    check_choice("split", split, SPLITS)
    return split


def tokenize_lines(lines: list[str]) -> list[str]:
    """Whitespace tokens of every line, each line closed by ``<eos>``."""
    return [tok for line in lines for tok in (*line.split(), EOS)]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings in id order; ``<unk>`` is always present."""

    itos: tuple[str, ...]

    @classmethod
    def from_tokens(cls, tokens: list[str], max_size: int | None = None) -> Vocabulary:
        """Every distinct token in order of first appearance (``<unk>`` added if absent); with
        ``max_size``, only the most frequent ``max_size - 1`` tokens plus ``<unk>``."""
        if max_size is None:
            itos = list(dict.fromkeys(tokens))
        else:
            if max_size < 2:
                raise ValueError(f"max_vocab must be >= 2 (room for <unk>), got {max_size}")
            counts = Counter(t for t in tokens if t != UNK)
            keep = {t for t, _ in counts.most_common(max_size - 1)}
            itos = [t for t in dict.fromkeys(tokens) if t in keep]
        if UNK not in itos:
            itos.append(UNK)
        return cls(tuple(itos))

    def __len__(self) -> int:
        return len(self.itos)

    @cached_property
    def stoi(self) -> dict[str, int]:
        """Token -> id."""
        return {t: i for i, t in enumerate(self.itos)}

    def encode(self, tokens: list[str]) -> np.ndarray:
        """Ids (N,) int64; unknown tokens become ``<unk>``."""
        stoi = self.stoi
        unk = stoi[UNK]
        return np.fromiter((stoi.get(t, unk) for t in tokens), dtype=np.int64, count=len(tokens))

    def decode(self, ids) -> list[str]:
        """Token strings of ids (any int sequence)."""
        return [self.itos[int(i)] for i in ids]


@dataclass
class LMCorpus:
    """An encoded corpus: ``train``/``valid``/``test`` are 1-D int64 tensors of token ids."""

    split: str
    vocab: Vocabulary
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def description(self) -> str:
        return SPLITS[self.split]

    def stats(self) -> dict[str, int | float | str]:
        """Token counts per part, vocabulary size and the share of ``<unk>`` per part."""
        unk = self.vocab.stoi[UNK]
        out: dict[str, int | float | str] = {"split": self.split, "vocab_size": len(self.vocab)}
        for part in ("train", "valid", "test"):
            ids = getattr(self, part)
            out[f"{part}_tokens"] = int(ids.numel())
            out[f"{part}_unk_rate"] = float((ids == unk).float().mean()) if ids.numel() else 0.0
        return out

    def digest(self) -> str:
        """Short sha256 of the split name, the vocabulary and the ids of every part: keys runs and caches
        by the data they were made from (so by the split's files and ``max_vocab``)."""
        return content_digest(self.split, self.vocab.itos, *(getattr(self, part) for part in PARTS))


def find_files(folder: Path) -> dict[str, Path]:
    """The parts present in ``folder`` under either standard layout: part -> file."""
    found = {}
    for part, names in LAYOUTS.items():
        for name in names:
            if (folder / name).exists():
                found[part] = folder / name
                break
    return found


def _read_lines(path: Path) -> list[str]:
    return read_text(path).splitlines()


def _split_files(split: str, files: dict[str, Path], folder: Path) -> dict[str, Path]:
    """The files ``split`` reads (official: part -> its file; offline: valid and test), or raise."""
    if split == "official":
        missing = [p for p in PARTS if p not in files]
        if missing:
            raise MissingDataError(
                f"split='official' needs WikiText-2 {missing} in {folder} (as "
                f"{' or '.join(LAYOUTS[missing[0]])}); offline, choose split='offline' "
                f"({SPLITS['offline']})"
            )
        return {p: files[p] for p in PARTS}
    for part in ("valid", "test"):
        if part not in files:
            raise MissingDataError(f"split='offline' needs the official {part} file in {folder}")
    return {p: files[p] for p in ("valid", "test")}


def _split_texts(split: str, used: dict[str, Path]) -> dict[str, list[str]]:
    if split == "official":
        return {p: _read_lines(used[p]) for p in PARTS}
    test_lines = _read_lines(used["test"])
    half = len(test_lines) // 2
    return {"train": _read_lines(used["valid"]), "valid": test_lines[:half], "test": test_lines[half:]}


def split_texts(split: str, folder: str | os.PathLike) -> dict[str, list[str]]:
    """The lines of each part (train, valid, test) of ``split`` read from the WikiText-2 files in
    ``folder`` (the offline split cuts official test at its middle line), before tokenizing."""
    check_split(split)
    folder = Path(folder)
    return _split_texts(split, _split_files(split, find_files(folder), folder))


def _encode(split: str, used: dict[str, Path], max_vocab: int | None) -> LMCorpus:
    tokens = {p: tokenize_lines(lines) for p, lines in _split_texts(split, used).items()}
    vocab = Vocabulary.from_tokens(tokens["train"], max_vocab)
    return LMCorpus(split, vocab, *(torch.from_numpy(vocab.encode(tokens[p])) for p in PARTS))


def _save_corpus(corpus: LMCorpus, path: Path) -> None:
    with path.open("wb") as f:
        np.savez(f, vocab=np.array(corpus.vocab.itos), digest=np.array(corpus.digest()),
                 **{p: getattr(corpus, p).numpy() for p in PARTS})


def _load_corpus(path: Path, split: str, max_vocab: int | None) -> LMCorpus:
    """The corpus cached at ``path``; anything not as built raises ``ValueError`` naming the file."""
    with np.load(path, allow_pickle=False) as stored:
        if set(stored.files) != {"vocab", "digest", *PARTS}:
            raise ValueError(f"{path}: holds {sorted(stored.files)}, expected vocab, digest and "
                             f"{list(PARTS)}")
        vocab = Vocabulary(tuple(str(t) for t in stored["vocab"]))
        ids = {p: stored[p] for p in PARTS}
        recorded = str(stored["digest"])
    size = len(vocab)
    if len(set(vocab.itos)) != size or UNK not in vocab.stoi or (max_vocab is not None and size > max_vocab):
        raise ValueError(f"{path}: the vocabulary of {size} tokens is not one built with "
                         f"max_vocab={max_vocab}")
    for part, array in ids.items():
        in_range = array.size == 0 or 0 <= array.min() <= array.max() < size
        if array.dtype != np.int64 or array.ndim != 1 or not in_range:
            raise ValueError(f"{path}: {part} ids ({array.dtype}, shape {array.shape}) are not ids of "
                             f"the {size}-token vocabulary")
    corpus = LMCorpus(split, vocab, *(torch.from_numpy(ids[p]) for p in PARTS))
    if corpus.digest() != recorded:
        raise ValueError(f"{path}: the contents do not match their recorded digest")
    return corpus


def load_wikitext2(split: str, data_dir: str | os.PathLike | None = None, *, max_vocab: int | None = None,
                   folder: Path | None = None, use_cache: bool = True) -> LMCorpus:
    """Load WikiText-2 as ``split`` ("official" or "offline"; see the module docstring).

    ``max_vocab`` keeps only the most frequent train tokens (the rest become ``<unk>``): a smaller,
    easier task for quick runs. ``folder`` points at the files directly (else the data root's
    ``wikitext-2/``). Encoded ids and vocabulary are cached (one .npz), keyed by the split, ``max_vocab``,
    the source files' digests and the code; a stale or damaged cache is rebuilt with a notice.
    Text that is not UTF-8 raises ``ValueError`` naming the file and line.
    """
    check_split(split)
    folder = Path(folder) if folder is not None else require("wikitext-2", data_dir)
    used = _split_files(split, find_files(folder), folder)
    if not use_cache:
        return _encode(split, used, max_vocab)
    digests = {p: file_digest(path) for p, path in used.items()}
    key = {"split": split, "max_vocab": max_vocab, "files": {used[p].name: d for p, d in digests.items()},
           "code": code_digest(__name__)}
    name = "-".join([split, f"v{max_vocab or 'all'}", *sorted(digests.values())])
    return load_keyed(cache_dir("wikitext-2") / f"{name}.npz", key,
                      load=lambda p: _load_corpus(p, split, max_vocab),
                      build=lambda tmp: _save_corpus(_encode(split, used, max_vocab), tmp),
                      what="WikiText-2 cache")


class NextTokenWindows(Dataset):
    """Non-overlapping windows of a token stream: item i is ``(x, y)``, both (T,), y = x shifted by one.

    A DataLoader with batch size B yields ``(x, y)`` of shape (B, T).
    """

    def __init__(self, ids: torch.Tensor, seq_len: int):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if ids.numel() < seq_len + 1:
            raise ValueError(f"a stream of {ids.numel()} tokens is too short for seq_len={seq_len}")
        self.ids, self.seq_len = ids, seq_len
        self.n = (ids.numel() - 1) // seq_len

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window i, 0 <= i < ``len(self)``: ``(x, y)``, both (T,) with T = ``self.seq_len``, slices of
        ``self.ids`` (same dtype): ``x = ids[i*T : i*T + T]`` and ``y = ids[i*T + 1 : i*T + T + 1]``. The
        inputs of the windows do not overlap (window i + 1's input starts where window i's ends), and
        ``y[t]``, the target of position t, is the token that follows ``x[t]`` in the stream."""
        ### BEGIN SOLUTION
        start = i * self.seq_len
        chunk = self.ids[start : start + self.seq_len + 1]
        return chunk[:-1], chunk[1:]
        ### END SOLUTION


class ContiguousLanes:
    """A token stream read in order as ``batch_size`` contiguous lanes, the way a recurrent model carries
    its state (truncated backpropagation through time).

    The first ``L * B`` tokens (L = (N - 1) // B) are cut into B lanes of L tokens, lane b holding tokens
    ``b*L .. (b+1)*L - 1``, and read in chunks of ``seq_len``: item i is ``(x, y, first)`` with x, y
    (B, T) (T = ``seq_len``, the last chunk shorter), y the tokens after x in each lane, and ``first``
    True for the first chunk only (start from a zero state). Lane b of chunk i + 1 continues lane b of
    chunk i. Iterating is deterministic (no random state), so an epoch is the same after a resume.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        lanes = (ids.numel() - 1) // batch_size
        if lanes < 1:
            raise ValueError(f"a stream of {ids.numel()} tokens is too short for {batch_size} lanes")
        self.x = ids[: lanes * batch_size].view(batch_size, lanes)
        self.y = ids[1 : lanes * batch_size + 1].view(batch_size, lanes)
        self.seq_len = seq_len

    @property
    def tokens(self) -> int:
        """Tokens predicted per pass (B x L)."""
        return self.y.numel()

    def __len__(self) -> int:
        return -(-self.y.shape[1] // self.seq_len)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        for start in range(0, self.y.shape[1], self.seq_len):
            end = start + self.seq_len
            yield self.x[:, start:end], self.y[:, start:end], start == 0
