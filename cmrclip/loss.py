"""Multi-positive symmetric InfoNCE: identical reports and shared statements are positives.

Many impressions are (near-)identical: "Normal cardiac MRI." appears for many
studies. Plain CLIP loss treats every other pair in the batch as a negative, so it
pushes apart a normal study and the normal report of a *different* normal study.
Here the caller says which (study, text) pairs are positives; the target of each row
(and of each column) is spread uniformly over its positives, as in SupCon-style
multi-positive contrastive losses.

The same loss aligns studies with the single statements of their reports ("Apical LV
aneurysm.", "Normal RV size and function."): a statement is a positive of every study
in the batch whose report makes it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def multi_positive_loss(
    video: Tensor,
    text: Tensor,
    scale: Tensor,
    positives: Tensor,
    candidates: Tensor | None = None,
) -> Tensor:
    """``video`` (B, D), ``text`` (T, D) normalised; ``positives`` (B, T) bool.

    ``candidates`` (B, T) bool, default all: the (study, text) pairs that enter the
    softmaxes at all; a hard negative that only some studies rule out is a candidate of
    those studies alone.
    """
    logits = scale * video @ text.t()
    if candidates is not None:
        # Finite, so that a left-out pair's zero target times its log-probability is 0.
        logits = logits.masked_fill(~(candidates | positives), torch.finfo(logits.dtype).min)
    return (
        _soft_cross_entropy(logits, positives) + _soft_cross_entropy(logits.t(), positives.t())
    ) / 2


def _soft_cross_entropy(logits: Tensor, positives: Tensor) -> Tensor:
    """Cross-entropy of each row's softmax against its uniform positive target;
    rows without a positive (an empty impression) carry no signal and are left out."""
    counts = positives.sum(dim=1)
    target = positives.float() / counts.clamp(min=1).unsqueeze(1).float()
    per_row = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    has = counts > 0
    return per_row[has].mean() if bool(has.any()) else logits.sum() * 0.0


class ClipLoss(nn.Module):
    def forward(
        self, video: Tensor, text: Tensor, scale: Tensor, groups: Tensor | None = None
    ) -> Tensor:
        """``video``, ``text``: (B, D) normalised pairs; ``groups``: (B,) impression group ids."""
        if groups is None:
            positives = torch.eye(len(video), dtype=torch.bool, device=video.device)
        else:
            positives = groups[:, None] == groups[None, :]
        return multi_positive_loss(video, text, scale, positives)
