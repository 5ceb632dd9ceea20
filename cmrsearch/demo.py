"""`cmrsearch demo`: a phantom archive, indexed, a model trained on it, embedded, and
the UI started on the embedded defaults. Each step reuses what a previous run left."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cmrsearch.errors import CmrSearchError
from cmrsearch.serve import exec_streamlit
from cmrsearch.settings import Settings

Main = Callable[[list[str]], int]


def _epochs_done(checkpoint: Path) -> int:
    """The epoch a checkpoint holds (its config is written last); 0 without one."""
    from cmrclip.checkpoint import read_config
    from cmrclip.errors import ModelError

    try:
        return int(read_config(checkpoint).get("epoch", 0))
    except ModelError:
        return 0


def run_demo(args: argparse.Namespace, settings: Settings, main: Main) -> int:
    home = settings.ensure_home()
    archive, model = home / "demo" / "archive", home / "demo" / "model"
    checkpoint = model / "last"
    started = time.perf_counter()
    steps: list[tuple[str, list[str] | None]] = [
        ("catalog schema", ["db", "upgrade"]),
        (
            f"phantom archive of {args.studies} studies",
            None
            if (archive / "phantom.json").exists()
            else [
                "phantom", str(archive), "--studies", str(args.studies),
                "--seed", str(args.seed), "--force",
            ],
        ),
        (
            "index DICOM and reports",
            ["index", str(archive / "dicom"), "--reports", str(archive / "reports.jsonl")],
        ),
        (
            f"train the demo model ({args.epochs} epochs, seed {args.seed})",
            None
            if _epochs_done(checkpoint) >= args.epochs
            else ["train", "--out", str(model), "--epochs", str(args.epochs),
                  "--seed", str(args.seed)],
        ),
        (
            "evaluate it on held-out patients; calibrate the finding thresholds",
            None
            if (model / "eval" / "evaluation.json").exists()
            else ["evaluate", "--model", str(checkpoint), "--labels", str(archive / "labels.jsonl"),
                  "--out", str(model / "eval")],
        ),
        ("embed studies, build the index", ["embed", "--model", str(checkpoint)]),
    ]  # fmt: skip
    for number, (title, argv) in enumerate(steps, 1):
        elapsed = time.perf_counter() - started
        note = "" if argv else " (already done)"
        print(f"[{number}/{len(steps) + 1}] {title}{note} at {elapsed:.0f} s", file=sys.stderr)
        if argv and main(argv) != 0:
            raise CmrSearchError(f"the demo stopped at step {number} ({title}); see above")
    elapsed = time.perf_counter() - started
    if args.no_serve:
        print(
            f"demo ready in {elapsed:.0f} s; start the UI with: CMRSEARCH_MODEL={checkpoint} "
            "CMRSEARCH_OPEN_ACCESS=true cmrsearch serve --host 127.0.0.1",
            file=sys.stderr,
        )
        return 0
    print(
        f"[{len(steps) + 1}/{len(steps) + 1}] UI on http://127.0.0.1:{args.port} "
        f"(open access, this machine only) at {elapsed:.0f} s",
        file=sys.stderr,
    )
    return exec_streamlit("127.0.0.1", args.port, model=str(checkpoint), open_access="true")
