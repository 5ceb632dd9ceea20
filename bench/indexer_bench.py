"""Indexer speed and memory on a phantom archive.

    .venv/bin/python bench/indexer_bench.py [--studies N] [--workers W]

Prints JSON: uncompressed single-frame DICOM files parsed per second on one core
(header + full pixel decode, target >= 1,000), the header-only rate, studies
ingested per second end to end (discover -> catalog, SQLite), seconds per stage and
the peak resident memory of a worker process.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pydicom
from hardware import hardware

from catalog.db import make_engine
from catalog.schema import upgrade
from indexer.headers import read_instance
from indexer.runner import IndexOptions, run_index
from indexer.sources import discover
from phantom.archive import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "archive", args.studies, seed=5, workers=args.workers)
        files = [s for s in discover([root / "archive" / "dicom"])]
        plain = []
        for source in files:
            with open(source.path, "rb") as fh:
                head = fh.read(1024)
            if b"1.2.840.10008.1.2.1" in head and b"1.2.840.10008.5.1.4.1.1.4.1" not in head:
                plain.append(source)
        sample = plain[:3000]
        start = time.perf_counter()
        for source in sample:
            pydicom.dcmread(source.path).pixel_array  # noqa: B018
        decode_rate = len(sample) / (time.perf_counter() - start)
        start = time.perf_counter()
        for source in sample:
            read_instance(source)
        header_rate = len(sample) / (time.perf_counter() - start)

        engine = make_engine(f"sqlite:///{root / 'catalog.sqlite'}")
        upgrade(engine)
        options = IndexOptions(home=root / "home", secret=b"s" * 32, workers=args.workers)
        start = time.perf_counter()
        summary = run_index(
            engine, [root / "archive" / "dicom"], root / "archive/reports.jsonl", options
        )
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "benchmark": "indexer",
                "studies": args.studies,
                "files": summary.files,
                "files_parsed_per_second_per_core_full_decode": round(decode_rate),
                "files_validated_per_second_per_core_header_only": round(header_rate),
                "studies_ingested_per_second": round(summary.studies / seconds, 2),
                "workers": args.workers,
                "seconds_by_stage": summary.as_dict()["seconds_by_stage"],
                "peak_worker_rss_mib": round(peak_kib / 1024, 1),
                "hardware": hardware(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
