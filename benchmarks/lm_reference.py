"""The laptop LSTM of assignment 03 beside pytorch/examples' ``word_language_model``, on the same tokens.

In this process, one after the other with ``--threads`` CPU threads: the example's recipe as
:func:`course_lib.lm.train_reference` trains it (its defaults: 2 x 200 LSTM, untied, batch 20, bptt 35,
SGD lr 20 divided by 4 on a plateau, clip 0.25, dropout 0.2, seed 1111) and the workbook's ``laptop``
LSTM, on the offline split (train = official valid, valid / test = the two halves of official test),
for ``--epochs`` epochs. Prints both validation perplexities (state carried across windows, as the
example measures; the workbook's windowed one too), test perplexities, training tokens/s and the ratios
workbook / reference: the same figures notebook 03's laptop profile prints beside its own run.

With ``--examples``, a checkout of github.com/pytorch/examples (its code is run, never copied here), the
example's own ``main.py`` also runs (a subprocess, same threads) on the same tokens written out as text
(words unseen in train as ``<unk>``), and its perplexities are printed beside the in-process ones: the
same ids and the same random draws, so they agree (to the last digit on the same kernels).

    COURSE_DATA_DIR=../shared/data python benchmarks/lm_reference.py
    COURSE_DATA_DIR=../shared/data python benchmarks/lm_reference.py --examples /tmp/examples
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib.core.data import require
from course_lib.core.device import seed_everything, set_cpu_threads
from course_lib.lm.config import LAPTOP
from course_lib.lm.data import UNK, Vocabulary, load_wikitext2, split_texts, tokenize_lines
from course_lib.lm.embeddings import vocab_embeddings
from course_lib.lm.reference import ratios_to_reference, train_reference
from course_lib.lm.train import train_language_model

VALID = re.compile(r"end of epoch\s+(\d+) \| time:\s*([\d.]+)s \| valid loss\s+[\d.]+ \| "
                   r"valid ppl\s+([\d.]+)")
SPEED = re.compile(r"ms/batch\s+([\d.]+)")
TEST = re.compile(r"End of training \| test loss\s+[\d.]+ \| test ppl\s+([\d.]+)")


def write_offline_split(root: Path, dest: Path) -> int:
    """Write the offline split's parts into ``dest`` as train.txt / valid.txt / test.txt, one line per
    line of text, words unseen in train replaced by ``<unk>``; returns the vocabulary size."""
    texts = split_texts("offline", root)
    vocab = Vocabulary.from_tokens(tokenize_lines(texts["train"]))
    for part, lines in texts.items():
        words = (" ".join(w if w in vocab.stoi else UNK for w in line.split()) for line in lines)
        (dest / f"{part}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return len(vocab)


def run_reference(examples: Path, data: Path, epochs: int, threads: int) -> dict[str, float]:
    """Run the reference's main.py with its defaults and the assignment's sizes; parse its log."""
    folder = examples / "word_language_model"
    command = [sys.executable, "main.py", "--data", str(data), "--epochs", str(epochs), "--emsize", "200",
               "--nhid", "200", "--nlayers", "2", "--save", str(data / "model.pt")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    log = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=True).stdout
    minutes = (time.perf_counter() - started) / 60
    epochs_seen = VALID.findall(log)
    speeds = [float(ms) for ms in SPEED.findall(log)]
    if len(epochs_seen) != epochs or not speeds or not TEST.search(log):
        raise RuntimeError(f"unexpected output of {' '.join(command)}:\n{log}")
    return {"valid_ppl": float(epochs_seen[-1][2]), "test_ppl": float(TEST.search(log).group(1)),
            "tokens_per_s": sum(20 * 35 / (ms / 1000) for ms in speeds) / len(speeds), "minutes": minutes}


def run_workbook(root: Path, epochs: int, threads: int) -> dict[str, float]:
    """Train the laptop profile's LSTM (its settings, ``epochs`` epochs, the annealing phase kept shorter
    than the run) and return its metrics."""
    settings = LAPTOP.override(epochs=epochs, lr_anneal_epochs=min(LAPTOP.lr_anneal_epochs, epochs - 1),
                               checkpoint=False, gpt_beside=False)
    set_cpu_threads(threads)
    seed_everything(0)
    corpus = load_wikitext2(settings.split, folder=root, max_vocab=settings.max_vocab)
    embeddings = vocab_embeddings(corpus.vocab, settings.embeddings, seed=0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lm-laptop-") as run_dir:
        result = train_language_model(settings, corpus, embeddings, device="cpu", run_dir=run_dir, seed=0)
    return {**result.metrics, "minutes": (time.perf_counter() - started) / 60}


def run_reference_here(root: Path, epochs: int, threads: int) -> dict[str, float]:
    """The example's recipe trained in this process (:func:`course_lib.lm.train_reference`)."""
    set_cpu_threads(threads)
    corpus = load_wikitext2(LAPTOP.split, folder=root, max_vocab=LAPTOP.max_vocab)
    started = time.perf_counter()
    result = train_reference(corpus, epochs)
    return {**result.metrics, "minutes": (time.perf_counter() - started) / 60}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the comparison; return ``{"reference": ..., "workbook": ..., "ratios": ...}`` (and
    ``"examples"``, the example's own run, with ``--examples``)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=Path, default=None,
                        help="a checkout of pytorch/examples: also run its own main.py")
    parser.add_argument("--data-root", default=None, help="data root (None: $COURSE_DATA_DIR or ./data)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    root = require("wikitext-2", args.data_root)
    figures: dict[str, dict[str, float]] = {}
    if args.examples is not None:
        with tempfile.TemporaryDirectory(prefix="wikitext-2-offline-") as tmp:
            vocab_size = write_offline_split(root, Path(tmp))
            print(f"offline split, {vocab_size:,} words; {args.epochs} epochs, {args.threads} threads",
                  flush=True)
            figures["examples"] = ex = run_reference(args.examples, Path(tmp), args.epochs, args.threads)
        print(f"pytorch/examples main.py (its defaults): valid ppl {ex['valid_ppl']:.2f} (state carried), "
              f"test {ex['test_ppl']:.2f}, {ex['tokens_per_s']:.0f} tokens/s, {ex['minutes']:.1f} min",
              flush=True)
    figures["reference"] = ref = run_reference_here(root, args.epochs, args.threads)
    print(f"its recipe in this process: valid ppl {ref['valid_ppl_stateful']:.2f} (state carried), test "
          f"{ref['test_ppl_stateful']:.2f}, {ref['tokens_per_s']:.0f} tokens/s, {ref['minutes']:.1f} min",
          flush=True)
    figures["workbook"] = ours = run_workbook(root, args.epochs, args.threads)
    print(f"workbook laptop LSTM: valid ppl {ours['valid_ppl_stateful']:.1f} (state carried; windowed "
          f"{ours['valid_ppl']:.1f}), test {ours['test_ppl_stateful']:.1f} (windowed "
          f"{ours['test_ppl']:.1f}), {ours['tokens_per_s']:.0f} tokens/s, {ours['minutes']:.1f} min")
    figures["ratios"] = r = ratios_to_reference(ours, ref)
    print(f"workbook / reference, same process: valid ppl {r['valid_ppl_ratio_to_reference']:.3f}, test ppl "
          f"{r['test_ppl_ratio_to_reference']:.3f}, throughput {r['throughput_ratio_to_reference']:.2f}")
    return figures


if __name__ == "__main__":
    main()
