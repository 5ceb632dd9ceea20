"""Training augmentation of a collated batch, in torch on the training device.

Per study: intensity (gamma and gain), a shift of a few pixels shared by its views,
and view dropout (a study missing views, as real studies do; at least one present
view always stays; off by default in training, see the README). Per cine view (LGE
frames are slices, not phases): a shift of the starting cardiac phase and, sometimes,
a coarser temporal stride. Each study draws from its own generator, so a study's
augmentation does not depend on the batch it lands in or on how a batch is sharded
over processes. Done on the batch (one ``grid_sample``), not per study in numpy: that
was as slow as the network's forward and backward pass on a CPU.

No zoom: clips are crops of a fixed physical size, so a length in pixels is a length
in mm, and the size findings are thresholds in mm (aortic root 38 mm, LA 40 mm). A
10% zoom moves a normal root across that threshold. Without it the size findings and
finding-query P@10 gained and the function and tissue findings lost a little (the
README has the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor

STRIDE_CHANCE = 0.3
MAX_SHIFT_PX = 3.0  # at the clip cache's 64 px


def augment_batch(
    clips: dict[str, Tensor],
    mask: Tensor,
    rngs: list[np.random.Generator],
    views: tuple[str, ...],
    frames: int,
    view_dropout: float,
) -> tuple[dict[str, Tensor], Tensor]:
    """``clips``: view -> (B, T, H, W) uint8 as from ``collate``; ``mask``: (B, V) presence.

    Returns float clips in [0, 1] of at most ``frames`` evenly spaced phases (the ones
    the network reads; the rest would be augmented for nothing) and the mask with
    dropped views cleared.
    """
    draws = [_Draw.sample(rng, len(views)) for rng in rngs]
    device = mask.device
    keep = mask & torch.tensor(np.array([d.keep for d in draws]) >= view_dropout, device=device)
    for i in np.flatnonzero(~keep.any(dim=1).cpu().numpy()):  # never drop every view
        present = np.flatnonzero(mask[i].cpu().numpy())
        if len(present):
            keep[i, present[int(draws[i].fallback * len(present))]] = True

    def column(key: str) -> Tensor:
        return torch.tensor(
            np.array([getattr(d, key) for d in draws]), dtype=torch.float32, device=device
        )

    gamma, gain, shift = column("gamma"), column("gain"), column("shift")
    phase, stride = column("phase"), column("stride")
    out: dict[str, Tensor] = {}
    for v, name in enumerate(views):
        if name not in clips:
            continue
        x = clips[name]
        if x.shape[1] > 1 and name != "lge":
            x = _retime(x, phase[:, v], stride[:, v], frames)
        x = _shift(x.float() / 255.0, shift).clamp(0.0, 1.0)  # resampling may round past 1
        out[name] = (gain[:, None, None, None] * x ** gamma[:, None, None, None]).clamp(0.0, 1.0)
    return out, keep


@dataclass(frozen=True)
class _Draw:
    keep: NDArray[np.float64]  # per view: dropped when below view_dropout
    fallback: float  # which present view stays if all were dropped
    gamma: float
    gain: float
    shift: NDArray[np.float64]  # rows, columns in pixels
    phase: NDArray[np.float64]  # per view: starting phase as a fraction of the cycle
    stride: NDArray[np.bool_]  # per view

    @classmethod
    def sample(cls, rng: np.random.Generator, views: int) -> _Draw:
        return cls(
            keep=rng.random(views),
            fallback=float(rng.random()),
            gamma=float(np.exp(rng.normal(0, 0.15))),
            gain=float(rng.uniform(0.85, 1.15)),
            shift=rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX, 2),
            phase=rng.random(views),
            stride=rng.random(views) < STRIDE_CHANCE,
        )


def _retime(x: Tensor, phase: Tensor, stride: Tensor, frames: int) -> Tensor:
    """Keep ``frames`` evenly spaced phases (as the network would), starting at another
    phase; with ``stride``, every second kept phase is shown twice (a coarser cine)."""
    total = x.shape[1]
    step = max(1, total // frames)
    t = torch.arange(0, total, step, device=x.device)[None, :frames]
    base = torch.where(stride[:, None] > 0, (t // (2 * step)) * (2 * step), t)
    start = (phase * total).long()[:, None]
    index = (base - start) % total
    return torch.gather(x, 1, index[:, :, None, None].expand(-1, -1, *x.shape[2:]))


def _shift(x: Tensor, shift: Tensor) -> Tensor:
    """Shift by a (sub-)pixel amount per study; edges repeat (as the crop does)."""
    size = x.shape[-1]
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    # grid_sample's x is the column, y the row; with align_corners, 2/(size-1) per pixel.
    theta[:, 0, 2] = shift[:, 1] * 2 / (size - 1)
    theta[:, 1, 2] = shift[:, 0] * 2 / (size - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
