"""Run tasks in worker processes so that a crash or a hang costs one item only.

Items go out in batches; a batch whose worker dies (segfault, OOM kill) or overruns
its time limit is retried item by item in a fresh pool, and an item that fails
alone is reported as a ``crash`` or ``timeout`` for that item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from indexer.errors import IngestFailure

T = TypeVar("T")
R = TypeVar("R")


def _run_batch(fn: Callable[[T], R], items: Sequence[T]) -> list[R | IngestFailure]:
    out: list[R | IngestFailure] = []
    for item in items:
        try:
            out.append(fn(item))
        except IngestFailure as failure:
            out.append(failure)
        except Exception as exc:  # a bug or an unforeseen input: this item only
            out.append(
                IngestFailure("crash", f"unexpected {type(exc).__name__} while processing it")
            )
    return out


def _kill(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor cannot cancel a running task; a hung worker must be killed.
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def run_supervised(
    fn: Callable[[T], R], items: Sequence[T], *, workers: int, timeout: float, batch: int = 1
) -> Iterator[tuple[T, R | IngestFailure]]:
    """Yield (item, result or IngestFailure) for every item, in completion order.

    ``timeout`` is per item; a batch gets ``timeout * len(batch)``.
    """
    if workers <= 1 and timeout <= 0:
        for item in items:
            yield item, _run_batch(fn, [item])[0]
        return
    batches = [list(items[i : i + batch]) for i in range(0, len(items), batch)]
    retry: list[T] = []
    yield from _run_batches(fn, batches, workers, timeout, retry)
    # Items of batches that crashed or hung: one by one, so the culprit is isolated.
    for item in retry:
        yield from _run_batches(fn, [[item]], 1, timeout, None)


def _run_batches(
    fn: Callable[[T], R],
    batches: list[list[T]],
    workers: int,
    timeout: float,
    retry: list[T] | None,
) -> Iterator[tuple[T, R | IngestFailure]]:
    pending = list(reversed(batches))
    while pending:
        pool = ProcessPoolExecutor(max_workers=max(workers, 1))
        running: dict[Future[list[R | IngestFailure]], tuple[list[T], float]] = {}
        broken = False
        try:
            while (pending or running) and not broken:
                while pending and len(running) < max(workers, 1):
                    chunk = pending.pop()
                    running[pool.submit(_run_batch, fn, chunk)] = (chunk, time.monotonic())
                done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk, _started = running.pop(future)
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield from _failed(chunk, "crash", retry)
                        continue
                    yield from zip(chunk, results, strict=True)
                now = time.monotonic()
                for future, (chunk, started) in list(running.items()):
                    if now - started > timeout * len(chunk):
                        running.pop(future)
                        broken = True
                        yield from _failed(chunk, "timeout", retry)
        finally:
            # Whatever was still running when the pool broke goes back to the queue.
            for chunk, _ in running.values():
                pending.append(chunk)
            _kill(pool)


def _failed(
    chunk: list[T], kind: str, retry: list[T] | None
) -> Iterator[tuple[T, R | IngestFailure]]:
    if retry is not None:  # first failure: the items are retried alone later
        retry.extend(chunk)
        return
    message = (
        "the worker process died while reading it"
        if kind == "crash"
        else "reading it took longer than the time limit"
    )
    for item in chunk:
        yield item, IngestFailure(kind, message)
