"""Training augmentation on collated batches: what it keeps, moves and never invents."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from cmrclip.model import collate
from cmrsearch.vocabulary import CLIP_VIEWS
from trainer.augment import _retime, _shift, augment_batch


def studies(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            v: rng.integers(0, 256, (3 if v == "lge" else 16, 64, 64), dtype=np.uint8)
            for v in CLIP_VIEWS
        }
        for _ in range(n)
    ]


def test_retime_starts_at_another_phase_and_keeps_the_networks_phases() -> None:
    x = torch.arange(16, dtype=torch.float32)[None, :, None, None].expand(2, 16, 2, 2)
    out = _retime(x, torch.tensor([0.0, 0.25]), torch.tensor([0.0, 0.0]), frames=8)
    assert out[0, :, 0, 0].tolist() == [0, 2, 4, 6, 8, 10, 12, 14]
    # a quarter-cycle later start: np.roll by 4 phases, then every second phase
    assert out[1, :, 0, 0].tolist() == np.roll(np.arange(16), 4)[::2].tolist()
    coarse = _retime(x, torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]), frames=8)
    assert coarse[0, :, 0, 0].tolist() == [0, 0, 4, 4, 8, 8, 12, 12]


def test_lge_slices_keep_their_base_to_apex_order() -> None:
    batch = studies(20)
    for study in batch:  # slices of rising brightness: basal, mid, apical
        study["lge"] = np.stack([np.full((64, 64), 40 + 80 * k, np.uint8) for k in range(3)])
    clips, mask = collate(batch, torch.device("cpu"))
    rngs = [np.random.default_rng(i) for i in range(20)]
    out, _ = augment_batch(clips, mask, rngs, CLIP_VIEWS, frames=8, view_dropout=0.2)
    means = out["lge"].mean(dim=(2, 3))
    assert out["lge"].shape[1] == 3 and bool((means.diff(dim=1) > 0).all())


def test_shift_matches_an_affine_resampling_and_is_identity_without_motion() -> None:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(ndimage.gaussian_filter(rng.random((1, 2, 64, 64)), 2).astype(np.float32))
    torch.testing.assert_close(_shift(x, torch.tensor([[0.0, 0.0]])), x, atol=1e-5, rtol=0)
    shift = np.array([2.0, -1.5])
    moved = _shift(x, torch.from_numpy(shift[None].astype(np.float32)))
    expected = ndimage.shift(x[0, 0].numpy(), -shift, order=1, mode="nearest")
    inner = (slice(4, -4), slice(4, -4))  # edges: "border" and "nearest" differ by a half pixel
    np.testing.assert_allclose(moved[0, 0].numpy()[inner], expected[inner], atol=1e-4)


def test_augmentation_keeps_sizes_in_mm() -> None:
    """Size findings are thresholds in mm on fixed-size crops: no augmentation may
    rescale what a clip shows (a zoom of up to 10% once did: up to 21% of the area;
    a sub-pixel shift under gamma moves the half-height edge by a fraction of a pixel)."""
    rows, cols = np.mgrid[:64, :64]
    disc = ((rows - 32) ** 2 + (cols - 30) ** 2 < 12**2).astype(np.uint8) * 200 + 20
    batch = [{v: np.repeat(disc[None], 3 if v == "lge" else 16, 0) for v in CLIP_VIEWS}] * 30
    clips, mask = collate(batch, torch.device("cpu"))
    rngs = [np.random.default_rng([3, i]) for i in range(30)]
    out, kept = augment_batch(clips, mask, rngs, CLIP_VIEWS, frames=8, view_dropout=0.0)
    assert bool(kept.all())
    for view in CLIP_VIEWS:
        x = out[view].numpy()
        low, high = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)
        area = (x > (low + high) / 2).sum(axis=(2, 3))  # gain and gamma keep the order
        np.testing.assert_allclose(area, (disc > 100).sum() * np.ones_like(area), rtol=0.06)


def test_views_are_dropped_but_never_all_and_absent_views_stay_absent() -> None:
    batch = studies(40)
    for study in batch[::2]:
        for view in ("2ch", "3ch", "lge"):
            study.pop(view, None)
    clips, mask = collate(batch, torch.device("cpu"))
    rngs = [np.random.default_rng([0, i]) for i in range(40)]
    out, kept = augment_batch(clips, mask, rngs, CLIP_VIEWS, frames=8, view_dropout=0.9)
    assert bool((kept <= mask).all())  # nothing absent becomes present
    assert bool(kept.any(dim=1).all())  # every study keeps a view
    assert kept.sum() < mask.sum() * 0.3  # and most views did drop at 0.9
    for name, clip in out.items():
        assert clip.dtype == torch.float32 and clip.min() >= 0.0 and clip.max() <= 1.0
        assert clip.shape[1] == (3 if name == "lge" else 8)  # LGE: its slices


def test_a_studys_augmentation_does_not_depend_on_its_batch() -> None:
    batch = studies(3, seed=4)

    def augmented(items: list[dict[str, np.ndarray]], ids: list[int]) -> dict[str, torch.Tensor]:
        clips, mask = collate(items, torch.device("cpu"))
        rngs = [np.random.default_rng([7, i]) for i in ids]
        return augment_batch(clips, mask, rngs, CLIP_VIEWS, frames=8, view_dropout=0.2)[0]

    alone = augmented([batch[2]], [2])
    together = augmented(batch, [0, 1, 2])
    for name in CLIP_VIEWS:
        torch.testing.assert_close(together[name][2:], alone[name])
    again = augmented(batch, [0, 1, 2])
    assert all(torch.equal(together[n], again[n]) for n in CLIP_VIEWS)
    assert not torch.allclose(together["sax_mid"][0], together["sax_mid"][1])


@pytest.mark.parametrize("frames", [8, 16])
def test_augmented_clips_feed_the_network(frames: int) -> None:
    from dataclasses import replace

    from cmrclip.config import CONFIGS
    from cmrclip.model import CMRCLIP

    config = replace(CONFIGS["tiny"], video=replace(CONFIGS["tiny"].video, frames=frames))
    model = CMRCLIP(config)
    clips, mask = collate(studies(2), torch.device("cpu"))
    rngs = [np.random.default_rng(i) for i in range(2)]
    out, kept = augment_batch(clips, mask, rngs, CLIP_VIEWS, frames=frames, view_dropout=0.2)
    study, _ = model.video_embeddings(out, kept)
    assert study.shape == (2, config.embed_dim) and torch.isfinite(study).all()
