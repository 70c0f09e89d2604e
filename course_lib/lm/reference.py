"""The standard recipe, trained in the notebook's own process: pytorch/examples' ``word_language_model``.

What ``main.py`` of github.com/pytorch/examples (``word_language_model``) does with its defaults, on the
ids of an :class:`~course_lib.lm.data.LMCorpus`: an LSTM of 2 layers x 200 units over untied 200-wide
embeddings, dropout 0.2 on the embeddings and the LSTM's output (and between its layers), embedding and
decoder weights uniform in [-0.1, 0.1] and a zero decoder bias; the training ids cut into 20 lanes read
in windows of 35 with the state carried from window to window; plain SGD at a learning rate of 20 applied
to the weights directly after clipping the gradient norm at 0.25; after each epoch the validation
perplexity (10 lanes, the state carried), the rate divided by 4 after an epoch without a new best, and at
the end the best epoch's weights tested; seed 1111. With the vocabulary in order of first appearance
(:class:`~course_lib.lm.data.Vocabulary` without ``max_vocab``), the ids and every random draw are the
example's own, so it reproduces the example's numbers (the instructor's LM benchmark runs both);
training throughput is what this process achieves beside the workbook's models.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib.core.training import count_parameters, progress_enabled
from course_lib.lm.data import LMCorpus

SEED = 1111
EMBEDDING = HIDDEN = 200
LAYERS = 2
DROPOUT = 0.2
LR = 20.0
CLIP = 0.25
LANES, EVAL_LANES, BPTT = 20, 10, 35
ANNEAL = 4.0
INIT_RANGE = 0.1


class ReferenceLSTM(nn.Module):
    """The example's ``RNNModel("LSTM", ...)``: ids (T, B) and a state to log-probabilities (T * B, V) and
    the next state; its modules are created (and so drawn) in the example's order."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.drop = nn.Dropout(DROPOUT)
        self.encoder = nn.Embedding(vocab_size, EMBEDDING)
        self.rnn = nn.LSTM(EMBEDDING, HIDDEN, LAYERS, dropout=DROPOUT)
        self.decoder = nn.Linear(HIDDEN, vocab_size)
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -INIT_RANGE, INIT_RANGE)

    def forward(self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        output, state = self.rnn(self.drop(self.encoder(ids)), state)
        logits = self.decoder(self.drop(output))
        return F.log_softmax(logits.view(-1, logits.shape[-1]), dim=1), state

    def initial_state(self, lanes: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.parameters())
        return weight.new_zeros(LAYERS, lanes, HIDDEN), weight.new_zeros(LAYERS, lanes, HIDDEN)


def lanes(ids: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """(T,) ids as (T // n, n): ``n`` contiguous lanes side by side, the remainder dropped."""
    rows = len(ids) // n
    return ids[:rows * n].view(n, -1).t().contiguous().to(device)


def windows(source: torch.Tensor):
    """``(inputs (t, B), targets (t * B,))`` of every window of :data:`BPTT` rows (the last shorter)."""
    for i in range(0, source.size(0) - 1, BPTT):
        t = min(BPTT, len(source) - 1 - i)
        yield source[i:i + t], source[i + 1:i + 1 + t].reshape(-1)


@torch.no_grad()
def evaluate(model: ReferenceLSTM, source: torch.Tensor) -> float:
    """Mean loss per token over ``source`` (T, B), the state carried (the example's ``evaluate``)."""
    model.eval()
    state = model.initial_state(source.size(1))
    total = 0.0
    for inputs, targets in windows(source):
        log_probs, state = model(inputs, state)
        total += len(inputs) * F.nll_loss(log_probs, targets).item()
    return total / (len(source) - 1)


@dataclass
class ReferenceResult:
    """The run's figures: ``metrics`` keyed as the workbook's runs (``valid_ppl_stateful``,
    ``test_ppl_stateful``, ``tokens_per_s``, ``train_time_s``, ``parameters``; the windowed perplexities
    are ``None``: the example does not measure them) and each epoch's validation perplexity and rate."""

    metrics: dict[str, Any]
    epochs: list[dict[str, float]] = field(default_factory=list)


def train_reference(corpus: LMCorpus, epochs: int, *, train_tokens: int | None = None,
                    eval_tokens: int | None = None, device: torch.device | str = "cpu", seed: int = SEED,
                    progress: bool | None = None) -> ReferenceResult:
    """Train and test the example's recipe on ``corpus`` for ``epochs`` epochs (see the module's
    docstring), on the first ``train_tokens`` of its train part and the first ``eval_tokens`` of valid
    and test (``None``: all; a workbook run's ``train_tokens_used`` and ``eval_tokens_used`` give it the
    same tokens). Throughput counts the training tokens over the training loops' time (evaluation left
    out), with this process's torch threads. The run draws from its own seeded generator state: the
    caller's random state is the same afterwards."""
    if epochs < 1:
        raise ValueError(f"epochs={epochs!r} is not valid; it must be >= 1")
    device = torch.device(device)
    parts = {part: ids if n is None else ids[:n] for part, ids, n in (
        ("train", corpus.train, train_tokens), ("valid", corpus.valid, eval_tokens),
        ("test", corpus.test, eval_tokens))}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _train(parts, len(corpus.vocab), epochs, device, progress)


def _train(parts: dict[str, torch.Tensor], vocab_size: int, epochs: int, device: torch.device,
           progress: bool | None) -> ReferenceResult:
    train, valid, test = (lanes(parts[part], n, device)
                          for part, n in (("train", LANES), ("valid", EVAL_LANES), ("test", EVAL_LANES)))
    model = ReferenceLSTM(vocab_size).to(device)
    lr, best_loss, best_state = LR, math.inf, copy.deepcopy(model.state_dict())
    records, train_s, tokens = [], 0.0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        state = model.initial_state(LANES)
        started = time.perf_counter()
        bar = tqdm(list(windows(train)), desc=f"pytorch/examples LSTM {epoch}/{epochs}", leave=False,
                   disable=not progress_enabled(progress))
        for inputs, targets in bar:
            model.zero_grad()
            state = (state[0].detach(), state[1].detach())
            log_probs, state = model(inputs, state)
            loss = F.nll_loss(log_probs, targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            with torch.no_grad():
                for p in model.parameters():
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
            tokens += targets.numel()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_s += time.perf_counter() - started
        valid_loss = evaluate(model, valid)
        records.append({"epoch": epoch, "lr": lr, "valid_ppl": math.exp(valid_loss)})
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, copy.deepcopy(model.state_dict())
        else:
            lr /= ANNEAL
    model.load_state_dict(best_state)
    metrics = {"parameters": count_parameters(model), "valid_ppl": None, "test_ppl": None,
               "valid_ppl_stateful": records[-1]["valid_ppl"], "best_valid_ppl": math.exp(best_loss),
               "test_ppl_stateful": math.exp(evaluate(model, test)), "tokens_per_s": tokens / train_s,
               "train_time_s": train_s}
    return ReferenceResult(metrics, records)


def ratios_to_reference(ours: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
    """Workbook run / reference run, both runs' flat metrics: validation and test perplexity with the
    state carried (below 1: the workbook's is lower) and training throughput (above 1: it is faster)."""
    return {"valid_ppl_ratio_to_reference": ours["valid_ppl_stateful"] / reference["valid_ppl_stateful"],
            "test_ppl_ratio_to_reference": ours["test_ppl_stateful"] / reference["test_ppl_stateful"],
            "throughput_ratio_to_reference": ours["tokens_per_s"] / reference["tokens_per_s"]}
