"""CMR-CLIP: video and text towers in one space, with a learnable temperature.

``encode_video`` and ``encode_text`` are the only API the indexer and search use;
both return L2-normalised embeddings.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from cmrclip.config import ModelConfig
from cmrclip.text import TextEncoder
from cmrclip.video import VideoEncoder
from cmrsearch.vocabulary import CLIP_VIEWS


class CMRCLIP(nn.Module):
    def __init__(self, config: ModelConfig, text_path: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.video = VideoEncoder(config.video, config.embed_dim)
        self.text = TextEncoder(config.text, config.embed_dim, text_path)
        # log(1/T), learnable and in the optimiser (open_clip); clamped at 100 in use.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def video_embeddings(self, clips: dict[str, Tensor], mask: Tensor) -> tuple[Tensor, Tensor]:
        study, views = self.video(clips, mask)
        return F.normalize(study, dim=-1), F.normalize(views, dim=-1)

    def text_embeddings(
        self,
        texts: list[str] | None = None,
        features: Tensor | None = None,
        negated: Tensor | None = None,
    ) -> Tensor:
        return F.normalize(self.text(texts, features, negated), dim=-1)

    def scale(self) -> Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    @torch.no_grad()
    def encode_video(
        self, studies: list[dict[str, NDArray[np.uint8]]], batch_size: int = 16
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
        """(study vectors (N, D), per-view vectors (N, V, D), view mask (N, V))."""
        self.eval()
        out_s, out_v, out_m = [], [], []
        for start in range(0, len(studies), batch_size):
            clips, mask = collate(
                studies[start : start + batch_size], self.device, self.config.video.views
            )
            study, views = self.video_embeddings(clips, mask)
            out_s.append(study.float().cpu().numpy())
            out_v.append(views.float().cpu().numpy())
            out_m.append(mask.cpu().numpy())
        dim, slots = self.config.embed_dim, len(self.config.video.views)
        if not out_s:
            return (
                np.zeros((0, dim), np.float32),
                np.zeros((0, slots, dim), np.float32),
                np.zeros((0, slots), bool),
            )
        return np.concatenate(out_s), np.concatenate(out_v), np.concatenate(out_m)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 64) -> NDArray[np.float32]:
        self.eval()
        parts = [
            self.text_embeddings(texts[i : i + batch_size]).float().cpu().numpy()
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.embed_dim), np.float32)


def collate(
    studies: list[dict[str, NDArray[np.uint8]]],
    device: torch.device,
    views: tuple[str, ...] = CLIP_VIEWS,
) -> tuple[dict[str, Tensor], Tensor]:
    """Clip dicts -> per-view uint8 tensors (B, T, H, W) and a presence mask (B, V).

    Absent views get a zero clip of the right shape; the mask keeps them out.
    """
    mask = torch.zeros(len(studies), len(views), dtype=torch.bool)
    clips: dict[str, Tensor] = {}
    for v, name in enumerate(views):
        shapes = [s[name].shape for s in studies if name in s]
        if not shapes:
            continue
        shape = shapes[0]
        stack = np.zeros((len(studies), *shape), np.uint8)
        for i, study in enumerate(studies):
            if name in study and study[name].shape == shape:
                stack[i] = study[name]
                mask[i, v] = True
        clips[name] = torch.from_numpy(stack).to(device)
    return clips, mask.to(device)
