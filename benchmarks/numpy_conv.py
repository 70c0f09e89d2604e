"""Time the course's loop convolution, the vectorised numpy one and torch's conv2d on the same data.

float64, batch 16, 32x32, 16 -> 32 channels, 3x3 filters, pad 1, stride 1 (NHWC for numpy, NCHW for
torch). Prints the median of several repeats and the ratios; target: fast >= 200x faster than the loops
and no slower than ``torch.nn.functional.conv2d``.

    python benchmarks/numpy_conv.py [--batch 16] [--repeats 5] [--loop-repeats 1] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.cnn import conv_forward, conv_forward_fast
from course_lib.core.device import set_cpu_threads


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    set_cpu_threads(args.threads)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((args.batch, 32, 32, 16))
    W = rng.standard_normal((3, 3, 16, 32))
    b = rng.standard_normal((1, 1, 1, 32))
    hp = {"pad": 1, "stride": 1}
    A_t = torch.from_numpy(A).permute(0, 3, 1, 2).contiguous()
    W_t = torch.from_numpy(W).permute(3, 2, 0, 1).contiguous()
    b_t = torch.from_numpy(b.ravel())

    z_fast = conv_forward_fast(A, W, b, hp)[0]
    z_torch = F.conv2d(A_t, W_t, b_t, padding=1).permute(0, 2, 3, 1).numpy()
    assert np.allclose(z_fast, z_torch, atol=1e-10), "fast and torch disagree"
    times = {
        "loop": median_time(lambda: conv_forward(A, W, b, hp), args.loop_repeats),
        "fast": median_time(lambda: conv_forward_fast(A, W, b, hp), args.repeats),
        "torch": median_time(lambda: F.conv2d(A_t, W_t, b_t, padding=1), args.repeats),
    }
    print(f"float64 conv, batch {args.batch}, 32x32, 16 -> 32 channels, 3x3, pad 1 "
          f"(torch threads: {torch.get_num_threads()})")
    for name, seconds in times.items():
        print(f"  {name:>5}: {seconds * 1e3:10.2f} ms")
    ratios = {"loop / fast": times["loop"] / times["fast"], "torch / fast": times["torch"] / times["fast"]}
    for name, ratio in ratios.items():
        print(f"  {name}: {ratio:8.1f}x")
    ok = ratios["loop / fast"] >= 200 and ratios["torch / fast"] >= 1
    print("target (fast >= 200x the loops, no slower than torch):", "met" if ok else "NOT met")
    return times


if __name__ == "__main__":
    main()
