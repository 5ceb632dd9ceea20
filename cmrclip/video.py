"""Video encoder: a shared (2+1)-D CNN per view, a view embedding, attention pooling.

Each view's clip (frames x H x W) goes through the same backbone, whose blocks
factorise a 3-D convolution into a spatial 1x3x3 and a temporal 3x1x1 one (Tran et
al., CVPR 2018): motion is modelled at every depth at a fraction of the cost of full
3-D kernels. A learned embedding tells the pooling which view a token came from;
missing views are masked out of the attention, never zero-filled.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cmrclip.config import VideoConfig


class Block2Plus1D(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(
            c_in, c_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False
        )
        self.norm1 = nn.GroupNorm(min(8, c_out), c_out)
        self.temporal = nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.skip = nn.Conv3d(c_in, c_out, 1, stride=(1, 2, 2), bias=False)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.norm1(self.spatial(x)))
        y = self.norm2(self.temporal(y))
        return self.act(y + self.skip(x))


class ViewBackbone(nn.Module):
    """(B, T, H, W) uint8 or float clip -> (B, C) feature."""

    def __init__(self, config: VideoConfig) -> None:
        super().__init__()
        chans = (1, *config.channels)
        self.blocks = nn.Sequential(*[Block2Plus1D(a, b) for a, b in itertools.pairwise(chans)])
        self.out_dim = config.channels[-1]
        self.frames, self.size = config.frames, config.size

    def forward(self, clip: Tensor, size: int | None = None) -> Tensor:
        size = size or self.size
        x = clip.float()
        if clip.dtype == torch.uint8:
            x = x / 255.0
        if x.shape[1] > self.frames:  # evenly spaced phases over the cycle
            x = x[:, :: x.shape[1] // self.frames][:, : self.frames]
        if x.shape[-1] > size:  # the network's resolution, whatever the clip cache's
            x = F.adaptive_avg_pool2d(x, size)
        x = (x - 0.25) / 0.25  # rough centring of MR magnitudes after robust scaling
        x = self.blocks(x.unsqueeze(1))  # (B, 1, T, H, W) -> (B, C, T', H', W')
        return x.mean(dim=(2, 3, 4))


class VideoEncoder(nn.Module):
    def __init__(self, config: VideoConfig, embed_dim: int) -> None:
        super().__init__()
        self.views = config.views
        self.sizes = [config.size_of(v) for v in config.views]
        self.backbone = ViewBackbone(config)
        width = self.backbone.out_dim
        self.view_embedding = nn.Parameter(torch.zeros(len(config.views), width))
        nn.init.normal_(self.view_embedding, std=0.02)
        self.query = nn.Parameter(torch.zeros(1, 1, width))
        nn.init.normal_(self.query, std=0.02)
        self.pool = nn.MultiheadAttention(
            width, config.heads, dropout=config.dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, embed_dim)
        self.view_project = (
            # Zero at the start: training begins from the pooled vector alone.
            nn.Parameter(torch.zeros(len(config.views), width, embed_dim))
            if config.view_residual
            else None
        )

    def view_tokens(self, clips: dict[str, Tensor], mask: Tensor) -> Tensor:
        """(B, V, C) tokens; rows of absent views stay zero and are masked later."""
        batch = mask.shape[0]
        tokens = torch.zeros(batch, len(self.views), self.backbone.out_dim, device=mask.device)
        for v, name in enumerate(self.views):
            present = mask[:, v]
            if name not in clips or not bool(present.any()):
                continue
            feats = self.backbone(clips[name][present], self.sizes[v])
            tokens[present, v] = feats + self.view_embedding[v]
        return tokens

    def forward(self, clips: dict[str, Tensor], mask: Tensor) -> tuple[Tensor, Tensor]:
        """(study embedding (B, D), per-view embeddings (B, V, D)); not normalised."""
        tokens = self.norm(self.view_tokens(clips, mask))
        query = self.query.expand(mask.shape[0], -1, -1)
        pooled, _ = self.pool(query, tokens, tokens, key_padding_mask=~mask, need_weights=False)
        study = self.project(pooled.squeeze(1))
        if self.view_project is not None:
            present = tokens * mask.unsqueeze(-1)
            study = study + torch.einsum("bvc,vcd->bd", present, self.view_project)
        return study, self.project(tokens)
