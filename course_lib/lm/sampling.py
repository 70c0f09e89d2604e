"""Text from a trained model: temperature and top-k sampling, one token at a time."""

from __future__ import annotations

import torch
from torch import nn

from course_lib.lm.data import EOS, Vocabulary
from course_lib.lm.models import logits_of


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per row of ``logits`` (B, V) -> (B,).

    Logits are divided by ``temperature`` (lower = greedier) and, with ``top_k``, all but the k
    largest are masked out before the softmax.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= logits.shape[-1]:
        raise ValueError(f"top_k must be in [1, {logits.shape[-1]}], got {top_k}")
    ### BEGIN SOLUTION
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    ### END SOLUTION


@torch.no_grad()
def generate(model: nn.Module, vocab: Vocabulary, prompt: str, *, max_tokens: int = 30,
             temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
             context: int | None = None) -> str:
    """Continue ``prompt`` (whitespace-tokenized) by ``max_tokens`` sampled tokens; ``<eos>`` shows as
    a line break. ``context`` keeps only the last tokens as input (a GPT's ``max_len``).

    One token per step, autoregressively: the model reads the ids so far (1, n) (only the last ``limit``
    of them when ``limit`` is set), its logits at the **last** position (1, V), on the CPU, give the next
    id through :func:`sample_next` (``temperature``, ``top_k`` and ``generator``), and that id is appended
    (on the model's ``device``) before the next step reads the ids again.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(vocab.encode(prompt.split()), device=device).unsqueeze(0)
    limit = context or getattr(model, "max_len", None)
    ### BEGIN SOLUTION
    for _ in range(max_tokens):
        window = ids if limit is None else ids[:, -limit:]
        logits = logits_of(model(window))[:, -1].cpu()
        nxt = sample_next(logits, temperature=temperature, top_k=top_k, generator=generator)
        ids = torch.cat([ids, nxt.to(device).unsqueeze(0)], dim=1)
    ### END SOLUTION
    return " ".join(vocab.decode(ids[0].tolist())).replace(f" {EOS}", "\n")
