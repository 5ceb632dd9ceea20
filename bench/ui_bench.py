"""Time to first results on screen in the real UI, for a 10k-study catalog on CPU.

    .venv/bin/python bench/ui_bench.py [--studies 10000] [--queries 8] [--workdir DIR]

Builds a catalog of N studies: a small phantom archive is indexed and embedded for
real, then its studies are cloned (new UIDs, pseudonyms, dates; the same cached clips;
study and view vectors jittered and re-normalised, so the index holds N distinct
vectors). Starts `cmrsearch serve`, drives it with Debian's headless Chromium through
Playwright, and times from pressing Enter in the query box to (a) the first result card
and (b) every card's cine image decoded. Prints JSON with the hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import hardware
from query_bench import QUERIES

CHROMIUM = "/usr/bin/chromium"
# table -> {foreign key column: referenced table}, parents first
FOREIGN_KEYS: dict[str, dict[str, str]] = {
    "patient": {},
    "study": {"patient_id": "patient"},
    "series": {"study_id": "study"},
    "clip": {"study_id": "study", "series_id": "series"},
    "report": {"study_id": "study"},
    "embedding": {"study_id": "study"},
}


def build_catalog(work: Path, studies: int, source: int) -> None:
    import torch
    from sqlalchemy import func, insert, select

    from catalog.db import make_engine
    from catalog.models import Base
    from cmrclip.checkpoint import save_checkpoint
    from cmrclip.config import CONFIGS
    from cmrclip.model import CMRCLIP
    from cmrsearch.cli import main
    from phantom.archive import generate

    if not (work / "archive" / "phantom.json").exists():
        generate(work / "archive", source, seed=3, style="internal", workers=2)
    if not (work / "model" / "model.safetensors").exists():
        torch.manual_seed(0)
        save_checkpoint(CMRCLIP(CONFIGS["tiny"]), work / "model")
    assert main(["db", "upgrade"]) == 0
    archive = work / "archive"
    argv = ["index", str(archive / "dicom"), "--reports", str(archive / "reports.jsonl")]
    assert main(argv) == 0
    assert main(["embed"]) == 0
    engine = make_engine(os.environ["CMRSEARCH_DATABASE_URL"])
    t = Base.metadata.tables
    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        have = conn.scalar(select(func.count()).select_from(t["study"]))
        if have >= studies:
            return
        rows = {
            name: [dict(r._mapping) for r in conn.execute(select(t[name]))] for name in FOREIGN_KEYS
        }
        top = {name: max(r["id"] for r in rs) for name, rs in rows.items()}

        def clone(name: str, row: dict[str, Any], n: int) -> dict[str, Any]:
            out = {**row, "id": row["id"] + n * top[name]}
            for column, table in FOREIGN_KEYS[name].items():
                if row[column] is not None:
                    out[column] = row[column] + n * top[table]
            return out

        def unique(name: str, row: dict[str, Any], n: int) -> dict[str, Any]:
            if name == "patient":
                # "x" is not hex: a clone never takes a real pseudonym
                return {"pseudo_id": f"{row['pseudo_id'][:11]}x{n:04d}"}
            if name == "study":
                shift = timedelta(days=7 * n)
                return {
                    "study_uid": f"{row['study_uid'][:50]}.{n}",
                    "study_date": row["study_date"] - shift if row["study_date"] else None,
                }
            if name == "series":
                return {"series_uid": f"{row['series_uid'][:50]}.{n}"}
            if name == "report":
                return {"accession": f"{row['accession']}-{n}", "study_uid": None}
            if name == "embedding":
                v = np.frombuffer(row["vector"], "<f4") + rng.normal(0, 0.05, row["dim"])
                return {"vector": (v / np.linalg.norm(v)).astype("<f4").tobytes()}
            return {}

        copies = (studies - have) // len(rows["study"]) + 1
        for n in range(1, copies + 1):
            for name in FOREIGN_KEYS:  # parents before children
                conn.execute(
                    insert(t[name]),
                    [{**clone(name, r, n), **unique(name, r, n)} for r in rows[name]],
                )
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(work: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "cmrsearch"), "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.perf_counter() - started > 180:
                raise SystemExit((work / "serve.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    return process, url, time.perf_counter() - started


def measure(url: str, queries: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    first, complete = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page_ready = []
        for i in range(queries + 1):  # query 0 warms the browser and server caches: dropped
            # A fresh session per query, so the cards found can only be this query's.
            started = time.perf_counter()
            page.goto(url)
            box = page.get_by_label("Describe what you are looking for")
            box.wait_for()
            ready = time.perf_counter() - started
            box.fill(f"{QUERIES[i % len(QUERIES)]} {i}")
            t0 = time.perf_counter()
            box.press("Enter")
            page.get_by_role("button", name="Open study").first.wait_for()
            t1 = time.perf_counter()
            page.wait_for_function(
                "() => { const imgs = [...document.querySelectorAll('[data-testid=stImage] img')];"
                " return imgs.length >= 10 && imgs.every(i => i.complete && i.naturalWidth > 0); }"
            )
            t2 = time.perf_counter()
            if i:
                page_ready.append(ready)
                first.append(t1 - t0)
                complete.append(t2 - t0)
        browser.close()

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50_s": round(float(np.median(values)), 3),
            "max_s": round(float(np.max(values)), 3),
        }

    return {"page_ready": stats(page_ready), "first_card": stats(first),
            "all_cines": stats(complete)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--source-studies", type=int, default=20)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("var/ui-bench"))
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        CMRSEARCH_HOME=str(work / "home"),
        CMRSEARCH_DATABASE_URL=f"sqlite:///{work / 'catalog.sqlite'}",
        CMRSEARCH_MODEL=str(work / "model"),
        CMRSEARCH_OPEN_ACCESS="true",
    )
    t0 = time.perf_counter()
    build_catalog(work, args.studies, args.source_studies)
    built = time.perf_counter() - t0
    process, url, health = serve(work)
    try:
        result = measure(url, args.queries)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps({
        "benchmark": "ui_first_results", "studies": args.studies,
        "vectors": "phantom-derived (cloned, jittered)", "catalog_build_s": round(built, 1),
        "server_health_s": round(health, 2), **result, "target_first_results_s": 2.0,
        "hardware": hardware(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
