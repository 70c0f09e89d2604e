"""Dataset registry: per data set, the files expected under the data root and where they come from.

Each :class:`DatasetSpec` names a folder under the data root, the files (glob patterns) that must be
there, and the remote files (URL, sha256 or a content check, size) that :func:`require` downloads when
asked to. Every file is verified, when downloaded and when found present: by its registered sha256, else
by its content (:mod:`course_lib.core.data.checks`: format, size range, a property of the real file; an
HTML page never passes as data). A file that fails is not kept (a download) or is reported damaged (a
file present), and the next fetch replaces it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.core.data.checks import BadContent, SquadJson, TokenText, ZipArchive, refuse_markup
from course_lib.core.data.download import DownloadError, download, extract_archive
from course_lib.core.data.root import DATA_ENV, cache_dir, fetch_command, resolve_data_root
from course_lib.core.digests import file_digest, json_digest
from course_lib.core.io import atomic_write_json, read_json


class MissingDataError(FileNotFoundError):
    """The data a loader needs is not under the data root (and could not be downloaded)."""


class CorruptDataError(ValueError):
    """A data file is present but is not the registered one (its sha256 differs)."""


MIRROR_ENV = "COURSE_DATA_MIRROR"
"""A URL base that replaces every canonical URL: ``$COURSE_DATA_MIRROR/<data set>/<file>``."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: saved as ``path`` inside the data set folder (unpacked if ``extract``).
    An ``optional`` file (e.g. a train split some copies lack) may fail to download without failing
    the data set. A file without a ``sha256`` has a content ``check`` (see :mod:`.checks`)."""

    url: str
    path: str
    sha256: str | None = None
    size: int | None = None
    extract: bool = False
    optional: bool = False
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its folder under the data root, expected files and remote sources."""

    name: str
    description: str
    files: tuple[str, ...]
    remote: tuple[RemoteFile, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def checked(self) -> tuple[RemoteFile, ...]:
        """The remote files with a registered sha256 that are stored as they are (not unpacked):
        each must be present and is verified."""
        return tuple(r for r in self.remote if r.sha256 and not r.extract)

    def missing(self, folder: Path) -> list[str]:
        """Patterns from :attr:`files` with no match under ``folder``, then checked files not there."""
        patterns = [p for p in self.files if not any(folder.glob(p))]
        return patterns + [r.path for r in self.checked if not (folder / r.path).is_file()]


_LINGUA = (
    "https://raw.githubusercontent.com/pemistahl/lingua-py/754ce211/language-testdata/sentences/"
)
_LANGID_SHA = json.loads(
    (Path(__file__).with_name("langid_sentences.sha256.json")).read_text(encoding="utf-8")
)
_YAHOO = "https://raw.githubusercontent.com/INK-USC/Lifelong-ICL/39c17c1f/data/yahoo_answers_topics/"
_AGNEWS = "https://raw.githubusercontent.com/cmnfriend/O-LoRA/07117e1f/CL_Benchmark/TC/agnews/"
_WT2 = "https://raw.githubusercontent.com/pytorch/examples/77f55b91/word_language_model/data/wikitext-2/"
_SQUAD = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "cifar-10-batches-py",
            "CIFAR-10, official pickled batches (Krizhevsky 2009)",
            ("data_batch_[1-5]", "test_batch", "batches.meta"),
            (
                RemoteFile(
                    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    "cifar-10-python.tar.gz",
                    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                    170498071,
                    extract=True,
                ),
            ),
        ),
        DatasetSpec(
            "cifar10-jpg",
            "CIFAR-10 as JPEG files in the ImageFolder layout (train/<class>/NNNN.jpg, test/...)",
            tuple(f"{split}/{c}/*.jpg" for split in ("train", "test") for c in (
                "airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck",
            )),
            notes="No download: use cifar-10-batches-py online, or place this folder by hand.",
        ),
        DatasetSpec(
            "langid-sentences",
            "one sentence per line, one file per language named by ISO 639-1/639-3 code",
            ("*.txt",),
            tuple(RemoteFile(_LINGUA + name, name, sha) for name, sha in _LANGID_SHA.items()),
        ),
        DatasetSpec(
            "wili-2018",
            "WiLI-2018 Wikipedia language identification benchmark (Thoma 2018)",
            ("x_train.txt", "y_train.txt", "x_test.txt", "y_test.txt", "labels.csv"),
            (RemoteFile("https://zenodo.org/record/841984/files/wili-2018.zip", "wili-2018.zip",
                        extract=True, check=ZipArchive(
                            30_000_000, 200_000_000,
                            ("x_train.txt", "y_train.txt", "x_test.txt", "y_test.txt", "labels.csv"),
                            (("x_train.txt", "y_train.txt"), ("x_test.txt", "y_test.txt")))),),
        ),
        DatasetSpec(
            "wikitext-2",
            "WikiText-2 v1 (tokenized, with <unk>), one paragraph per line",
            ("valid.txt", "test.txt"),
            (
                RemoteFile(_WT2 + "train.txt", "train.txt", optional=True,  # 2,088,628 tokens
                           check=TokenText(10_000_000, 11_500_000, 2_078_000, 2_099_000)),
                RemoteFile(_WT2 + "valid.txt", "valid.txt",
                           "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
                RemoteFile(_WT2 + "test.txt", "test.txt",
                           "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
            ),
            notes="train.txt may be absent offline: the LM loader then offers a named offline split.",
        ),
        DatasetSpec(
            "squad-v1.1",
            "SQuAD v1.1 (Rajpurkar et al. 2016), official JSON",
            ("dev-v1.1.json",),
            (
                RemoteFile(_SQUAD + "train-v1.1.json", "train-v1.1.json", optional=True,  # 87,599 questions
                           check=SquadJson("1.1", 28_000_000, 33_000_000, 85_000, 90_000)),
                RemoteFile(_SQUAD + "dev-v1.1.json", "dev-v1.1.json",
                           "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
                           4854279),
            ),
            notes="train-v1.1.json may be absent offline: the QA loader then holds out articles.",
        ),
        DatasetSpec(
            "yahoo-answers-topics",
            "Yahoo! Answers Topics sample: 1,000 train + 100 test questions, 10 classes",
            ("train_*.jsonl", "test.jsonl"),
            tuple(
                RemoteFile(_YAHOO + n, n, sha)
                for n, sha in [
                    ("train_0.jsonl", "a540d336e5f0e8deb2b8a1600d3e5dcaf343e913b5a53a471b1d3461c5324313"),
                    ("train_1.jsonl", "ed044dc73dbccfc5ae1e94e935da4c3a2fe869e6d34d475087c18df2e9a42e04"),
                    ("train_2.jsonl", "26363600c48785e200cbd6c511a696d6abd68fbb896d06024cc4bd0acaa570d5"),
                    ("train_3.jsonl", "88a269c2992e07ce095ff3d2ce7e53eb463e41589d3b3ae59f132f034cc1626a"),
                    ("train_4.jsonl", "b76461ce7d274a55b295b590476bee73b2d5e3483931e4d1f22f383028131c1f"),
                    ("test.jsonl", "c1a9ad2174cc57e298b56928831a17c272e77f9cdeb0c059bcb55fb70b8fb50c"),
                ]
            ),
        ),
        DatasetSpec(
            "ag-news",
            "AG News topic classification, 4 classes (4,000 train subset + 7,600 test)",
            ("train.json", "test.json", "labels.json"),
            tuple(
                RemoteFile(_AGNEWS + n, n, sha)
                for n, sha in [
                    ("train.json", "935fe86eb687d3d09f8b4035103761a94ca15df65a0980b1e7da4346a45d7a2a"),
                    ("test.json", "4cbed43bd30eb2841b053a13cb7b2dc4a2692934fd03832402a53cf557778849"),
                    ("labels.json", "d44ba5236490d6ae5c8689fcaaae4067d95dc13b14ab41d820634ca714a44e10"),
                ]
            ),
        ),
    ]
}


def get_spec(name: str) -> DatasetSpec:
    """Registry entry for ``name``; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(DATASETS)}") from None


def url_of(spec: DatasetSpec, remote: RemoteFile) -> str:
    """Where ``remote`` is fetched from: ``$COURSE_DATA_MIRROR/<data set>/<file>`` when that variable is
    set (a mirror, or a local server in the tests), else the canonical URL."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{spec.name}/{remote.path}" if mirror else remote.url


def missing_message(spec: DatasetSpec, root: Path, reason: str = "") -> str:
    """The error text for a missing data set: which files, where, and how to get them."""
    folder = root / spec.name
    missing = spec.missing(folder)
    more = " ..." if len(missing) > 8 else ""
    lacks = f": {folder} lacks {', '.join(missing[:8])}{more}" if missing else ""
    lines = [
        f"Data set {spec.name!r} ({spec.description}) not found{lacks}.",
        f"Expected under {folder}: {', '.join(spec.files)}"
        + (f" and the {len(spec.checked)} registered files" if spec.checked else ""),
        f"Data root searched: {root} (data_dir, else ${DATA_ENV}, else the checkout's data/ or ./data).",
    ]
    if spec.remote:
        lines.append(
            f"Online: {fetch_command(spec.name, root)} (mirror: {MIRROR_ENV}), or run the notebook with "
            "download = True; it fetches "
            + ", ".join(url_of(spec, r) for r in spec.remote[:3])
            + (" ..." if len(spec.remote) > 3 else "")
        )
    if spec.notes:
        lines.append(spec.notes)
    lines.append(f"Offline: set {DATA_ENV} to a folder that holds {spec.name}/.")
    if reason:
        lines.append(f"Download attempt failed: {reason}")
    return "\n".join(lines)


def sha256_of(path: Path) -> str:
    """sha256 of ``path``, remembered by (path, size, mtime) in the cache so a second call is instant."""
    path = path.resolve()
    stat = path.stat()
    record = cache_dir("verified") / f"{hashlib.sha256(str(path).encode()).hexdigest()[:24]}.json"
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        known = read_json(record)
        if {k: known.get(k) for k in stamp} == stamp:
            return known["sha256"]
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    atomic_write_json(record, {**stamp, "sha256": digest.hexdigest()})
    return digest.hexdigest()


def problem_of(path: Path, remote: RemoteFile) -> str | None:
    """What is wrong with ``path`` as ``remote``'s file, ``None`` when nothing is: its sha256 differs from
    the registered one, or (no sha256 registered) it is an HTML page or fails ``remote.check``. A passed
    content check is remembered by the file's sha256, so a second call is instant."""
    actual = sha256_of(path)
    if remote.sha256 is not None:
        return None if actual == remote.sha256 else (
            f"sha256 {actual} does not match the registered {remote.sha256}")
    record = cache_dir("verified") / f"content-{actual[:32]}.json"
    try:
        if read_json(record).get("check") == repr(remote.check):
            return None
    except (OSError, ValueError, AttributeError):
        pass
    try:
        refuse_markup(path)
        if remote.check is not None:
            remote.check(path)
    except BadContent as err:
        return str(err)
    atomic_write_json(record, {"check": repr(remote.check)})
    return None


def verify(spec: DatasetSpec, folder: Path) -> None:
    """Verify every registered file present in ``folder`` (:func:`problem_of`: sha256, else content);
    raise :class:`CorruptDataError` naming the file, what is wrong and how to fix it."""
    for remote in spec.remote:
        path = folder / remote.path
        if remote.extract or not path.is_file() or (problem := problem_of(path, remote)) is None:
            continue
        optional = " (it is optional: deleting it also works)" if remote.optional else ""
        raise CorruptDataError(
            f"{path}: {problem} (data set {spec.name!r}: the file is damaged, or another file is in its "
            "place). "
            f"Fetch it again with `{fetch_command(spec.name, folder.parent)}` "
            f"(from {url_of(spec, remote)}), or restore it from your course's copy of the data{optional}."
        )


def data_checksums(entries: Sequence[str], data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """{data set: checksum of the files in its folder} for the entries of an assignment's ``datasets``
    (of alternatives ``"a|b"``, the first present; one absent as ``"missing"``): the data part of a
    sweep's key, so that results made from other data never stand for this data's."""
    root = resolve_data_root(data_dir)
    checksums = {}
    for entry in entries:
        name = next((n for n in entry.split("|") if not get_spec(n).missing(root / n)), None)
        if name is None:
            checksums[entry] = "missing"
            continue
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        checksums[name] = json_digest({p.relative_to(folder).as_posix(): file_digest(p) for p in files})
    return checksums


def require(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download_missing: bool = False,
    progress: bool = True,
) -> Path:
    """Return the folder of data set ``name`` under the data root, downloading it if asked.

    Every registered file present is verified against its sha256 (remembered by path, size and mtime).
    Raises :class:`MissingDataError` with the expected files, the root searched and how to get
    them when the files are absent (and the download is off or failed, e.g. offline), and
    :class:`CorruptDataError` when a file's checksum differs. A download resumes: files already
    present and verified are kept, missing or damaged ones are fetched.
    """
    spec = get_spec(name)
    root = resolve_data_root(data_dir)
    folder = root / spec.name
    if not spec.missing(folder):
        try:
            verify(spec, folder)
            return folder
        except CorruptDataError:
            if not download_missing:
                raise
    elif not download_missing or not spec.remote:
        raise MissingDataError(missing_message(spec, root))
    try:
        fetch(spec, folder, progress=progress)
    except DownloadError as exc:
        raise MissingDataError(missing_message(spec, root, str(exc))) from exc
    if spec.missing(folder):
        raise MissingDataError(missing_message(spec, root, "downloaded files lack the layout"))
    verify(spec, folder)
    return folder


def fetch(spec: DatasetSpec, folder: Path, *, progress: bool = True,
          log: Callable[[str], None] = print) -> None:
    """Download the remote files of ``spec`` into ``folder`` (archives via the cache), each verified
    before it is kept (sha256, else its content): files present and verified are kept, missing ones
    fetched, damaged ones removed (with a notice) and fetched again; an optional file that cannot be had
    is noted."""
    for remote in spec.remote:
        def get(dest: Path, remote: RemoteFile = remote) -> Path:
            return download(url_of(spec, remote), dest, sha256=remote.sha256, size=remote.size,
                            check=remote.check, progress=progress)

        try:
            if remote.extract:
                extract_archive(get(cache_dir("downloads") / remote.path), folder)
                continue
            path = folder / remote.path
            if path.is_file():
                if (problem := problem_of(path, remote)) is None:
                    continue
                log(f"{path}: {problem}; removed, fetching it again")
                path.unlink()
            get(path)
        except DownloadError as err:
            if not remote.optional:
                raise
            log(f"{spec.name}: optional file {remote.path} not fetched ({err})")


def require_any(entries: Sequence[str], data_dir: str | os.PathLike | None = None, *,
                download_missing: bool = False, progress: bool = True) -> list[Path]:
    """The folder of each entry of an assignment's ``datasets``: a name, or alternatives ``"a|b"`` of
    which the first present one is used (verified), else the first with a download is fetched when
    ``download_missing``; raises like :func:`require` naming the first alternative otherwise."""
    root = resolve_data_root(data_dir)
    folders = []
    for entry in entries:
        names = entry.split("|")
        present = [n for n in names if not get_spec(n).missing(root / n)]
        name = present[0] if present else next((n for n in names if get_spec(n).remote), names[0])
        folders.append(require(name, root, download_missing=download_missing, progress=progress))
    return folders
