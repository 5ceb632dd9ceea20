"""The video tower's share of a training step: forward and backward of one batch.

    .venv/bin/python bench/video_step_bench.py [--batch 32] [--repeats 5]

A batch of random clips with every view present, as the augmentation hands them to
the network (8 phases at the clip cache's 64 px; LGE 3 slices), through
``VideoEncoder`` as ``tiny`` builds it. Two variants, interleaved round by round so
that a shared machine's drift falls on both alike:

- ``default``: ``tiny`` as it is: LGE's three slices read at 64 px
  (``VideoConfig.view_sizes``), every other view at 32 px.
- ``lge_32``: every view read at 32 px, LGE included.

Prints one JSON document with the hardware, the median seconds per step of each
variant and their ratio to ``default``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hardware import hardware

from cmrclip.config import CONFIGS
from cmrclip.video import VideoEncoder


def _step(encoder: VideoEncoder, clips: dict[str, Tensor], mask: Tensor) -> Callable[[], None]:
    def run() -> None:
        encoder.zero_grad(set_to_none=True)
        study, _ = encoder(clips, mask)
        study.square().sum().backward()

    return run


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    config = CONFIGS["tiny"]
    views = config.video.views
    clips = {
        v: torch.rand(args.batch, 3 if v == "lge" else config.video.frames, 64, 64) for v in views
    }
    mask = torch.ones(args.batch, len(views), dtype=torch.bool)
    default = VideoEncoder(config.video, config.embed_dim)
    lge_32 = VideoEncoder(replace(config.video, view_sizes=()), config.embed_dim)
    lge_32.load_state_dict(default.state_dict())
    timed = {"default": _step(default, clips, mask), "lge_32": _step(lge_32, clips, mask)}
    for run in timed.values():  # warm-up: allocator, oneDNN kernel choice
        run()
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(args.repeats):
        for name, run in timed.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    result = {
        "hardware": hardware(),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "repeats": args.repeats,
        "seconds_per_step": {k: round(v, 3) for k, v in median.items()},
        "ratio_to_default": {k: round(v / median["default"], 2) for k, v in median.items()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
