"""Language ID: the workbook's strong model beside the identifiers a user would install instead.

On notebook 01's own test sentences (its data, split and seed; the ``full`` profile by default, which is
also its ``laptop`` profile): the strong net and the linear SVM as the notebook trains them, and lingua
(high-accuracy mode), langid.py and CLD2 restricted to the assignment's languages
(:mod:`course_lib.langid.peers`). Prints one row each (accuracy, errors of N) and the ratio of each peer's
errors to the strong net's; a peer that is not installed gets a line saying how to install it.

    pip install lingua-language-detector==2.1.1 py3langid==0.4.0 pycld2==0.42
    COURSE_DATA_DIR=../shared/data python benchmarks/langid_peers.py
    python benchmarks/langid_peers.py --profile smoke --set strong_epochs=2    # a quick check

``--set KEY=VALUE`` (repeatable, the value read as JSON) changes a setting of the profile.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_lib import langid
from course_lib.langid.peers import compare_with_peers


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), the value read as JSON when it parses."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected KEY=VALUE, e.g. strong_epochs=5")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison and print it; return ``{"table": DataFrame, "n_test": int, "seconds": {...}}``."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", choices=sorted(langid.ASSIGNMENT.profiles))
    parser.add_argument("--data-root", default=None, help="data root (None: $COURSE_DATA_DIR or ./data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", type=parse_setting, action="append", default=[],
                        metavar="KEY=VALUE", help="another value of one of the profile's settings")
    args = parser.parse_args(argv)
    settings = langid.ASSIGNMENT.settings(args.profile, dict(args.overrides))
    if settings.cpu_threads is not None:
        torch.set_num_threads(settings.cpu_threads)
    data = langid.load_langid(args.data_root, settings, seed=args.seed)
    print(f"{args.profile} profile: {len(data.languages)} languages, {len(data.x_train):,} training and "
          f"{len(data.x_test):,} test sentences ({data.source})", flush=True)
    seconds = {}
    started = time.perf_counter()
    strong = langid.fit_strong_model(data, settings, seed=args.seed)
    seconds["strong net"] = time.perf_counter() - started
    started = time.perf_counter()
    linear = langid.fit_linear_model(data, settings, seed=args.seed)
    seconds["linear SVM"] = time.perf_counter() - started
    ours = {"strong net": np.asarray(strong.predict(data.x_test)),
            "linear SVM": np.asarray(linear.predict(data.x_test))}
    table = compare_with_peers(data.x_test, data.y_test, data.languages, ours)
    strong_errors = int(table.loc["strong net", "errors"])
    table["errors / strong net's"] = table["errors"].astype("Float64") / max(strong_errors, 1)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    beaten = [name for name in ("lingua", "langid.py", "CLD2")
              if not np.isnan(table.loc[name, "accuracy"])
              and table.loc["strong net", "accuracy"] > table.loc[name, "accuracy"]]
    missing = [name for name in ("lingua", "langid.py", "CLD2") if np.isnan(table.loc[name, "accuracy"])]
    print(f"strong net ahead of: {', '.join(beaten) or 'none'}"
          + (f"; not installed: {', '.join(missing)}" if missing else "")
          + f" (training: strong net {seconds['strong net']:.0f} s, "
            f"linear SVM {seconds['linear SVM']:.0f} s)", flush=True)
    return {"table": table, "n_test": len(data.x_test), "seconds": seconds}


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
