"""A FAISS index over L2-normalised study vectors keyed by int64 catalog ids.

Inner product on unit vectors is cosine similarity. Every search builds its own
``SearchParameters`` (efSearch, nprobe, the id filter), so one loaded index serves
several UI threads at once: nothing shared is ever mutated by a search. ``add``,
``remove`` and ``save`` are not safe while searches run; update a copy and swap it in.

The CPU index is authoritative (mutated, saved, loaded). A GPU replica, when faiss
has GPUs, only answers unfiltered IVF searches: faiss GPU indexes take no IDSelector
and its GPU cloner does not take HNSW.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import faiss as _faiss
import numpy as np
from numpy.typing import ArrayLike, NDArray

from cmrsearch.errors import CmrSearchError

# faiss >= 1.15 bundles stubs that lack SearchParametersHNSW, IndexHNSW.hnsw and the
# IVF search parameters' keywords (older releases bundle none): use it untyped.
faiss: Any = _faiss

log = logging.getLogger(__name__)

Kind = Literal["flat", "hnsw", "ivf", "ivfpq"]
KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf", "ivfpq")

# kind="auto": exact search below FLAT_MAX; HNSW up to HNSW_MAX (the whole graph in
# RAM, builds in seconds to a minute); IVF beyond, the fastest to build. On 2 cores at
# 256-d an exact scan of 100k vectors takes p50 13 ms / p99 20 ms (150k about 18 ms)
# and builds in 0.1 s with recall 1.0, while HNSW at 100k needs efSearch 2048 for
# recall 0.95 (p50 7-16 ms) and 16-23 s to build: below 150k exact search wins.
FLAT_MAX = 150_000
HNSW_MAX = 500_000
# Measured with bench/search_bench.py (256-d, 2 busy cores; random and clustered data):
# recall@10 >= 0.95 at 100k HNSW needs efSearch 2048 (0.95-0.98, p50 7-16 ms; efSearch
# 64 gives 0.2-0.3), at 1M IVF about 1/8 of the lists on clustered data (0.97, 13 ms).
# efConstruction 40 builds in half the time of 80 with the same recall at efSearch 2048.
MIN_EF_SEARCH = 2048
HNSW_EF_CONSTRUCTION = 40
MIN_NPROBE = 16
NPROBE_FRACTION = 8  # default nprobe = nlist / 8
# IVF's default nprobe is calibrated at build: these many indexed vectors as queries
# must find this share of their exact neighbours (a margin over the 0.95 target).
CALIBRATION_QUERIES = 200
CALIBRATION_RECALL = 0.97
# k-means sample per IVF list and iterations: faiss asks for >= 39 points per list,
# but IVF recall barely moves beyond ~30, and training time is linear in both.
TRAIN_PER_LIST = 32
KMEANS_ITERATIONS = 10
# A filter keeping at most this fraction of the index is answered by an exact scan of
# the allowed ids: cheaper than the graph walk, which mostly meets filtered-out nodes.
EXACT_FILTER_FRACTION = 0.05

_MAX_ID = np.iinfo(np.int64).max  # exclusive bound of the "live slot" selector
_REV_MAP_BYTES = 40  # IndexIDMap2's std::unordered_map node + bucket, per id (libstdc++)
_REBUILD = "rebuild it from the catalog with `cmrsearch embed`"


class IndexFileError(CmrSearchError):
    """An index file or its manifest is missing, stale, truncated or corrupt."""


def default_ef_search(k: int) -> int:
    """HNSW candidate list length for k results."""
    return max(2 * k, MIN_EF_SEARCH)


def default_nlist(n: int) -> int:
    """IVF list count: sqrt(n). At 1M x 256 on 2 cores 4·sqrt(n) lists took 220-240 s
    to train and fill (both cost n·nlist·dim), sqrt(n) lists 25-35 s."""
    return max(1, min(n, round(math.sqrt(n))))


def default_nprobe(nlist: int) -> int:
    return max(MIN_NPROBE, -(-nlist // NPROBE_FRACTION))


def calibrate_nprobe(
    index: Any, ids: NDArray[np.int64], vectors: NDArray[np.float32], target: float
) -> int:
    """The smallest nprobe (doubling from MIN_NPROBE) at which probe queries find
    ``target`` of their exact 10 nearest indexed vectors.

    How many lists a query must visit depends on the data, not on the index: trained
    embeddings cluster tightly (a few lists suffice), structureless vectors need nearly
    all of them. The probes are indexed vectors moved a little (cosine ~0.95: a query
    near a study) and a lot (~0.7: a query off the data, as text can be in a CLIP
    space). Measured once at build and kept in the index file (IVF's ``nprobe``).
    """
    n, nlist = len(vectors), int(index.nlist)
    k = min(10, n)
    rng = np.random.default_rng(0)
    rows = rng.choice(n, min(CALIBRATION_QUERIES, n), replace=False)
    noise = rng.standard_normal((len(rows), vectors.shape[1])).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    queries = np.concatenate([vectors[rows] + 0.3 * noise, vectors[rows] + noise])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # Exact neighbours by blocks of 100k columns, so memory stays bounded at any n.
    top = np.full((len(queries), k), -np.inf, np.float32)
    nearest = np.zeros((len(queries), k), np.int64)
    for start in range(0, n, 100_000):
        block = queries @ vectors[start : start + 100_000].T
        merged = np.concatenate([top, block], axis=1)
        at = np.concatenate(
            [nearest, np.broadcast_to(np.arange(start, start + block.shape[1]), block.shape)],
            axis=1,
        )
        order = np.argpartition(-merged, k - 1, axis=1)[:, :k]
        top, nearest = np.take_along_axis(merged, order, 1), np.take_along_axis(at, order, 1)
    truth = [set(ids[row]) for row in nearest]
    probe = min(MIN_NPROBE, nlist)
    while True:
        _, found = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=probe))
        recall = np.mean([len(t & set(f)) / k for f, t in zip(found, truth, strict=True)])
        if recall >= target or probe >= nlist:
            return probe
        probe = min(2 * probe, nlist)


class VectorIndex:
    """Cosine top-k over study vectors; ids are catalog ids (>= 0), -1 means no result."""

    def __init__(self, index: Any, kind: str, *, use_gpu: bool | Literal["auto"] = "auto") -> None:
        self._index = index  # CPU form: authoritative, saved and loaded
        self.kind = kind
        self.dim = int(index.d)
        # HNSW cannot delete: removed slots get negative external ids (-2 - slot), which
        # no catalog id can have; a selector keeps ids >= 0. They persist in the file.
        self._dead = int((self._id_map() < 0).sum()) if kind == "hnsw" else 0
        self._use_gpu = use_gpu
        self._gpu = _gpu_replica(index, kind, use_gpu)

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: ArrayLike,
        vectors: ArrayLike,
        kind: str = "auto",
        *,
        hnsw_m: int = 32,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        nlist: int | None = None,
        pq_m: int | None = None,
        use_gpu: bool | Literal["auto"] = "auto",
    ) -> VectorIndex:
        id_arr = _as_ids(ids)
        vec = _as_vectors(vectors, None, "vectors")
        _check_normalised(vec)
        n, dim = vec.shape
        if len(id_arr) != n:
            raise ValueError(f"{len(id_arr)} ids for {n} vectors")
        if kind == "auto":
            kind = "flat" if n < FLAT_MAX else "hnsw" if n <= HNSW_MAX else "ivf"
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; use auto, {', '.join(KINDS)}")
        index: Any
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            graph = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = ef_construction  # build-time only, persisted
            index = faiss.IndexIDMap2(graph)
        else:
            # IVF keeps external ids in its lists itself: IndexIDMap2 over IVF would
            # mislabel results after remove_ids (it assumes the inner index compacts).
            lists = nlist or default_nlist(n)
            if n < lists or n == 0:
                raise ValueError(f"an {kind} index with {lists} lists needs >= {lists} vectors")
            quantizer = faiss.IndexFlatIP(dim)
            if kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
            else:
                m = pq_m or dim // 8  # one 8-bit code per 8 dims: dim/8 bytes per vector
                if m < 1 or dim % m:
                    raise ValueError(f"pq_m={m} must divide the dimension {dim}")
                if n < 256:
                    raise ValueError("an ivfpq index needs >= 256 vectors to train its codebooks")
                index = faiss.IndexIVFPQ(quantizer, dim, lists, m, 8, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = KMEANS_ITERATIONS
            index.cp.min_points_per_centroid = 1  # the sample size is chosen below, on purpose
            sample = min(n, max(lists * TRAIN_PER_LIST, 10_000))
            rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
            index.train(vec[rows])
        index.add_with_ids(vec, id_arr)
        if kind in ("ivf", "ivfpq"):
            index.nprobe = calibrate_nprobe(index, id_arr, vec, CALIBRATION_RECALL)
        return cls(index, kind, use_gpu=use_gpu)

    @property
    def default_nprobe(self) -> int | None:
        """IVF lists a query visits unless told otherwise: calibrated at build; files
        written before calibration existed carry faiss's 1 and get nlist / 8."""
        if self.kind not in ("ivf", "ivfpq"):
            return None
        stored, nlist = int(self._index.nprobe), int(self._index.nlist)
        return stored if stored > 1 or nlist == 1 else default_nprobe(nlist)

    # ---- size ------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        """Searchable vectors (removed HNSW slots excluded)."""
        return int(self._index.ntotal) - self._dead

    def bytes_per_vector(self) -> float:
        """Estimated RAM per searchable vector, structure overheads included."""
        idx = self._index
        stored = int(idx.ntotal)
        if self.kind in ("flat", "hnsw"):
            total = stored * (4 * self.dim + 8 + _REV_MAP_BYTES)
            if self.kind == "hnsw":
                hnsw = faiss.downcast_index(idx.index).hnsw
                total += 4 * hnsw.neighbors.size() + 8 * hnsw.offsets.size()
                total += 4 * hnsw.levels.size()
        else:
            total = stored * (idx.code_size + 8) + 4 * self.dim * idx.nlist
        return total / max(self.ntotal, 1)

    # ---- updates ---------------------------------------------------------------------
    def add(self, ids: ArrayLike, vectors: ArrayLike) -> None:
        """Add newly embedded studies; an id already in the index is refused."""
        id_arr = _as_ids(ids)
        if not len(id_arr) and not np.size(vectors):
            return  # nothing new, whatever the empty array's shape
        vec = _as_vectors(vectors, self.dim, "vectors")
        _check_normalised(vec)
        if len(id_arr) != len(vec):
            raise ValueError(f"{len(id_arr)} ids for {len(vec)} vectors")
        present = id_arr[np.isin(id_arr, self._stored_ids())]
        if len(present):
            raise ValueError(f"id {present[0]} is already in the index; remove it first")
        self._index.add_with_ids(vec, id_arr)
        self._refresh_gpu()

    def remove(self, ids: ArrayLike) -> None:
        """Make these ids unreturnable; ids not in the index are ignored."""
        id_arr = _as_ids(ids)
        if not len(id_arr):
            return
        if self.kind == "hnsw":
            id_map = self._id_map()
            slots = np.flatnonzero(np.isin(id_map, id_arr))
            id_map[slots] = -2 - slots  # unique, so the reverse map stays one-to-one
            self._index.construct_rev_map()
            self._dead += len(slots)
        else:
            self._index.remove_ids(faiss.IDSelectorBatch(id_arr))
        self._refresh_gpu()

    # ---- search ----------------------------------------------------------------------
    def search(
        self,
        queries: ArrayLike,
        k: int,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
        allowed_ids: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k (scores, ids), each (Q, k); missing results are id -1, score -inf.

        ``allowed_ids`` restricts results to those ids; a filtered query still gets
        k results whenever k allowed ids exist (starved rows are redone exactly).
        """
        q = _as_vectors(queries, self.dim, "queries")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        nq = len(q)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        ids = np.full((nq, k), -1, dtype=np.int64)
        allowed: NDArray[np.int64] | None = None
        if allowed_ids is not None:
            allowed = _sorted_unique(np.asarray(allowed_ids, dtype=np.int64).ravel())
            allowed = allowed[allowed >= 0]  # negative ids are HNSW tombstones
        reachable = self.ntotal if allowed is None else min(self.ntotal, len(allowed))
        if nq == 0 or reachable == 0:
            return scores, ids
        kk = min(k, int(self._index.ntotal))  # faiss would allocate k columns per query
        sel, _bitmap = _selector(allowed) if allowed is not None else (None, None)
        if sel is None and self._dead:
            sel = faiss.IDSelectorRange(0, _MAX_ID)

        if (
            self.kind != "flat"
            and allowed is not None
            and len(allowed) <= EXACT_FILTER_FRACTION * self.ntotal
        ):
            d, i = self._exact(q, kk, sel)
        else:
            d, i = self._ann(q, kk, sel, ef_search, nprobe)
            # HNSW's graph walk (and IVF's probed lists) can yield fewer than k hits under
            # a selective filter or when k approaches ntotal: redo those rows exactly.
            starved = np.flatnonzero((i >= 0).sum(axis=1) < min(kk, reachable))
            if len(starved) and self.kind != "flat":
                d[starved], i[starved] = self._exact(q[starved], kk, sel)
        ids[:, :kk] = i
        scores[:, :kk] = np.where(i >= 0, d, -np.inf)
        return scores, ids

    def _ann(
        self, q: NDArray[np.float32], k: int, sel: Any, ef_search: int | None, nprobe: int | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        params: Any
        if self.kind == "hnsw":
            ef = ef_search if ef_search is not None else default_ef_search(k)
            params = faiss.SearchParametersHNSW(efSearch=max(ef, k))
            return self._search_slots(faiss.downcast_index(self._index.index), q, k, params, sel)
        if self.kind == "flat":
            return self._search_slots(self._index.index, q, k, faiss.SearchParameters(), sel)
        index = self._index
        probes = nprobe if nprobe is not None else self.default_nprobe
        params = faiss.SearchParametersIVF(nprobe=max(1, min(probes, index.nlist)))
        if self._gpu is not None and sel is None and k <= 2048 and params.nprobe <= 2048:
            index = self._gpu  # faiss GPU kernels cap k and nprobe at 2048
        if sel is not None:
            params.sel = sel  # IVF lists store the external ids: no translation
        d, i = index.search(q, k, params=params)
        return d, i

    def _exact(
        self, q: NDArray[np.float32], k: int, sel: Any
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Exhaustive scan restricted by ``sel``: never starves, costs one pass."""
        if self.kind == "hnsw":  # the graph's flat storage holds the vectors by slot
            storage = faiss.downcast_index(self._index.index).storage
            return self._search_slots(storage, q, k, faiss.SearchParameters(), sel)
        if self.kind in ("ivf", "ivfpq"):
            return self._ann(q, k, sel, None, int(self._index.nlist))
        return self._ann(q, k, sel, None, None)

    def _search_slots(
        self, inner: Any, q: NDArray[np.float32], k: int, params: Any, sel: Any
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Search the index inside IndexIDMap2 by slot and map slots to external ids.

        IndexIDMap2.search would do the same, but it maps labels in an OpenMP loop
        that costs milliseconds per query when the cores are busy (see the bench),
        and it swaps its own selector into the caller's params while it runs.
        """
        # A local keeps the translated selector alive: params.sel holds no reference.
        translated = None if sel is None else faiss.IDSelectorTranslated(self._index.id_map, sel)
        if translated is not None:
            params.sel = translated
        d, slots = inner.search(q, k, params=params)
        ids = np.where(slots >= 0, self._id_map()[np.maximum(slots, 0)], -1)
        return d, ids

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: Path, manifest: Mapping[str, Any]) -> None:
        """Write the index atomically, with ``path.with_suffix('.json')`` beside it.

        The manifest holds the caller's keys plus kind, dim, ntotal and the sha256 of
        the index file, so ``load`` can tell a stale or damaged file from a good one.
        """
        path = Path(path)
        if path.suffix == ".json":
            raise ValueError(f"{path}: the index file cannot end in .json (its manifest does)")
        record = {**manifest, "kind": self.kind, "dim": self.dim, "ntotal": self.ntotal}
        json.dumps(record)  # refuse an unserialisable manifest before touching the disk
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp_manifest = path.with_name(f".{path.name}.{uuid.uuid4().hex}.json.tmp")
        try:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as exc:
                raise IndexFileError(f"cannot write index file {path}: {_first_line(exc)}") from exc
            record["sha256"] = _sha256(tmp, fsync=True)
            with open(tmp_manifest, "w", encoding="utf-8") as fh:
                json.dump(record, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            # Index first: a crash in between leaves a new file with the old manifest,
            # which load reports as a checksum mismatch rather than serving it.
            os.replace(tmp, path)
            os.replace(tmp_manifest, path.with_suffix(".json"))
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_manifest.unlink(missing_ok=True)

    @classmethod
    def load(
        cls, path: Path, *, use_gpu: bool | Literal["auto"] = "auto"
    ) -> tuple[VectorIndex, dict[str, Any]]:
        """Read an index saved by ``save``, verified against its manifest."""
        path = Path(path)
        manifest_path = path.with_suffix(".json")
        if not path.is_file():
            raise IndexFileError(f"index file {path} is missing; {_REBUILD}")
        if not manifest_path.is_file():
            raise IndexFileError(f"manifest {manifest_path} is missing; {_REBUILD}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexFileError(
                f"manifest {manifest_path} is unreadable ({type(exc).__name__}); {_REBUILD}"
            ) from exc
        if not isinstance(manifest, dict) or not all(
            k in manifest for k in ("kind", "dim", "ntotal", "sha256")
        ):
            raise IndexFileError(
                f"manifest {manifest_path} lacks kind/dim/ntotal/sha256; {_REBUILD}"
            )
        if _sha256(path) != manifest["sha256"]:
            raise IndexFileError(
                f"index file {path} does not match its manifest checksum "
                f"(stale, truncated or corrupt); {_REBUILD}"
            )
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexFileError(
                f"faiss cannot read index file {path} (corrupt); {_REBUILD}"
            ) from exc
        kind = _kind_of(index)
        if kind is None or kind != manifest["kind"]:
            raise IndexFileError(
                f"index file {path} holds a {kind or 'foreign'} index, its manifest says "
                f"{manifest['kind']}; {_REBUILD}"
            )
        if index.d != manifest["dim"]:
            raise IndexFileError(
                f"index file {path} has dimension {index.d}, its manifest says "
                f"{manifest['dim']}; {_REBUILD}"
            )
        loaded = cls(index, kind, use_gpu=use_gpu)
        if loaded.ntotal != manifest["ntotal"]:
            raise IndexFileError(
                f"index file {path} holds {loaded.ntotal} vectors, its manifest says "
                f"{manifest['ntotal']}; {_REBUILD}"
            )
        return loaded, manifest

    # ---- internals -------------------------------------------------------------------
    def _id_map(self) -> NDArray[np.int64]:
        """A writable view of IndexIDMap2's slot -> external id table (no copy)."""
        id_map = self._index.id_map
        return faiss.rev_swig_ptr(id_map.data(), id_map.size())

    def _stored_ids(self) -> NDArray[np.int64]:
        if self.kind in ("flat", "hnsw"):
            return self._id_map().copy()
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(j), size).copy()
            for j in range(lists.nlist)
            if (size := lists.list_size(j))
        ]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def _refresh_gpu(self) -> None:
        if self._gpu is not None:
            self._gpu = _gpu_replica(self._index, self.kind, self._use_gpu)


def _gpu_replica(index: Any, kind: str, use_gpu: bool | Literal["auto"]) -> Any | None:
    """The index sharded over all GPUs, or None to search on the CPU."""
    if use_gpu is False:
        return None
    gpus = getattr(faiss, "get_num_gpus", lambda: 0)()  # absent from some faiss-cpu builds
    usable = gpus > 0 and kind in ("ivf", "ivfpq")
    if not usable:
        if use_gpu is True:
            raise ValueError(f"use_gpu=True but faiss sees {gpus} GPUs for a {kind} index")
        return None
    options = faiss.GpuMultipleClonerOptions()
    options.shard = True  # each GPU holds 1/n of the lists: capacity scales with GPUs
    try:
        return faiss.index_cpu_to_all_gpus(index, co=options)
    except RuntimeError as exc:  # e.g. out of GPU memory: "auto" means "if possible"
        if use_gpu is True:
            raise
        log.warning(
            "searching on the CPU: faiss cannot copy the index to the GPUs: %s", _first_line(exc)
        )
        return None


def _selector(allowed: NDArray[np.int64]) -> tuple[Any, Any]:
    """A selector for sorted ids, and the buffer it reads (keep it alive while used)."""
    top = int(allowed[-1]) if len(allowed) else 0
    if top < 64 * len(allowed) + (1 << 20):
        # Catalog ids are dense: a bitmap costs <= 8 bytes per allowed id and builds in
        # ~1 ms for 300k ids, where IDSelectorBatch's hash set takes ~35 ms.
        bits = np.zeros(top + 1, dtype=bool)
        bits[allowed] = True
        packed = np.packbits(bits, bitorder="little")
        return faiss.IDSelectorBitmap(packed), packed
    return faiss.IDSelectorBatch(allowed), None


def _kind_of(index: Any) -> str | None:
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            return "hnsw"
        if isinstance(inner, faiss.IndexFlat) and inner.metric_type == faiss.METRIC_INNER_PRODUCT:
            return "flat"
        return None
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    return None


def _as_ids(ids: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() == _MAX_ID):
        raise ValueError("ids must be catalog ids: 0 <= id < 2**63 - 1")
    if len(_sorted_unique(arr)) != len(arr):
        raise ValueError("ids must be unique")
    return arr


def _sorted_unique(arr: NDArray[np.int64]) -> NDArray[np.int64]:
    # np.unique is ~40x slower than a sort on numpy 2.4 (150 ms for 300k filter ids).
    out = np.sort(arr)
    return out[np.concatenate(([True], out[1:] != out[:-1]))] if len(out) else out


def _as_vectors(vectors: ArrayLike, dim: int | None, what: str) -> NDArray[np.float32]:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1 and what == "queries":
        arr = arr[None, :]  # one query
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{what} must be a 2-D array (n, dim), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} have dimension {arr.shape[1]}, the index has {dim}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return np.ascontiguousarray(arr)


def _check_normalised(vectors: NDArray[np.float32]) -> None:
    # Inner product is cosine only on unit vectors; a zero or raw vector is a bug upstream.
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    bad = np.flatnonzero(np.abs(norms - 1) > 1e-3)
    if len(bad):
        raise ValueError(
            f"vectors must be L2-normalised: row {bad[0]} has norm {norms[bad[0]]:.4g}"
        )


def _sha256(path: Path, *, fsync: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
        if fsync:
            os.fsync(fh.fileno())
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    # Makes the renames durable; some filesystems refuse to open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
