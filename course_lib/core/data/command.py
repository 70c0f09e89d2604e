"""``python -m course_lib data list|fetch``: see which data sets are present, and fetch them.

In a checkout, the bootstrap's ``data`` session (``-s data -- list|fetch ...``) runs this in the workbook's
environment.
``fetch NAME [NAME ...] | --all [--root DIR]`` downloads through the registry (sha256 checked, atomic,
resumed from what is already verified, retried); ``$COURSE_DATA_MIRROR`` replaces the canonical URLs.
The data root is ``--root``, else ``$COURSE_DATA_DIR``, else the checkout's ``data/`` (``./data`` for an
installed library; see :mod:`course_lib.core.data.root`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.core.data.registry import DATASETS, CorruptDataError, MissingDataError, require, verify
from course_lib.core.data.root import resolve_data_root


def status(name: str, root: Path) -> str:
    """``present``, ``missing: <files>`` or ``damaged: <reason>`` for data set ``name`` under ``root``."""
    spec = DATASETS[name]
    missing = spec.missing(root / name)
    if missing:
        return f"missing: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
    try:
        verify(spec, root / name)
    except CorruptDataError as err:
        return f"damaged: {str(err).split(';')[0]}"
    return "present"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="every data set and whether it is present")
    p_fetch = sub.add_parser("fetch", help="download data sets")
    p_fetch.add_argument("names", nargs="*", metavar="NAME", help=f"one of {sorted(DATASETS)}")
    p_fetch.add_argument("--all", action="store_true", help="every data set that has a download")
    for p in (p_list, p_fetch):
        p.add_argument("--root", type=Path, default=None,
                       help="data root (default: $COURSE_DATA_DIR, else the checkout's data/)")
    args = parser.parse_args(argv)
    root = resolve_data_root(args.root)
    if args.command == "list":
        print(f"data root: {root}")
        for name in sorted(DATASETS):
            print(f"{name:24s} {status(name, root)}")
        return 0
    names = sorted(n for n, s in DATASETS.items() if s.remote) if args.all else args.names
    unknown = [n for n in names if n not in DATASETS]
    if not names or unknown:
        parser.error(f"name the data sets to fetch ({unknown or 'none given'}); "
                     f"choose from {sorted(DATASETS)} or give --all")
    failed = 0
    for name in names:
        try:
            print(f"{name}: {require(name, root, download_missing=True)}")
        except (MissingDataError, CorruptDataError) as err:
            failed += 1
            print(f"{name}: FAILED\n{err}", file=sys.stderr)
    return 1 if failed else 0
