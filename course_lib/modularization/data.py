"""Topic classification data (Yahoo! Answers sample, AG News) as texts + integer labels, and the
positive / negative samples of a concern.

Loaders return a :class:`TopicSplit` (plain Python lists and numpy arrays); tokenisation into
``(N, T)`` tensors happens in :func:`encode`, which knows nothing about files. Fine-tuning batches come
from :class:`LengthPoolBatches` (questions of similar length together) through :func:`collate_trimmed`
(each batch cut to its longest question).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.core.data import require
from course_lib.core.data.registry import get_spec
from course_lib.core.digests import file_digest, json_digest
from course_lib.core.io import read_json, read_jsonl, read_text
from course_lib.core.settings import check_choice

from .config import DATASETS

YAHOO_CLASSES = (
    "society & culture", "science & mathematics", "health", "education & reference",
    "computers & internet", "sports", "business & finance", "entertainment & music",
    "family & relationships", "politics & government",
)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class TopicSplit:
    """One split: ``texts`` (N,), integer ``labels`` (N,) indexing ``classes``."""

    texts: list[str]
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray) -> TopicSplit:
        """The rows at ``index`` (in that order)."""
        return TopicSplit([self.texts[i] for i in index], self.labels[index], self.classes)

    def counts(self) -> dict[str, int]:
        """Examples per class name."""
        return {c: int((self.labels == k).sum()) for k, c in enumerate(self.classes)}


def _fields(record: Any, names: tuple[str, ...], where: str) -> list[str]:
    """The text fields ``names`` of a JSON ``record``; a ``ValueError`` naming ``where`` if one is missing."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object with fields {list(names)}, got {record!r:.60}")
    missing = [n for n in names if not isinstance(record.get(n), str)]
    if missing:
        raise ValueError(f"{where}: field(s) {missing} missing or not text; each record needs {list(names)}")
    return [record[n] for n in names]


def _label(name: str, classes: tuple[str, ...], where: str) -> int:
    """The index of class ``name``; a ``ValueError`` naming ``where`` and the valid labels otherwise."""
    if name not in classes:
        raise ValueError(f"{where}: label {name!r} is not a class of the data set; "
                         f"valid labels: {list(classes)}")
    return classes.index(name)


def _yahoo(folder: Path, split: str) -> tuple[list[str], list[int], tuple[str, ...]]:
    files = sorted(folder.glob("train_*.jsonl")) if split == "train" else [folder / "test.jsonl"]
    texts, labels = [], []
    for path in files:
        lines = [n for n, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()]
        for number, row in zip(lines, read_jsonl(path), strict=True):
            where = f"{path}:{number}"
            title, content, label = _fields(row, ("title", "content", "label"), where)
            texts.append(" ".join(part for part in (title, content) if part).strip())
            labels.append(_label(label, YAHOO_CLASSES, where))
    return texts, labels, YAHOO_CLASSES


def _ag_news(folder: Path, split: str) -> tuple[list[str], list[int], tuple[str, ...]]:
    names_file = folder / "labels.json"
    classes = read_json(names_file)
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes) \
            or len(set(classes)) != len(classes):
        raise ValueError(f"{names_file}: expected a JSON list of distinct class names, got {classes!r:.80}")
    classes = tuple(classes)
    path = folder / f"{split}.json"
    rows = read_json(path)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of records, got a {type(rows).__name__}")
    texts, labels = [], []
    for number, row in enumerate(rows, start=1):
        where = f"{path}: record {number}"
        sentence, label = _fields(row, ("sentence", "label"), where)
        texts.append(sentence.replace("Title: ", "", 1).replace("\nText: ", " ", 1).strip())
        labels.append(_label(label, classes, where))
    return texts, labels, classes


def load_topics(dataset: str, split: str, data_dir: str | os.PathLike | None = None) -> TopicSplit:
    """Load ``split`` ("train" or "test") of ``dataset`` ("yahoo-answers-topics" or "ag-news").

    A malformed line, text that is not UTF-8, a record without its fields or with a label outside
    the classes raises a ``ValueError`` naming the file and line (or record) and what is valid.
    """
    check_choice("dataset", dataset, DATASETS)
    check_choice("split", split, SPLITS)
    folder = require(dataset, data_dir)
    texts, labels, classes = (_yahoo if dataset == "yahoo-answers-topics" else _ag_news)(folder, split)
    return TopicSplit(texts, np.array(labels, dtype=np.int64), classes)


def dataset_digest(dataset: str, data_dir: str | os.PathLike | None = None) -> str:
    """Checksum of the contents of ``dataset``'s files (those its registry entry lists), for the
    fine-tuning cache key."""
    check_choice("dataset", dataset, DATASETS)
    folder = require(dataset, data_dir)
    files = sorted({p for pattern in get_spec(dataset).files for p in folder.glob(pattern)})
    return json_digest({p.name: file_digest(p) for p in files})


def per_class_sample(split: TopicSplit, per_class: int | None, seed: int) -> TopicSplit:
    """Up to ``per_class`` examples of every class (all when ``None``), drawn with ``seed``, shuffled."""
    if per_class is None:
        return split
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1 or None, got {per_class}")
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(split.labels == k))[:per_class]
              for k in range(len(split.classes))]
    return split.subset(rng.permutation(np.concatenate(picked)))


def concern_indices(
    labels: np.ndarray, concern: int, num_samples: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(positives, negatives)`` of class ``concern`` in ``labels`` (N,): up to
    ``num_samples`` of each (when None, all positives and as many negatives).

    Negatives are spread evenly over the other classes (round robin over shuffled pools).
    """
    n_classes = int(labels.max()) + 1
    if not 0 <= concern < n_classes:
        raise ValueError(f"concern={concern} is not valid; choose one of 0..{n_classes - 1}")
    if num_samples is not None and num_samples < 1:
        raise ValueError(f"num_samples must be >= 1 or None, got {num_samples}")
    rng = np.random.default_rng([seed, concern])
    pos = rng.permutation(np.flatnonzero(labels == concern))
    pools = [list(rng.permutation(np.flatnonzero(labels == k))) for k in range(n_classes) if k != concern]
    limit = num_samples if num_samples is not None else len(pos)
    neg: list[int] = []
    while len(neg) < limit and any(pools):
        for pool in pools:
            if pool and len(neg) < limit:
                neg.append(int(pool.pop()))
    return pos[:limit], np.array(neg, dtype=np.int64)


def concern_samples(
    split: TopicSplit, concern: int, num_samples: int | None, seed: int
) -> tuple[TopicSplit, TopicSplit]:
    """``(positives, negatives)`` of class ``concern`` (see :func:`concern_indices`)."""
    pos, neg = concern_indices(split.labels, concern, num_samples, seed)
    return split.subset(pos), split.subset(neg)


def encode(tokenizer, split: TopicSplit, max_length: int) -> dict[str, torch.Tensor]:
    """Tokenise ``split``: ``input_ids``, ``attention_mask`` (N, T) and ``labels`` (N,), T <= max_length."""
    enc = tokenizer(split.texts, padding="longest", truncation=True, max_length=max_length,
                    return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    batch["labels"] = torch.as_tensor(split.labels, dtype=torch.long)
    return batch


def trim_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` with the padding columns no row uses cut off: every (B, T) tensor to (B, T'), T' the
    longest row of ``attention_mask`` (right padding, as :func:`encode` gives); (B,) tensors as they are."""
    width = int(batch["attention_mask"].sum(1).max())
    return {k: v[:, :width] if v.ndim == 2 else v for k, v in batch.items()}


def collate_trimmed(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """DataLoader ``collate_fn``: stack the rows of an :class:`EncodedDataset`, then :func:`trim_padding`."""
    return trim_padding(torch.utils.data.default_collate(rows))


class EncodedDataset(torch.utils.data.Dataset):
    """Rows of an :func:`encode` dict, for a shuffling DataLoader."""

    def __init__(self, encoded: dict[str, torch.Tensor]):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded["labels"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.encoded.items()}


class LengthPoolBatches(torch.utils.data.Sampler):
    """A DataLoader ``batch_sampler``: every epoch, the N rows in a fresh random order (torch's
    ``RandomSampler`` with ``generator``) cut into batches of ``batch_size``.

    With ``pool`` > 0, each run of ``pool * batch_size`` rows of that order is first sorted by
    ``lengths`` (N,) (stable), and the batches are then shuffled: a batch holds questions of similar
    length, so :func:`trim_padding` leaves little padding. ``pool=0`` gives exactly a shuffling
    ``DataLoader(batch_size=..., shuffle=True, generator=...)``.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, pool: int, generator: torch.Generator):
        if batch_size < 1 or pool < 0:
            raise ValueError(f"batch_size={batch_size} must be >= 1 and pool={pool} >= 0")
        self.lengths, self.batch_size, self.pool, self.generator = lengths, batch_size, pool, generator

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rows = range(len(self.lengths))
        order = torch.tensor(list(torch.utils.data.RandomSampler(rows, generator=self.generator)))
        if self.pool:
            runs = order.split(self.pool * self.batch_size)
            order = torch.cat([run[torch.argsort(self.lengths[run], stable=True)] for run in runs])
        batches = order.split(self.batch_size)
        if self.pool:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=self.generator)]
        for batch in batches:
            yield batch.tolist()
