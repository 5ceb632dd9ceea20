"""CUDA check for the model: one training step and encoding throughput.

    .venv/bin/python bench/gpu_check.py [--config tiny|small|base] [--batch 64]

Runs on CUDA when a GPU is visible (AMP on), else on the CPU (to prove the script);
prints JSON: device, seconds per training step, studies encoded per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import hardware

from cmrclip.config import CONFIGS
from cmrclip.loss import ClipLoss
from cmrclip.model import CMRCLIP, collate
from cmrsearch.vocabulary import CLIP_VIEWS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    studies = [
        {
            v: rng.integers(0, 255, (3 if v == "lge" else 16, 64, 64), dtype=np.uint8)
            for v in CLIP_VIEWS
        }
        for _ in range(args.batch)
    ]
    texts = [f"impression {i % 7}" for i in range(args.batch)]
    model = CMRCLIP(CONFIGS[args.config]).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    clips, mask = collate(studies, device)
    groups = torch.arange(args.batch, device=device) % 7
    times = []
    for _ in range(args.steps + 1):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            features, negated = model.text.split_features(texts)  # fine-tuned layers train
            video, _ = model.video_embeddings(clips, mask)
            loss = ClipLoss()(
                video.float(),
                model.text_embeddings(features=features, negated=negated).float(),
                model.scale(),
                groups,
            )
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.encode_video(studies * 4, batch_size=args.batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = 4 * args.batch / (time.perf_counter() - start)
    print(
        json.dumps(
            {
                "device": str(device),
                "config": args.config,
                "batch": args.batch,
                "loss_finite": bool(torch.isfinite(loss).item()),
                "seconds_per_step": round(float(np.median(times[1:])), 4),
                "studies_encoded_per_second": round(rate, 1),
                "hardware": hardware(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
