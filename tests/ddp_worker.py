"""One process of a `torchrun` training run (gloo, CPU): train on the configured catalog,
then write a fingerprint of every trainable parameter to OUT/rank<R>.txt."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import trainer.loop as loop
from catalog.db import make_engine
from cmrsearch.settings import load_settings
from trainer.data import load_pairs

built: list[torch.nn.Module] = []


class RecordedModel(loop.CMRCLIP):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        built.append(self)


def main(out: Path) -> None:
    loop.CMRCLIP = RecordedModel  # type: ignore[misc]
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    settings = load_settings()
    pairs = load_pairs(make_engine(settings.resolved_database_url), settings.ensure_home())
    # Fewer fresh texts than a step holds: the drawn subsets run under DDP too.
    config = loop.TrainConfig(
        epochs=1,
        batch_size=6,
        device="cpu",
        text_layers=1,
        fresh_impressions=2,
        fresh_statements=8,
    )
    loop.train(pairs, out, config)
    fingerprints = {
        name: hashlib.sha256(param.detach().numpy().tobytes()).hexdigest()
        for name, param in built[0].named_parameters()
        if param.requires_grad
    }
    lines = "\n".join(f"{k} {v}" for k, v in sorted(fingerprints.items()))
    (out / f"rank{dist.get_rank()}.txt").write_text(lines + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
