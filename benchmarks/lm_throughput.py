"""Training throughput (tokens/s) of the assignment-03 models, on CPU and (when present) GPU.

For each device and model, times optimizer steps on random tokens (throughput does not depend on
the text) in four variants: eager fp32, mixed precision (bfloat16 autocast), ``torch.compile``, and
both; prints tokens/s and the ratio to eager fp32 on the same device.

    python benchmarks/lm_throughput.py                      # CPU (and GPU if any), small sizes
    python benchmarks/lm_throughput.py --size full --steps 50   # the full profile's model sizes
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from course_lib.core.device import seed_everything
from course_lib.lm.models import build_model
from course_lib.lm.train import lm_loss

SIZES = {  # vocab, batch, seq_len, model options
    "small": (2000, 16, 32, {"lstm": dict(hidden=64), "gpt1": dict(d_model=64, n_heads=2)}),
    "full": (33278, 32, 64, {"lstm": dict(hidden=512), "gpt1": dict(d_model=256, n_heads=4)}),
}
VARIANTS = (("eager fp32", False, False), ("amp bf16", True, False), ("compile", False, True),
            ("compile + amp", True, True))


def tokens_per_s(name: str, device: torch.device, size: str, steps: int, amp: bool, compiled: bool) -> float:
    """Tokens/s over ``steps`` AdamW steps after warm-up steps (which also trigger compilation)."""
    vocab, batch, seq_len, options = SIZES[size]
    seed_everything(0)
    extra = {"max_len": seq_len} if name == "gpt1" else {}
    model = build_model(name, vocab, 1, dropout=0.1, **options[name], **extra)
    model.to(device).train()
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, vocab, (batch, seq_len), device=device)
    y = torch.randint(0, vocab, (batch, seq_len), device=device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else nullcontext

    def step():
        with autocast():
            loss, _ = lm_loss(step_model, (x, y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch * seq_len / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"],
                        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    args = parser.parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda was asked for but no CUDA GPU is available")
    print(f"{'device':6s} {'model':5s} {'variant':14s} {'tokens/s':>10s} {'ratio':>6s}")
    for dev in args.devices:
        device = torch.device(dev)
        for name in ("lstm", "gpt1"):
            baseline = None
            for label, amp, compiled in VARIANTS:
                if compiled and args.no_compile:
                    continue
                rate = tokens_per_s(name, device, args.size, args.steps, amp, compiled)
                baseline = baseline or rate
                print(f"{dev:6s} {name:5s} {label:14s} {rate:10.0f} {rate / baseline:6.2f}", flush=True)


if __name__ == "__main__":
    main()
