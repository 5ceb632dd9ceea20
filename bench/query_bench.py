"""End-to-end text query latency: text encoder + ANN + catalog, on a real catalog.

    .venv/bin/python bench/query_bench.py --model DIR [--queries 200]

Uses CMRSEARCH_HOME / CMRSEARCH_DATABASE_URL (an indexed, embedded catalog, e.g. the
one `make demo` builds). Prints JSON: per-stage and total p50/p99 in ms, and the text
encoder alone. ANN latency at 100k/1M vectors is measured by bench/search_bench.py;
add the two to bound a query at that scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import hardware

from catalog.db import make_engine
from cmrsearch.settings import load_settings
from search.engine import SearchEngine

QUERIES = [
    "apical LV aneurysm",
    "dilated cardiomyopathy with severely impaired function",
    "pericardial effusion",
    "asymmetric septal hypertrophy",
    "normal study",
    "inferior infarct scar",
    "left atrial enlargement",
    "RV dilation",
]


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    settings = load_settings()
    engine = SearchEngine(
        make_engine(settings.resolved_database_url), settings.home.resolve(), args.model
    )
    engine.warm_up()  # as `cmrsearch serve` does: calibration, prompts, sentence vectors
    engine.search("warm up", k=10)
    encode, total, stages = [], [], {"encode": [], "ann": [], "catalog": []}
    for i in range(args.queries):
        text = f"{QUERIES[i % len(QUERIES)]} {i}"  # distinct texts: no cache helps
        start = time.perf_counter()
        engine.model.encode_text([text])
        encode.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = engine.search(text, k=10)
        total.append(time.perf_counter() - start)
        for key in stages:
            stages[key].append(result.seconds.get(key, 0.0))
    index = engine.index()
    print(
        json.dumps(
            {
                "benchmark": "text query end to end",
                "studies": index.ntotal if index else 0,
                "index": index.kind if index else None,
                "total": percentiles(total),
                "stages": {k: percentiles(v) for k, v in stages.items()},
                "text_encoder_alone": percentiles(encode),
                "hardware": hardware(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
