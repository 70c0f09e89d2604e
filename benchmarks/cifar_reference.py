"""CIFAR-10: the workbook's laptop profile beside airbench94 itself, in one process, on the same data.

airbench94 is Keller Jordan's own training code as published on PyPI (``pip install airbench==0.1.8
torchvision``; it imports torchvision), called unchanged as a library: ``airbench.train94`` with its
own network, hyper-parameters (9.9 epochs of batch 1024, ...), data loader, lookahead and six-view
test-time augmentation. The workbook's laptop profile follows its successor, airbench94_muon (8 epochs
of batch 2000, Muon on the conv filters; see ``course_lib/cnn/config.py``). What airbench94 assumes of
a GPU is adapted from outside, for the length of its calls:

* its model's ``.half()`` and ``.cuda()`` leave the float32 weights on the CPU, and its images'
  ``.half()`` gives float32 (wider than its fp16, so nothing is rounded away); its network's forward runs
  under the autocast the workbook trains with (:func:`course_lib.core.device.autocast`: bf16 on a CPU
  with native bf16, else float32) and hands on float32 logits, as the workbook's loss sees them (its
  own ``make_net`` argument, :func:`autocast_forward`); the rest (its whitening layer's set-up, its
  optimizer and lookahead) runs in float32;
* its data files (``cifar10/{train,test}.pt``, read onto the CPU) hold the images the workbook trains
  on (:func:`course_lib.cnn.load_cifar10`, the JPEG copy offline); the training images in a seeded
  random order, as in the official files, so the first 5,000 that set its whitening layer are a random
  sample and not one class;
* its CUDA events time with ``time.perf_counter`` and ``torch.cuda.synchronize`` does nothing. Its
  training time is what it measures itself (the whitening layer's set-up and the training epochs, not its
  evaluations), the workbook's the sum of its epochs' training times.

Both run with the same ``--threads`` and seed, one after the other (``--first``). Printed: each side's
test accuracy (six-view test-time augmentation), epochs, optimizer steps, training images seen, training
seconds, milliseconds per training image and the ratios workbook / airbench94. ``--set KEY=VALUE``
(repeatable, the value read as JSON) changes one of the workbook's laptop settings, e.g.
``--set epochs=10``.

    COURSE_DATA_DIR=../shared/data python benchmarks/cifar_reference.py --threads 2
    python benchmarks/cifar_reference.py --train-size 2048 --test-size 1000 --epochs 1   # a quick check
    python benchmarks/cifar_reference.py --steps 20 --threads 2    # per-step timing only, interleaved

``--steps R`` trains neither to the end: it times, interleaved round by round (R rounds after one
untimed), one training step of each side at its own batch (forward, backward, optimizer and its
schedule; airbench94's lookahead every fifth step) on a batch each side's own loader served, with the
whitening layer's bias training and held (both sides hold it after 3 epochs, and then no gradient
reaches that layer), and each side's data pipeline per batch (a whole epoch of its loader, divided by
its batches), and prints the min and median wall and CPU time of each and their ratios per training
image (the batches differ: 2000 against 1024).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.cnn import LAPTOP, CifarSplit, CNNSettings, DeviceBatches, build_model, load_cifar10
from course_lib.cnn.cifar import make_optimizer, predict_proba, train_cnn
from course_lib.core.device import amp_dtype, autocast, cpu_model, seed_everything
from course_lib.core.settings import UNSET
from course_lib.core.training import accuracy

AIRBENCH_VERSION = "0.1.8"
INSTALL = f"pip install airbench=={AIRBENCH_VERSION} torchvision"


def import_airbench():
    """The ``airbench`` package (its 94% recipe is ``airbench.lib_airbench94``); a clear error without it."""
    try:
        import airbench
        import airbench.lib_airbench94
        import airbench.utils
    except ImportError as err:
        raise SystemExit(f"airbench is not installed ({err}): {INSTALL}") from err
    from importlib import metadata

    version = metadata.version("airbench")
    if version != AIRBENCH_VERSION:
        print(f"note: airbench {version} is installed; this comparison was written for {AIRBENCH_VERSION}")
    return airbench


class WallClockEvent:
    """Stands in for ``torch.cuda.Event(enable_timing=True)`` on a CPU: ``record`` notes the time,
    ``elapsed_time`` returns milliseconds and appends them to :attr:`intervals` (what airbench timed)."""

    intervals: list[float] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.at = 0.0

    def record(self, *args: Any) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: WallClockEvent) -> float:
        ms = (end.at - self.at) * 1000
        WallClockEvent.intervals.append(ms)
        return ms


@contextlib.contextmanager
def airbench_on_cpu(airbench, data_root: Path) -> Iterator[None]:
    """For the block: airbench's ``.half()``/``.cuda()`` keep float32 tensors and modules on the CPU, its
    CUDA events time the wall clock, and its ``CifarLoader("cifar10", ...)`` reads ``data_root/cifar10``
    onto the CPU (it must be there: airbench would download the official files instead)."""
    patches = [(nn.Module, "half", lambda self: self), (nn.Module, "cuda", lambda self, *a, **k: self),
               (torch.Tensor, "half", lambda self, *a, **k: self.float()),
               (torch.cuda, "Event", WallClockEvent), (torch.cuda, "synchronize", lambda *a, **k: None)]
    base = airbench.utils.CifarLoader

    class CpuCifarLoader(base):
        def __init__(self, path: str, train: bool = True, *args: Any, **kwargs: Any) -> None:
            folder = data_root / Path(path).name
            file = folder / ("train.pt" if train else "test.pt")
            if not file.is_file():
                raise FileNotFoundError(f"{file} is missing (write_airbench_data writes it)")
            kwargs["gpu"] = "cpu"
            super().__init__(str(folder), train, *args, **kwargs)

    patches.append((airbench.utils, "CifarLoader", CpuCifarLoader))
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def write_airbench_data(train: CifarSplit, test: CifarSplit, folder: Path, seed: int) -> Path:
    """``folder/cifar10/{train,test}.pt`` as airbench's loader reads them (uint8 NHWC images, labels,
    class names), the training images in a seeded random order; returns ``folder``."""
    root = folder / "cifar10"
    root.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(train))
    for name, split, keep in (("train", train, order), ("test", test, np.arange(len(test)))):
        torch.save({"images": torch.from_numpy(split.images[keep]),
                    "labels": torch.from_numpy(split.labels[keep]), "classes": list(split.classes)},
                   root / f"{name}.pt")
    return folder


def autocast_forward(net: nn.Module, amp: bool) -> nn.Module:
    """``net`` (airbench's) with its forward under the workbook's autocast, its logits handed on in
    float32: the loss is then computed in float32, as the workbook's is under autocast, and everything
    else airbench does (setting the whitening layer, the optimizer, lookahead) stays in float32."""
    forward = net.forward

    def autocast_then_float(*args: Any, **kwargs: Any) -> torch.Tensor:
        with autocast("cpu", amp):
            return forward(*args, **kwargs).float()

    net.forward = autocast_then_float
    return net


def run_airbench(airbench, data_root: Path, *, epochs: float, seed: int, amp: bool) -> dict[str, Any]:
    """Train airbench94 (its defaults but ``epochs``) and evaluate it with its six-view TTA."""
    hyp = airbench.lib_airbench94.hyp
    WallClockEvent.intervals = []
    with airbench_on_cpu(airbench, data_root):
        seed_everything(seed)
        loader = airbench.utils.CifarLoader("cifar10", train=True, batch_size=hyp["opt"]["batch_size"],
                                            aug=hyp["aug"], altflip=True)
        steps = math.ceil(len(loader) * epochs)
        model = airbench.train94(loader, epochs=epochs, verbose=False,
                                 make_net=lambda: autocast_forward(airbench.make_net94(), amp))
        train_s = sum(WallClockEvent.intervals)
        broken = [name for name, t in model.state_dict().items()
                  if t.is_floating_point() and not t.isfinite().all()]
        if broken:
            raise RuntimeError(f"airbench94's {broken[:3]} are not finite after training: its run on the CPU "
                               "went wrong, so there is nothing to compare with")
        test_loader = airbench.utils.CifarLoader("cifar10", train=False, batch_size=2000)
        started = time.perf_counter()
        test_accuracy = airbench.evaluate(model, test_loader, tta_level=hyp["net"]["tta_level"])
        tta_s = time.perf_counter() - started
    return {"test_accuracy": test_accuracy, "epochs": epochs, "steps": steps,
            "images": steps * min(loader.batch_size, len(loader.images)), "train_s": train_s / 1000,
            "tta_s": tta_s}


def run_workbook(settings: CNNSettings, train: CifarSplit, test: CifarSplit, *, seed: int) -> dict[str, Any]:
    """Train the laptop profile's network as notebook 02 does and evaluate it with its TTA."""
    seed_everything(seed)
    model = build_model(settings, train)
    history = train_cnn(model, train, test, settings, seed=seed, device="cpu")
    started = time.perf_counter()
    probabilities = predict_proba(model, test, "cpu", amp=settings.amp, tta=settings.tta)
    tta_s = time.perf_counter() - started
    per_epoch = len(train) // settings.batch_size if len(train) > settings.batch_size else 1
    steps = len(history.epochs) * per_epoch
    return {"test_accuracy": accuracy(probabilities.argmax(1), test.labels), "epochs": settings.epochs,
            "steps": steps, "images": steps * min(settings.batch_size, len(train)),
            "train_s": sum(history.column("epoch_time_s")), "tta_s": tta_s}


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """The ratios workbook / airbench94 (accuracy as a difference)."""
    return {"accuracy_difference": ours["test_accuracy"] - theirs["test_accuracy"],
            "train_time_ratio": ours["train_s"] / theirs["train_s"],
            "image_time_ratio": (ours["train_s"] / ours["images"]) / (theirs["train_s"] / theirs["images"]),
            "images_ratio": ours["images"] / theirs["images"]}


def print_comparison(ours: dict[str, Any], theirs: dict[str, Any], ratios: dict[str, float]) -> None:
    rows = [("test accuracy (six-view TTA)", "test_accuracy", "{:.4f}"), ("epochs", "epochs", "{:g}"),
            ("optimizer steps", "steps", "{:d}"), ("training images seen", "images", "{:,d}"),
            ("training time (s)", "train_s", "{:.1f}"),
            ("TTA evaluation (s)", "tta_s", "{:.1f}")]
    print(f"{'':30s} {'workbook laptop':>16s} {'airbench94':>12s}")
    for label, key, fmt in rows:
        print(f"{label:30s} {fmt.format(ours[key]):>16s} {fmt.format(theirs[key]):>12s}")
    print(f"{'training ms per image':30s} {ours['train_s'] / ours['images'] * 1e3:16.3f} "
          f"{theirs['train_s'] / theirs['images'] * 1e3:12.3f}")
    print(f"accuracy workbook - airbench94: {ratios['accuracy_difference']:+.4f}; training time workbook / "
          f"airbench94: {ratios['train_time_ratio']:.3f} (per image {ratios['image_time_ratio']:.3f}, "
          f"images {ratios['images_ratio']:.3f})")
    verdict = ratios["accuracy_difference"] >= 0 and ratios["train_time_ratio"] <= 1
    print("target (accuracy at least airbench94's in no more training time):",
          "met" if verdict else "NOT met")


# ---------------------------------------------------------------------------------------------------
# per-step timing, interleaved


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def workbook_stepper(settings: CNNSettings, train: CifarSplit, seed: int) -> tuple[Callable, Callable]:
    """``(step, data_epoch)`` of the workbook: one training step as :func:`~course_lib.core.training.fit`
    takes it (autocast forward and loss, backward, optimizer, per-step schedule) on a batch its
    :class:`DeviceBatches` served, and one epoch of that loader."""
    seed_everything(seed)
    model = build_model(settings, train).to(memory_format=torch.channels_last)
    loader = DeviceBatches(train, "cpu", settings.batch_size, shuffle=True, augment=settings.augment,
                           crop_pad=settings.crop_pad, channels_last=True, drop_last=True,
                           alternate_flip_seed=seed if settings.alternate_flip else None)
    optimizer, scheduler = make_optimizer(model, settings.override(epochs=10_000), len(loader))
    if settings.lookahead:
        optimizer.start = 0  # averaging every fifth step from the first, as airbench's
    x, y = next(iter(loader))

    def step(bias_trains: bool) -> None:
        model.whiten_bias_trains = bias_trains
        with autocast("cpu", settings.amp):
            loss = F.cross_entropy(model(x), y, label_smoothing=settings.label_smoothing)
        float(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:  # the learning rate of the next step
            scheduler.after_step()

    def data_epoch() -> int:
        return sum(1 for _ in loader)

    return step, data_epoch


def airbench_stepper(airbench, seed: int, amp: bool) -> tuple[Callable, Callable]:
    """``(step, data_epoch)`` of airbench94, its training step as ``airbench.utils.train`` takes it (the
    optimizer's groups and scaled rates, the schedule, lookahead every fifth step) and one epoch of its
    ``CifarLoader``; to be called inside :func:`airbench_on_cpu`."""
    hyp, utils = airbench.lib_airbench94.hyp, airbench.utils
    seed_everything(seed)
    loader = utils.CifarLoader("cifar10", train=True, batch_size=hyp["opt"]["batch_size"], aug=hyp["aug"],
                               altflip=True)
    model = autocast_forward(airbench.make_net94(), amp)
    utils.init_whitening_conv(model[0], loader.normalize(loader.images[:5000]))
    o = hyp["opt"]
    kilostep_scale = 1024 * (1 + 1 / (1 - o["momentum"]))
    lr = o["lr"] / kilostep_scale
    wd = o["weight_decay"] * o["batch_size"] / kilostep_scale
    norm = [p for k, p in model.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in model.named_parameters() if "norm" not in k and p.requires_grad]
    lr_biases = lr * o["bias_scaler"]
    optimizer = torch.optim.SGD([{"params": norm, "lr": lr_biases, "weight_decay": wd / lr_biases},
                                 {"params": other, "lr": lr, "weight_decay": wd / lr}],
                                momentum=o["momentum"], nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0)
    lookahead = utils.LookaheadState(model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=o["label_smoothing"], reduction="none")
    x, y = next(iter(loader))
    count = [0]

    def step(bias_trains: bool) -> None:
        model[0].bias.requires_grad = bias_trains  # as airbench.utils.train sets it each epoch
        loss = loss_fn(model(x), y).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        count[0] += 1
        if count[0] % 5 == 0:
            lookahead.update(model, decay=0.5)

    def data_epoch() -> int:
        return sum(1 for _ in loader)

    return step, data_epoch


WHAT = ("step", "step, bias held", "data per batch")
"""What :func:`step_profile` times on each side: a training step while the whitening layer's bias trains
(the first ``whiten_bias_epochs``), one after (no gradient reaches that layer), and the data per batch."""


def summarise(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def step_profile(airbench, settings: CNNSettings, train: CifarSplit, data_root: Path, *, rounds: int,
                 seed: int) -> dict[str, Any]:
    """Interleaved per-step and per-batch data timing of both sides (see the module's docstring)."""
    wb_step, wb_data = workbook_stepper(settings, train, seed)
    with airbench_on_cpu(airbench, data_root):
        ab_step, ab_data = airbench_stepper(airbench, seed, settings.amp)
        candidates = {"workbook step": (partial(wb_step, True), 1),
                      "airbench94 step": (partial(ab_step, True), 1),
                      "workbook step, bias held": (partial(wb_step, False), 1),
                      "airbench94 step, bias held": (partial(ab_step, False), 1),
                      "workbook data per batch": (wb_data, None),
                      "airbench94 data per batch": (ab_data, None)}
        batches = {"workbook data per batch": wb_data(), "airbench94 data per batch": ab_data()}
        times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in candidates}
        for r in range(rounds + 1):
            names = list(candidates) if r % 2 == 0 else list(reversed(candidates))
            for name in names:
                fn, per = candidates[name]
                wall, cpu = timed(fn)
                n = per or batches[name]
                if r:
                    times[name]["wall"].append(wall / n)
                    times[name]["cpu"].append(cpu / n)
    figures = {name: {kind: summarise(v) for kind, v in t.items()} for name, t in times.items()}
    hyp = airbench.lib_airbench94.hyp["opt"]
    per_image = settings.batch_size / hyp["batch_size"]  # our batch over theirs
    for what in WHAT:
        ours, theirs = figures[f"workbook {what}"], figures[f"airbench94 {what}"]
        figures[f"ratio {what}"] = {kind: {s: ours[kind][s] / theirs[kind][s] / per_image
                                           for s in ("min", "median")} for kind in ("wall", "cpu")}
    per_epoch = len(train) // settings.batch_size
    their_per_epoch = len(train) // hyp["batch_size"]
    held = settings.whiten_bias_epochs if settings.whiten_bias_epochs is not None else settings.epochs
    figures["run estimate"] = {
        "airbench94": run_estimate(figures, "airbench94", math.ceil(their_per_epoch * hyp["train_epochs"]),
                                   hyp["whiten_bias_epochs"] * their_per_epoch),
        **{f"workbook, {e} epochs": run_estimate(figures, "workbook", e * per_epoch, min(held, e) * per_epoch)
           for e in sorted({settings.epochs - 1, settings.epochs, settings.epochs + 1} - {0})}}
    return figures


def run_estimate(figures: dict[str, Any], side: str, steps: int, trained: int) -> dict[str, float]:
    """Training seconds of a whole run from the profile's wall-time minima (the rounds least disturbed by
    anything else): ``trained`` steps with the whitening bias training, the rest of ``steps`` with it
    held, and a batch of data for each."""
    t = {what: figures[f"{side} {what}"]["wall"]["min"] for what in WHAT}
    seconds = trained * t["step"] + (steps - trained) * t["step, bias held"] + steps * t["data per batch"]
    return {"steps": steps, "trained_bias_steps": min(trained, steps), "seconds": seconds}


def print_profile(figures: dict[str, Any]) -> None:
    print(f"{'':28s} {'wall min':>10s} {'wall median':>12s} {'CPU min':>10s} {'CPU median':>11s}  (ms)")
    for name, f in figures.items():
        if name.startswith(("ratio", "run estimate")):
            continue
        print(f"{name:28s} {f['wall']['min'] * 1e3:10.1f} {f['wall']['median'] * 1e3:12.1f} "
              f"{f['cpu']['min'] * 1e3:10.1f} {f['cpu']['median'] * 1e3:11.1f}")
    theirs = figures["run estimate"]["airbench94"]
    print(f"whole runs from the wall-time minima: airbench94 {theirs['steps']} steps "
          f"({theirs['trained_bias_steps']} with the whitening bias training) {theirs['seconds']:.0f} s")
    for name, ours in figures["run estimate"].items():
        if name != "airbench94":
            print(f"  {name}: {ours['steps']} steps ({ours['trained_bias_steps']}) {ours['seconds']:.0f} s, "
                  f"{ours['seconds'] / theirs['seconds']:.3f} of airbench94's")
    for what in WHAT:
        r = figures[f"ratio {what}"]
        print(f"workbook / airbench94 per training image, {what}: wall min {r['wall']['min']:.3f}, median "
              f"{r['wall']['median']:.3f}; CPU min {r['cpu']['min']:.3f}, median {r['cpu']['median']:.3f}")


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value), the value read as JSON when it parses."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected KEY=VALUE, e.g. epochs=10")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def chosen_settings(args: argparse.Namespace) -> CNNSettings:
    """The laptop profile with ``--set`` and then ``--epochs``/``--train-size``/``--test-size`` applied
    (an option left out keeps the profile's value)."""
    settings = LAPTOP.override(**dict(args.overrides))
    return settings.override(epochs=args.epochs, train_size=args.train_size, test_size=args.test_size)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="data root (None: $COURSE_DATA_DIR or ./data)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch CPU threads of both (default: torch's, %(default)s here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=UNSET,
                        help="training images (default: the profile's, all 50,000)")
    parser.add_argument("--test-size", type=int, default=UNSET,
                        help="test images (default: the profile's, all 10,000)")
    parser.add_argument("--epochs", type=int, default=UNSET,
                        help="the workbook's epochs (default: the profile's)")
    parser.add_argument("--airbench-epochs", type=float, default=None, help="airbench's (None: its 9.9)")
    parser.add_argument("--set", dest="overrides", type=parse_setting, action="append", default=[],
                        metavar="KEY=VALUE", help="another laptop setting of the workbook (repeatable)")
    parser.add_argument("--first", choices=("workbook", "airbench94"), default="workbook")
    parser.add_argument("--steps", type=int, default=None, metavar="ROUNDS",
                        help="only time single steps and the data pipelines, interleaved, for ROUNDS rounds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison (or ``--steps``) and return its figures: ``{"workbook": ..., "airbench94": ...,
    "ratios": ...}`` (or the step profile's)."""
    args = parse_args(argv)
    airbench = import_airbench()
    settings = chosen_settings(args)
    torch.set_num_threads(args.threads)
    amp = settings.amp
    train = load_cifar10("train", args.data_root, size=settings.train_size, seed=args.seed)
    test = load_cifar10("test", args.data_root, size=settings.test_size, seed=args.seed)
    print(f"{cpu_model()}, {torch.get_num_threads()} torch threads, computing in {amp_dtype('cpu', amp)}; "
          f"{len(train):,} training and {len(test):,} test images ({train.source}); "
          f"torch {torch.__version__}, airbench {airbench_version()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="airbench-cifar10-") as tmp:
        data_root = write_airbench_data(train, test, Path(tmp), args.seed)
        if args.steps is not None:
            figures = step_profile(airbench, settings, train, data_root, rounds=args.steps, seed=args.seed)
            print_profile(figures)
            return figures
        epochs = args.airbench_epochs or airbench.lib_airbench94.hyp["opt"]["train_epochs"]
        results: dict[str, Any] = {}
        for side in (["workbook", "airbench94"] if args.first == "workbook" else ["airbench94", "workbook"]):
            print(f"training {side} ...", flush=True)
            if side == "workbook":
                results[side] = run_workbook(settings, train, test, seed=args.seed)
            else:
                results[side] = run_airbench(airbench, data_root, epochs=epochs, seed=args.seed, amp=amp)
    results["ratios"] = compare(results["workbook"], results["airbench94"])
    print_comparison(results["workbook"], results["airbench94"], results["ratios"])
    return results


def airbench_version() -> str:
    from importlib import metadata

    return metadata.version("airbench")


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main(sys.argv[1:])
