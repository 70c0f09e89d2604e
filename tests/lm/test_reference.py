"""course_lib.lm.reference: pytorch/examples' word_language_model recipe, trained in this process.

The recipe's own ``main.py`` is not part of the workbook; where a checkout of github.com/pytorch/examples
is named by ``PYTORCH_EXAMPLES``, the last test runs it beside :func:`train_reference` on the same tokens
and checks that both print the same perplexities.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib.lm.data import UNK, LMCorpus, Vocabulary, tokenize_lines
from course_lib.lm.reference import (
    ANNEAL,
    LANES,
    LR,
    ReferenceLSTM,
    lanes,
    ratios_to_reference,
    train_reference,
    windows,
)

LINES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the mat and the log"] * 300


def line_corpus(lines: list[str] = LINES) -> LMCorpus:
    vocab = Vocabulary.from_tokens(tokenize_lines(lines))
    ids = torch.from_numpy(vocab.encode(tokenize_lines(lines)))
    return LMCorpus("offline", vocab, ids, ids[:1000], ids[1000:2000])


def test_ratios_to_the_reference_are_workbook_over_reference():
    ours = {"valid_ppl_stateful": 150.0, "test_ppl_stateful": 140.0, "tokens_per_s": 4500.0}
    theirs = {"valid_ppl_stateful": 200.0, "test_ppl_stateful": 175.0, "tokens_per_s": 5000.0}
    assert ratios_to_reference(ours, theirs) == {"valid_ppl_ratio_to_reference": 0.75,
                                                 "test_ppl_ratio_to_reference": 0.8,
                                                 "throughput_ratio_to_reference": 0.9}


def test_lanes_and_windows_cut_the_ids_as_the_example_does():
    ids = torch.arange(23)
    source = lanes(ids, 4, torch.device("cpu"))
    assert source.shape == (5, 4) and source[:, 1].tolist() == [5, 6, 7, 8, 9]  # lane 1 continues lane 0
    parts = list(windows(torch.arange(80).view(80, 1)))
    assert [len(x) for x, _ in parts] == [35, 35, 9]  # the last window ends one before the end
    assert torch.equal(parts[0][1], torch.arange(1, 36))  # targets: the next token


def test_the_recipe_learns_anneals_without_progress_and_tests_its_best_epoch():
    torch.set_num_threads(1)
    corpus = line_corpus()
    model = ReferenceLSTM(len(corpus.vocab))
    assert model.decoder.weight.abs().max() <= 0.1 and not model.decoder.bias.any()
    result = train_reference(corpus, 3, progress=False)
    m = result.metrics
    assert [e["epoch"] for e in result.epochs] == [1, 2, 3]
    assert m["valid_ppl"] is None and m["test_ppl"] is None  # the example measures the state carried only
    assert 1 < m["valid_ppl_stateful"] < len(corpus.vocab) and math.isfinite(m["test_ppl_stateful"])
    assert m["best_valid_ppl"] == min(e["valid_ppl"] for e in result.epochs)
    assert m["parameters"] == sum(p.numel() for p in model.parameters())
    assert m["tokens_per_s"] > 0 and m["train_time_s"] > 0
    rates = [e["lr"] for e in result.epochs]
    for before, after, record in zip(rates, rates[1:], result.epochs, strict=False):  # / 4 after no new best
        best_so_far = min(e["valid_ppl"] for e in result.epochs[:record["epoch"]])
        assert after == (before if record["valid_ppl"] == best_so_far else before / ANNEAL)
    assert rates[0] == LR
    torch.manual_seed(5)
    state = torch.get_rng_state()
    again = train_reference(corpus, 3, progress=False)  # seeded: the same numbers
    assert again.epochs == result.epochs
    assert torch.equal(torch.get_rng_state(), state)  # and the caller's random stream is left as it was
    with pytest.raises(ValueError, match="epochs=0"):
        train_reference(corpus, 0)
    cut = train_reference(corpus, 1, train_tokens=1400, eval_tokens=700, progress=False)
    trained = cut.metrics["tokens_per_s"] * cut.metrics["train_time_s"]
    assert trained == pytest.approx((1400 // LANES - 1) * LANES)  # 70 rows of 20 lanes: 69 rows of targets


EXAMPLES = os.environ.get("PYTORCH_EXAMPLES")


@pytest.mark.skipif(not EXAMPLES, reason="PYTORCH_EXAMPLES, a checkout of pytorch/examples, is not set")
def test_it_reproduces_the_examples_own_numbers(tmp_path):
    lines = {"train": LINES[:800], "valid": LINES[800:1000] + ["the zebra sat"], "test": LINES[1000:]}
    vocab = Vocabulary.from_tokens(tokenize_lines(lines["train"]))
    for part, text in lines.items():  # as benchmarks/lm_reference.py writes them: unseen words as <unk>
        (tmp_path / f"{part}.txt").write_text("\n".join(
            " ".join(w if w in vocab.stoi else UNK for w in line.split()) for line in text) + "\n")
    ids = {p: torch.from_numpy(vocab.encode(tokenize_lines(t))) for p, t in lines.items()}
    corpus = LMCorpus("offline", vocab, ids["train"], ids["valid"], ids["test"])
    command = [sys.executable, "main.py", "--data", str(tmp_path), "--epochs", "2", "--save",
               str(tmp_path / "model.pt")]
    log = subprocess.run(command, cwd=Path(EXAMPLES) / "word_language_model", capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    theirs = [float(v) for v in re.findall(r"valid ppl\s+([\d.]+)", log.stdout)]
    test = float(re.search(r"test ppl\s+([\d.]+)", log.stdout).group(1))
    torch.set_num_threads(1)
    ours = train_reference(corpus, 2, progress=False)
    assert [round(e["valid_ppl"], 2) for e in ours.epochs] == theirs
    assert round(ours.metrics["test_ppl_stateful"], 2) == test
