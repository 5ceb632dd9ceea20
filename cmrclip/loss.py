"""Symmetric InfoNCE that does not punish identical reports.

Many impressions are (near-)identical: "Normal cardiac MRI." appears for many
studies. Plain CLIP loss treats every other pair in the batch as a negative, so it
pushes apart a normal study and the normal report of a *different* normal study.
Here studies whose impressions fall in the same group (same normalised text) are
all positives of each other: the target of each row is spread uniformly over its
group (as in SupCon-style multi-positive contrastive losses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClipLoss(nn.Module):
    def forward(
        self, video: Tensor, text: Tensor, scale: Tensor, groups: Tensor | None = None
    ) -> Tensor:
        """``video``, ``text``: (B, D) normalised; ``groups``: (B,) impression group ids."""
        logits = scale * video @ text.t()
        if groups is None:
            target = torch.eye(len(video), device=video.device)
        else:
            target = (groups[:, None] == groups[None, :]).float()
        target = target / target.sum(dim=1, keepdim=True)
        loss_v = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        loss_t = -(target * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
        return (loss_v + loss_t) / 2
