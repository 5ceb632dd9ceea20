"""Phantom generation speed and size at the default image size.

    .venv/bin/python bench/phantom_bench.py [--studies N] [--workers W]

Prints JSON: studies per second per core (one worker), the parallel rate, bytes per
study and the projected size of a 300-study archive (target < 1.5 GB). The one-worker
run's CPU time is split into user and kernel time: file creation on some filesystems
(ext4 without a journal scanning past inodes freed in the last minute, e.g. by a
previous run's cleanup) shows up as kernel time, not as the generator's own work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import hardware

from phantom.archive import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), os.times()
        one = generate(Path(tmp) / "one", args.studies, seed=1, workers=1, size=args.size)
        serial, used = time.perf_counter() - start, os.times()
        start = time.perf_counter()
        generate(Path(tmp) / "par", args.studies, seed=1, workers=args.workers, size=args.size)
        parallel = time.perf_counter() - start
    per_study = one["bytes"] / one["studies"]
    print(
        json.dumps(
            {
                "benchmark": "phantom",
                "size": args.size,
                "studies": args.studies,
                "studies_per_second_per_core": round(args.studies / serial, 2),
                "user_cpu_ms_per_study": round((used.user - cpu.user) / args.studies * 1e3),
                "kernel_cpu_ms_per_study": round((used.system - cpu.system) / args.studies * 1e3),
                "studies_per_second_parallel": round(args.studies / parallel, 2),
                "workers": args.workers,
                "bytes_per_study": int(per_study),
                "projected_300_study_archive_gb": round(300 * per_study / 1e9, 2),
                "files_per_study": round(one["files"] / one["studies"], 1),
                "hardware": hardware(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
