"""VectorIndex against exact search, on real faiss (no mocks).

Flat must agree with a numpy brute force exactly; HNSW and IVF must reach a recall
floor (faiss tests/test_contrib.py style). Ids are deliberately not 0..n-1 so that
a slot/id mix-up cannot pass.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from numpy.typing import NDArray

import search.index as index_module
from search.index import IndexFileError, VectorIndex

DIM = 64
K = 10


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(
    base: NDArray[np.float32], ids: NDArray[np.int64], queries: NDArray[np.float32], k: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    scores = queries @ base.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth, strict=False)])
    )


@pytest.fixture(scope="module")
def big() -> dict[str, Any]:
    """20,000 random unit vectors, 100 queries, exact top-10 and one index per kind."""
    rng = np.random.default_rng(20_000)
    base, queries = unit(rng, 20_000), unit(rng, 100)
    ids = np.arange(20_000, dtype=np.int64) * 7 + 3
    indexes = {kind: VectorIndex.build(ids, base, kind) for kind in ("flat", "hnsw", "ivf")}
    return {"base": base, "ids": ids, "queries": queries, "indexes": indexes}


def small(kind: str, n: int = 2_000, seed: int = 1) -> tuple[VectorIndex, Any, Any]:
    rng = np.random.default_rng(seed)
    base = unit(rng, n)
    ids = np.arange(n, dtype=np.int64) * 5 + 11
    extra: dict[str, Any] = {"ivf": {"nlist": 32}, "ivfpq": {"nlist": 16, "pq_m": 16}}
    return VectorIndex.build(ids, base, kind, **extra.get(kind, {})), base, ids


# --- exactness and recall ---------------------------------------------------------------


def test_flat_matches_numpy_brute_force() -> None:
    index, base, ids = small("flat")
    queries = unit(np.random.default_rng(2), 50)
    scores, found = index.search(queries, K)
    want_scores, want_ids = exact(base, ids, queries, K)
    assert index.kind == "flat"
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert scores.dtype == np.float32 and found.dtype == np.int64


@pytest.mark.parametrize(
    ("kind", "params"), [("hnsw", {"ef_search": 256}), ("ivf", {"nprobe": 96})]
)
def test_ann_recall_floor_on_random_vectors(
    big: dict[str, Any], kind: str, params: dict[str, int]
) -> None:
    # Random vectors have no structure, the hardest case for an ANN index: IVF must
    # probe 96 of its 141 lists here (its default, 1/8 of them, suits clustered data).
    index = big["indexes"][kind]
    _, truth = exact(big["base"], big["ids"], big["queries"], K)
    assert recall(index.search(big["queries"], K, **params)[1], truth) >= 0.95
    # less effort costs recall: the per-query parameter really reaches faiss
    weak = {name: 8 for name in params}
    assert recall(index.search(big["queries"], K, **weak)[1], truth) < 0.9
    if kind == "hnsw":
        assert recall(index.search(big["queries"], K)[1], truth) >= 0.95  # defaults


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_default_parameters_meet_recall_floor_on_clustered_vectors(kind: str) -> None:
    rng = np.random.default_rng(21)
    centres = unit(rng, 200)

    def draw(n: int) -> NDArray[np.float32]:
        x = centres[rng.integers(0, 200, n)] + rng.standard_normal((n, DIM)) / np.sqrt(DIM)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    base, queries = draw(20_000), draw(100)
    ids = np.arange(20_000, dtype=np.int64) * 3 + 1
    index = VectorIndex.build(ids, base, kind)
    _, truth = exact(base, ids, queries, K)
    assert recall(index.search(queries, K)[1], truth) >= 0.95


def test_ivf_calibrates_its_default_nprobe_to_the_data(tmp_path: Path) -> None:
    """Structureless vectors need most lists for recall 0.95, clustered ones a few: the
    default nprobe measured at build reaches the floor on both, and survives a reload."""
    rng = np.random.default_rng(5)
    centres = unit(rng, 50)
    clustered = centres[rng.integers(0, 50, 20_000)] + 0.3 * unit(rng, 20_000)
    clustered = (clustered / np.linalg.norm(clustered, axis=1, keepdims=True)).astype(np.float32)
    probes = {}
    for name, base in (("random", unit(rng, 20_000)), ("clustered", clustered)):
        ids = np.arange(20_000, dtype=np.int64) * 5 + 2
        index = VectorIndex.build(ids, base, "ivf")
        queries = base[rng.choice(20_000, 100, replace=False)] + 0.01 * unit(rng, 100)
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        _, truth = exact(base, ids, queries, K)
        assert recall(index.search(queries, K)[1], truth) >= 0.95, name
        probes[name] = index.default_nprobe
        index.save(tmp_path / f"{name}.faiss", {})
        assert VectorIndex.load(tmp_path / f"{name}.faiss")[0].default_nprobe == probes[name]
    assert probes["clustered"] < probes["random"]


def test_auto_kind_follows_size(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    base = unit(rng, 600)
    ids = np.arange(600)
    monkeypatch.setattr(index_module, "FLAT_MAX", 200)
    monkeypatch.setattr(index_module, "HNSW_MAX", 400)
    assert VectorIndex.build(ids[:199], base[:199]).kind == "flat"
    assert VectorIndex.build(ids[:400], base[:400]).kind == "hnsw"
    assert VectorIndex.build(ids, base).kind == "ivf"


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("fraction", [0.001, 0.02, 0.3])
def test_allowed_ids_restrict_and_fill(
    big: dict[str, Any], kind: str, fraction: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exact-scan shortcut off: the graph walk / probed lists must still not starve.
    monkeypatch.setattr(index_module, "EXACT_FILTER_FRACTION", 0.0)
    rng = np.random.default_rng(4)
    rows = np.sort(rng.choice(len(big["ids"]), int(len(big["ids"]) * fraction), replace=False))
    allowed = big["ids"][rows]
    noise = np.array([-1, -5, 10**12])  # absent and negative ids are ignored
    _, found = big["indexes"][kind].search(
        big["queries"], K, allowed_ids=np.concatenate([allowed, noise])
    )
    assert np.isin(found, allowed).all()  # every row full (no -1) and inside the filter
    if kind == "flat":
        np.testing.assert_array_equal(
            found, exact(big["base"][rows], allowed, big["queries"], K)[1]
        )


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_selective_filter_is_answered_exactly(big: dict[str, Any], kind: str) -> None:
    rows = np.arange(0, len(big["ids"]), 100)  # 1% of the index
    allowed = big["ids"][rows]
    scores, found = big["indexes"][kind].search(big["queries"], K, allowed_ids=allowed)
    want_scores, want_ids = exact(big["base"][rows], allowed, big["queries"], K)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_filter_with_fewer_than_k_ids_pads(kind: str) -> None:
    index, _, ids = small(kind)
    scores, found = index.search(unit(np.random.default_rng(5), 3), K, allowed_ids=ids[:4])
    assert np.isin(found[:, :4], ids[:4]).all()
    assert (found[:, 4:] == -1).all() and np.isneginf(scores[:, 4:]).all()
    empty = index.search(unit(np.random.default_rng(5), 2), K, allowed_ids=[])[1]
    assert (empty == -1).all()


def test_idmap2_translates_selectors_to_external_ids() -> None:
    # faiss behaviour this module relies on knowing: IndexIDMap2 wraps a plain selector
    # in IDSelectorTranslated, so filters name external ids (faiss >= 1.7.3).
    rng = np.random.default_rng(6)
    base = unit(rng, 300)
    ids = np.arange(300, dtype=np.int64) + 1_000
    wrapped = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    wrapped.add_with_ids(base, ids)
    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids[:5]))
    _, found = wrapped.search(base[:1], 10, params=params)
    assert set(found[0][:5]) == set(ids[:5]) and (found[0][5:] == -1).all()


# --- updates ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_removed_ids_are_never_returned(kind: str, tmp_path: Path) -> None:
    index, base, ids = small(kind)
    queries = base[:20]  # each query's best match is itself: the first thing to go
    gone = np.concatenate([ids[:20], ids[500:700]])
    index.remove(gone)
    index.remove([10**12])  # absent: ignored
    assert index.ntotal == len(ids) - len(gone)
    searches = [
        index.search(queries, K)[1],
        index.search(queries, K, ef_search=4096, nprobe=4096)[1],
        index.search(queries, len(ids) + 5)[1],  # every live vector, then padding
        index.search(queries, K, allowed_ids=gone)[1],  # only removed ids allowed
        index.search(queries, K, allowed_ids=ids[:600])[1],
    ]
    for found in searches:
        assert not np.isin(found, gone).any()
    assert (searches[2][:, : index.ntotal] >= 0).all()
    assert (searches[3] == -1).all()
    assert (searches[4] >= 0).all()
    index.save(tmp_path / "i.faiss", {})  # removal survives a reload (HNSW tombstones too)
    reloaded, _ = VectorIndex.load(tmp_path / "i.faiss")
    assert reloaded.ntotal == index.ntotal
    assert not np.isin(reloaded.search(queries, len(ids))[1], gone).any()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_added_ids_are_findable(kind: str) -> None:
    index, base, ids = small(kind)
    rng = np.random.default_rng(7)
    fresh = unit(rng, 30)
    fresh_ids = np.arange(30, dtype=np.int64) + 10**9
    index.add(fresh_ids, fresh)
    assert index.ntotal == len(ids) + 30
    _, found = index.search(fresh, K, nprobe=64)
    assert (found[:, 0] == fresh_ids).all() if kind != "ivfpq" else np.isin(fresh_ids, found).all()
    with pytest.raises(ValueError, match="already in the index"):
        index.add(fresh_ids[:1], fresh[:1])
    index.add(np.zeros(0, np.int64), np.zeros((0, 0), np.float32))  # nothing new: no-op
    # re-embedding a study: remove, then add it back with its new vector
    index.remove(ids[:1])
    index.add(ids[:1], fresh[:1])
    _, found = index.search(np.stack([fresh[0], base[0]]), 3, nprobe=64)
    assert ids[0] in found[0] and ids[0] not in found[1]


# --- persistence ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_save_load_round_trip(kind: str, tmp_path: Path) -> None:
    index, _, _ = small(kind)
    queries = unit(np.random.default_rng(8), 20)
    path = tmp_path / "indexes" / "v1-study.faiss"
    index.save(path, {"model_version": "v1", "view": "study"})
    loaded, manifest = VectorIndex.load(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["v1-study.faiss", "v1-study.json"]
    assert manifest["model_version"] == "v1" and manifest["view"] == "study"
    assert (manifest["kind"], manifest["dim"], manifest["ntotal"]) == (kind, DIM, index.ntotal)
    assert len(manifest["sha256"]) == 64
    assert (loaded.kind, loaded.dim, loaded.ntotal) == (kind, DIM, index.ntotal)
    for params in ({}, {"ef_search": 32, "nprobe": 2}):
        want, got = index.search(queries, K, **params), loaded.search(queries, K, **params)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def _damage_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _damage_drop_manifest(path: Path) -> None:
    path.with_suffix(".json").unlink()


def _damage_drop_index(path: Path) -> None:
    path.unlink()


def _edit_manifest(**changes: Any) -> Any:
    def damage(path: Path) -> None:
        manifest_path = path.with_suffix(".json")
        manifest = json.loads(manifest_path.read_text())
        manifest.update(changes)
        manifest_path.write_text(json.dumps(manifest))

    return damage


def _damage_unreadable_but_checksummed(path: Path) -> None:
    path.write_bytes(b"not a faiss index")
    _edit_manifest(sha256=index_module._sha256(path))(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_damage_truncate, "checksum"),
        (_damage_flip_byte, "checksum"),
        (_damage_drop_manifest, "manifest .* is missing"),
        (_damage_drop_index, "index file .* is missing"),
        (_edit_manifest(dim=128), "dimension 64, its manifest says 128"),
        (_edit_manifest(ntotal=5), "holds 2000 vectors, its manifest says 5"),
        (_edit_manifest(kind="ivf"), "holds a hnsw index, its manifest says ivf"),
        (_damage_unreadable_but_checksummed, "faiss cannot read"),
    ],
)
def test_load_detects_damage(damage: Any, message: str, tmp_path: Path) -> None:
    index, _, _ = small("hnsw")
    path = tmp_path / "study.faiss"
    index.save(path, {"view": "study"})
    damage(path)
    with pytest.raises(IndexFileError, match=message) as caught:
        VectorIndex.load(path)
    assert "\n" not in str(caught.value) and "cmrsearch embed" in str(caught.value)


def test_broken_manifest_json_is_detected(tmp_path: Path) -> None:
    index, _, _ = small("flat", n=50)
    path = tmp_path / "study.faiss"
    index.save(path, {})
    path.with_suffix(".json").write_text("{ not json")
    with pytest.raises(IndexFileError, match="unreadable"):
        VectorIndex.load(path)


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_threads_with_per_query_parameters_match_serial(big: dict[str, Any], kind: str) -> None:
    index = big["indexes"][kind]
    queries = big["queries"][:40]
    settings: list[dict[str, Any]] = [
        {"ef_search": 16, "nprobe": 1},
        {"ef_search": 200, "nprobe": 64},
        {"allowed_ids": big["ids"][::3]},
        {"allowed_ids": big["ids"][:150]},
        {"ef_search": 40, "nprobe": 8, "allowed_ids": big["ids"][1::2]},
        {},
    ]
    serial = [index.search(queries, K, **s) for s in settings]
    tasks = [i % len(settings) for i in range(48)]

    def run(task: int) -> tuple[int, tuple[Any, Any]]:
        return task, index.search(queries, K, **settings[task])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, tasks))
    for task, (scores, found) in results:
        np.testing.assert_array_equal(found, serial[task][1])
        np.testing.assert_array_equal(scores, serial[task][0])


# --- edges and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_k_larger_than_ntotal_pads(kind: str) -> None:
    rng = np.random.default_rng(9)
    base = unit(rng, 50)
    ids = np.arange(50, dtype=np.int64) + 100
    index = VectorIndex.build(ids, base, kind, nlist=4)
    scores, found = index.search(base[:3], 80)
    assert found.shape == (3, 80) and scores.shape == (3, 80)
    for row in range(3):
        assert sorted(found[row, :50]) == list(ids)  # every vector, best first
        assert (np.diff(scores[row, :50]) <= 1e-6).all()
    assert (found[:, 50:] == -1).all() and np.isneginf(scores[:, 50:]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_empty_index(kind: str) -> None:
    index = VectorIndex.build(np.empty(0, np.int64), np.empty((0, DIM), np.float32), kind)
    assert index.ntotal == 0
    scores, found = index.search(unit(np.random.default_rng(10), 2), 5)
    assert (found == -1).all() and np.isneginf(scores).all()
    index.add([42], unit(np.random.default_rng(11), 1))
    assert index.search(unit(np.random.default_rng(12), 1), 5)[1][0].tolist() == [
        42,
        -1,
        -1,
        -1,
        -1,
    ]


def test_bad_arguments_raise_value_error() -> None:
    index, base, ids = small("flat", n=100)
    for k in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(base[:1], k)
    with pytest.raises(ValueError, match="dimension 32, the index has 64"):
        index.search(np.ones((1, 32), np.float32) / np.sqrt(32), 5)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, np.float32), 5)
    with pytest.raises(ValueError, match="2 ids for 100 vectors"):
        VectorIndex.build(ids[:2], base)
    with pytest.raises(ValueError, match="unique"):
        VectorIndex.build(np.zeros(100, np.int64), base)
    with pytest.raises(ValueError, match="catalog ids"):
        VectorIndex.build(-ids, base)
    with pytest.raises(ValueError, match="L2-normalised"):
        VectorIndex.build(ids, base * 2)
    with pytest.raises(ValueError, match="unknown index kind"):
        VectorIndex.build(ids, base, "lsh")
    with pytest.raises(ValueError, match="needs >= 400 vectors"):
        VectorIndex.build(ids, base, "ivf", nlist=400)
    with pytest.raises(ValueError, match="dimension"):
        index.add([10**6], np.ones((1, 8), np.float32) / np.sqrt(8))
    single = index.search(base[0], 3)  # one query as a 1-D vector
    assert single[1].shape == (1, 3) and single[1][0, 0] == ids[0]


@pytest.mark.skipif(getattr(faiss, "get_num_gpus", lambda: 0)() > 0, reason="a GPU is present")
def test_use_gpu_true_without_gpu_is_refused() -> None:
    rng = np.random.default_rng(13)
    with pytest.raises(ValueError, match="use_gpu=True"):
        VectorIndex.build(np.arange(300), unit(rng, 300), "ivf", nlist=4, use_gpu=True)


def test_bytes_per_vector_reflects_structure() -> None:
    flat, hnsw = small("flat")[0], small("hnsw")[0]
    ivf, ivfpq = small("ivf")[0], small("ivfpq")[0]
    assert flat.bytes_per_vector() == pytest.approx(4 * DIM + 48)
    assert hnsw.bytes_per_vector() > flat.bytes_per_vector()  # graph links on top
    assert ivfpq.bytes_per_vector() < ivf.bytes_per_vector() < flat.bytes_per_vector()
