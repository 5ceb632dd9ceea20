"""Vector index build time, query latency and recall at archive scale.

    .venv/bin/python bench/search_bench.py [--sizes 100000 1000000] [--dim 256]
        [--queries 500] [--data random|clustered|phantom]

For each size: build the index that kind="auto" picks (exact at 100k, IVF at 1M),
time single queries (one at a time, k=10, default parameters), measure recall@10
against exact inner-product search on a subset of queries, and sweep efSearch /
nprobe to show what recall costs. Prints one JSON document with the hardware.

"random" vectors (i.i.d. normal, L2-normalised) have no structure at all: the
nearest neighbour is barely closer than a random point, the worst case for any ANN
index. "clustered" draws points around 1,000 random centres (within-cluster cosine
about 0.5), closer to what a trained encoder produces. "phantom" jitters the study
vectors of the catalog CMRSEARCH_* points at (the demo's), the phantom-derived case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faiss
from hardware import hardware

from search.index import VectorIndex, default_ef_search, default_nlist

K = 10
RECALL_TARGET = 0.95
SWEEP = {
    "hnsw": ("ef_search", [64, 128, 256, 512, 1024, 2048, 4096]),
    "ivf": ("nprobe", [16, 32, 64, 128, 256, 512, 1024]),
}


def phantom_vectors() -> NDArray[np.float32]:
    """Study vectors of the catalog that CMRSEARCH_* points at (e.g. `make demo`'s)."""
    from sqlalchemy import select

    from catalog.db import make_engine, session_factory
    from catalog.models import Embedding
    from cmrsearch.settings import load_settings

    engine = make_engine(load_settings().resolved_database_url)
    with session_factory(engine)() as session:
        rows = session.scalars(select(Embedding.vector).where(Embedding.view == "study")).all()
    if not rows:
        raise SystemExit("--data phantom needs an embedded catalog: run `make demo` first")
    return np.stack([np.frombuffer(v, "<f4") for v in rows]).astype(np.float32)


def vectors(
    n: int, dim: int, data: str, rng: np.random.Generator, seeds: NDArray[np.float32] | None
) -> NDArray[np.float32]:
    """``seeds``: the centres of "clustered" and "phantom" data; queries must be drawn
    around the same centres as the indexed vectors."""
    out = np.empty((n, dim), dtype=np.float32)
    centres = seeds if seeds is not None else np.zeros((1, dim), np.float32)
    spread = 0.05 if data == "phantom" else 1 / np.sqrt(dim)  # phantom: sigma 0.05 per dim
    for start in range(0, n, 100_000):  # chunks keep the float64-free peak small
        rows = min(100_000, n - start)
        block = rng.standard_normal((rows, dim), dtype=np.float32)
        if data != "random":
            block = centres[rng.integers(0, len(centres), rows)] + block * spread
        out[start : start + rows] = block
    faiss.normalize_L2(out)
    return out


def exact_top(base: NDArray[np.float32], queries: NDArray[np.float32]) -> NDArray[np.int64]:
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    _, ids = flat.search(queries, K)
    return ids


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def single_query_ms(search: Any, queries: NDArray[np.float32]) -> NDArray[np.float64]:
    for q in queries[:5]:  # warm caches and thread pools
        search(q[None, :])
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_size(
    n: int, dim: int, n_queries: int, data: str, seeds: NDArray[np.float32] | None
) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    if data == "clustered":
        seeds = rng.standard_normal((1000, dim), dtype=np.float32)
        seeds /= np.linalg.norm(seeds, axis=1, keepdims=True)
    base = vectors(n, dim, data, rng, seeds)
    queries = vectors(n_queries, dim, data, rng, seeds)
    ids = np.arange(n, dtype=np.int64)
    subset = queries[: min(100, n_queries)]

    before = rss_mib()
    start = time.perf_counter()
    index = VectorIndex.build(ids, base)
    build_s = time.perf_counter() - start
    rss_delta = rss_mib() - before

    latency = single_query_ms(lambda q: index.search(q, K), queries)
    truth = exact_top(base, subset)
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    exact_latency = single_query_ms(lambda q: flat.search(q, K), subset)
    flat.reset()  # frees its copy of the vectors before the sweep

    # what recall costs: per parameter value, recall@10 and single-query p50
    sweep = []
    if index.kind in SWEEP:
        name, values = SWEEP[index.kind]
        for value in values:
            found = index.search(subset, K, **{name: value})[1]
            ms = single_query_ms(lambda q, v=value: index.search(q, K, **{name: v}), subset)
            sweep.append(
                {
                    name: value,
                    "recall_at_10": round(recall(found, truth), 4),
                    "p50_ms": round(float(np.percentile(ms, 50)), 3),
                }
            )
    enough = [row for row in sweep if row["recall_at_10"] >= RECALL_TARGET]

    filtered = {}
    for fraction in (0.01, 0.3):
        allowed = np.sort(rng.choice(n, int(n * fraction), replace=False))
        ms = single_query_ms(lambda q, a=allowed: index.search(q, K, allowed_ids=a), subset)
        filtered[f"{fraction:.0%}"] = round(float(np.percentile(ms, 50)), 3)

    return {
        "n": n,
        "kind": index.kind,
        "default_params": {
            "flat": {},
            "hnsw": {"ef_search": default_ef_search(K)},
        }.get(index.kind, {"nlist": default_nlist(n), "nprobe": index.default_nprobe}),
        "build_seconds": round(build_s, 2),
        "query_p50_ms": round(float(np.percentile(latency, 50)), 3),
        "query_p99_ms": round(float(np.percentile(latency, 99)), 3),
        "recall_at_10": round(recall(index.search(subset, K)[1], truth), 4),
        "recall_queries": len(subset),
        "exact_flat_query_p50_ms": round(float(np.percentile(exact_latency, 50)), 3),
        "filtered_query_p50_ms_by_allowed_fraction": filtered,
        "sweep": sweep,
        "cheapest_setting_for_recall_0.95": enough[0] if enough else None,
        "bytes_per_vector_estimate": round(index.bytes_per_vector(), 1),
        "rss_growth_bytes_per_vector": round(rss_delta * 2**20 / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--data", choices=["random", "clustered", "phantom"], default="random")
    args = parser.parse_args()
    described = {
        "random": "random normal, L2-normalised",
        "clustered": "1,000 random centres + normal noise of equal norm, L2-normalised",
        "phantom": "the catalog's phantom study vectors, each jittered (normal, sigma 0.05 "
        "per dimension), L2-normalised",
    }
    seeds = phantom_vectors() if args.data == "phantom" else None
    dim = seeds.shape[1] if seeds is not None else args.dim
    results = [bench_size(n, dim, args.queries, args.data, seeds) for n in args.sizes]
    print(
        json.dumps(
            {
                "benchmark": "search_index",
                "vectors": described[args.data],
                "dim": dim,
                "queries": args.queries,
                "k": K,
                "faiss": faiss.__version__,
                "omp_threads": faiss.omp_get_max_threads(),
                "load_average_at_end": os.getloadavg(),
                "results": results,
                "hardware": hardware(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
