"""Evaluation per DESIGN.md: zero-shot, few-shot, retrieval, finding queries, baselines.

Studies come from the catalog, truth from labels.jsonl files. The checkpoint lists
the studies it trained on: those are the *training* studies (zero-shot thresholds
and few-shot examples come only from them); every other labelled study is held out
and falls in the internal or the external cohort by its reporting style. Baselines
run in the same call: the same architecture untrained (same seed), and a non-learned
image statistic (per-view brightness, contrast and motion).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import Engine

from cmrclip.checkpoint import load_checkpoint, read_config
from cmrclip.config import ModelConfig
from cmrclip.metrics import (
    best_threshold,
    binary_metrics,
    bootstrap_ci,
    linear_probe,
    precision_at_k,
    prototype_episodes,
    retrieval_metrics,
    roc_auc,
    roc_curve,
    zero_shot_scores,
)
from cmrclip.model import CMRCLIP
from cmrclip.prompts import PROMPTS, QUERIES
from cmrsearch.errors import CmrSearchError
from cmrsearch.vocabulary import CLIP_VIEWS, FINDINGS
from trainer.data import TRAIN_STUDIES, Pair, impression_groups, load_pairs, read_train_studies

SHOTS = (1, 2, 4, 8, 16)
BOOTSTRAP = 1000  # resamples per interval
COMPARED = ("model", "untrained", "image_statistic")  # one run scores all three
# Cohorts further apart in size than this get a warning beside P@10 and R@k: in 120
# studies the internal cohort's P@10 was 0.67 against 0.76 in its 346 (README).
UNEQUAL = 1.5
Array = NDArray[np.float32]


class EvaluationError(CmrSearchError):
    """Evaluation cannot run on what the catalog and labels hold."""


@dataclass
class Encoded:
    studies: Array  # (N, D) normalised study embeddings
    texts: Array  # (N, D) normalised impression embeddings
    prompts: dict[str, tuple[Array, Array]]  # finding -> (positive, negative) embeddings
    queries: dict[str, Array]  # finding -> (D,) query embedding


def read_labels(paths: list[Path]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        if not path.is_file():
            raise EvaluationError(
                f"labels file {path} not found; give the labels.jsonl "
                "written by `cmrsearch phantom`"
            )
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise EvaluationError(f"{path.name} line {number} is not JSON") from None
                out[row["study_uid"]] = row
    return out


def image_statistics(pairs: list[Pair]) -> Array:
    """Non-learned features: per view mean, spread and frame-to-frame change."""
    feats = np.zeros((len(pairs), len(CLIP_VIEWS) * 3), np.float32)
    for i, pair in enumerate(pairs):
        for v, view in enumerate(CLIP_VIEWS):
            clip = pair.clips.get(view)
            if clip is None:
                continue
            x = clip.astype(np.float32) / 255
            motion = float(np.abs(np.diff(x, axis=0)).mean()) if len(x) > 1 else 0.0
            feats[i, 3 * v : 3 * v + 3] = (x.mean(), x.std(), motion)
    return feats


def _encode(model: CMRCLIP, pairs: list[Pair]) -> Encoded:
    studies, _, _ = model.encode_video([p.clips for p in pairs])
    texts = model.encode_text([p.impression for p in pairs])
    prompts = {
        f: (model.encode_text(list(pos)), model.encode_text(list(neg)))
        for f, (pos, neg) in PROMPTS.items()
    }
    queries = {f: model.encode_text([q])[0] for f, q in QUERIES.items()}
    return Encoded(studies, texts, prompts, queries)


def _truth(pairs: list[Pair], labels: dict[str, dict[str, Any]], finding: str) -> NDArray[np.bool_]:
    return np.array([bool(labels[p.study_uid]["findings"][finding]) for p in pairs])


def _both_classes(y: NDArray[np.bool_]) -> bool:
    """Positives and negatives both present: what an AUC, a threshold or a probe needs."""
    return bool(y.any() and (~y).any())


def _check_prompts(
    enc: Encoded, train: NDArray[np.intp], truth: dict[str, NDArray[np.bool_]]
) -> tuple[Encoded, dict[str, dict[str, list[str]]]]:
    """Each finding's prompts checked on the training studies, as its threshold is: a
    positive prompt that alone ranks them against the finding (AUC <= 0.5), or a
    negative one that ranks them for it (>= 0.5), is left out; where every prompt of a
    side would be, the least wrong one stays. Returns the encoding with the prompts
    kept, and their texts (search scores with the same ones)."""
    prompts: dict[str, tuple[Array, Array]] = {}
    texts: dict[str, dict[str, list[str]]] = {}
    for finding, (positive, negative) in PROMPTS.items():
        pos, neg = enc.prompts[finding]
        y = truth[finding][train]
        keep_pos, keep_neg = np.ones(len(pos), bool), np.ones(len(neg), bool)
        if _both_classes(y):
            x = enc.studies[train]
            keep_pos = _right_way(np.array([roc_auc(x @ e, y) for e in pos]))
            keep_neg = _right_way(1 - np.array([roc_auc(x @ e, y) for e in neg]))
        prompts[finding] = (pos[keep_pos], neg[keep_neg])
        texts[finding] = {
            "positive": [t for t, k in zip(positive, keep_pos, strict=True) if k],
            "negative": [t for t, k in zip(negative, keep_neg, strict=True) if k],
        }
    return replace(enc, prompts=prompts), texts


def _right_way(aucs: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Prompts whose AUC (oriented so that higher is right) beats chance; else the best."""
    right = aucs > 0.5
    return right if right.any() else aucs == np.nanmax(aucs)


def _prompt_scores(enc: Encoded) -> dict[str, NDArray[np.float64]]:
    """Per finding, each study's mean cosine to the positive prompts minus the negative."""
    return {f: zero_shot_scores(enc.studies, *enc.prompts[f]) for f in FINDINGS}


def _zero_shot(
    scores: dict[str, NDArray[np.float64]],
    train: NDArray[np.intp],
    cohorts: dict[str, NDArray[np.intp]],
    truth: dict[str, NDArray[np.bool_]],
) -> dict[str, Any]:
    return {f: _per_cohort(s, truth[f], train, cohorts) for f, s in scores.items()}


def _per_cohort(
    scores: NDArray[np.float64],
    y: NDArray[np.bool_],
    train: NDArray[np.intp],
    cohorts: dict[str, NDArray[np.intp]],
) -> dict[str, Any]:
    """Metrics per held-out cohort at the threshold chosen on training studies only."""
    train_ok = _both_classes(y[train])
    threshold = best_threshold(scores[train], y[train]) if train_ok else 0.0
    out: dict[str, Any] = {
        name: _binary(scores[idx], y[idx], threshold) for name, idx in cohorts.items()
    }
    out["threshold"] = threshold
    return out


def _binary(
    scores: NDArray[np.float64], y: NDArray[np.bool_], threshold: float
) -> dict[str, float]:
    result: dict[str, Any] = {"auc": roc_auc(scores, y), "positives": int(y.sum()), "n": len(y)}
    if _both_classes(y):
        result.update(binary_metrics(scores, y, threshold))
    if min(y.sum(), (~y).sum()) >= 2:
        # Positives and negatives resampled apart: a finding with 10 cases in a cohort
        # has an AUC some 0.1 wide either way, which the point value hides. A single
        # case gets none: resampling it would only measure the negatives around it.
        ci = bootstrap_ci(roc_auc, scores, y, n=BOOTSTRAP, seed=0, strata=y)
        result["auc_95ci"] = list(ci)
    return result


def _few_shot(
    features: Array,
    train: NDArray[np.intp],
    cohorts: dict[str, NDArray[np.intp]],
    truth: dict[str, NDArray[np.bool_]],
    seed: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, idx in cohorts.items():
        per_k: dict[str, Any] = {}
        for k in SHOTS:
            means = []
            for finding in FINDINGS:
                y = truth[finding]
                if not (_both_classes(y[train]) and _both_classes(y[idx])):
                    continue
                summary = prototype_episodes(
                    features[train], y[train], features[idx], y[idx], k=k, episodes=100, seed=seed
                )
                means.append(summary["mean"])
            per_k[str(k)] = {
                "mean_auc": float(np.mean(means)) if means else float("nan"),
                "low": float(np.percentile(means, 2.5)) if means else float("nan"),
                "high": float(np.percentile(means, 97.5)) if means else float("nan"),
            }
        out[name] = per_k
    return out


def _retrieval(
    enc: Encoded, pairs: list[Pair], cohorts: dict[str, NDArray[np.intp]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, idx in cohorts.items():
        groups = impression_groups([pairs[i].impression for i in idx])
        out[name] = {
            "text_to_study": retrieval_metrics(enc.texts[idx], enc.studies[idx], groups),
            "study_to_text": retrieval_metrics(enc.studies[idx], enc.texts[idx], groups),
        }
    return out


def _precision(
    enc: Encoded, cohorts: dict[str, NDArray[np.intp]], truth: dict[str, NDArray[np.bool_]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, idx in cohorts.items():
        per = {
            f: precision_at_k(enc.studies[idx] @ enc.queries[f], truth[f][idx], 10)
            for f in FINDINGS
            if truth[f][idx].any()
        }
        # A finding with fewer than 10 cases in the cohort cannot fill a top 10: the
        # best any ranking can score, so that a short cohort is not read as a weak model.
        ceiling = [min(10, int(truth[f][idx].sum())) / min(10, len(idx)) for f in per]
        out[name] = {
            "mean": float(np.mean(list(per.values()))),
            "ceiling": float(np.mean(ceiling)),
            "per_finding": per,
        }
    return out


def _probe_precision(
    features: Array,
    train: NDArray[np.intp],
    cohorts: dict[str, NDArray[np.intp]],
    truth: dict[str, NDArray[np.bool_]],
) -> dict[str, Any]:
    """P@10 of a linear probe per finding, fitted on the training studies' truth: what
    the vectors hold. Beside the finding queries' P@10 it tells a query that points
    away from its cases (probe high, query low) from vectors that do not hold them."""
    out: dict[str, Any] = {}
    probes = {
        f: linear_probe(features[train], y[train])
        for f, y in truth.items()
        if _both_classes(y[train])
    }
    for name, idx in cohorts.items():
        per = {
            f: precision_at_k(features[idx] @ w + b, truth[f][idx], 10)
            for f, (w, b) in probes.items()
            if truth[f][idx].any()
        }
        mean = float(np.mean(list(per.values()))) if per else float("nan")
        out[name] = {"mean": mean, "per_finding": per}
    return out


def _statistic_scores(
    features: Array, train: NDArray[np.intp], truth: dict[str, NDArray[np.bool_]]
) -> dict[str, NDArray[np.float64]]:
    """The single image statistic (and direction) that best separates each finding on the
    training studies, applied unchanged to the held-out cohorts."""
    out: dict[str, NDArray[np.float64]] = {}
    for finding in FINDINGS:
        y = truth[finding]
        if not _both_classes(y[train]):
            continue
        best, sign, best_auc = 0, 1.0, -1.0
        for j in range(features.shape[1]):
            auc = roc_auc(features[train, j], y[train])
            for s, a in ((1.0, auc), (-1.0, 1 - auc)):
                if a == a and a > best_auc:
                    best, sign, best_auc = j, s, a
        out[finding] = sign * features[:, best].astype(np.float64)
    return out


def _mean_auc(per_finding: dict[str, Any], cohort: str) -> float:
    aucs = [
        v[cohort]["auc"]
        for v in per_finding.values()
        if cohort in v and v[cohort]["auc"] == v[cohort]["auc"]
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def _means(
    zero: dict[str, Any],
    scores: dict[str, NDArray[np.float64]],
    truth: dict[str, NDArray[np.bool_]],
    cohorts: dict[str, NDArray[np.intp]],
) -> dict[str, dict[str, Any]]:
    """Per cohort, the mean zero-shot AUC over the findings and its interval."""
    return {
        "mean_auc": {c: _mean_auc(zero, c) for c in cohorts},
        "mean_auc_95ci": {c: _mean_auc_interval(scores, truth, i) for c, i in cohorts.items()},
    }


def _mean_auc_interval(
    scores: dict[str, NDArray[np.float64]],
    truth: dict[str, NDArray[np.bool_]],
    idx: NDArray[np.intp],
) -> list[float]:
    """95% bootstrap interval of a cohort's mean AUC, its studies resampled jointly for
    every finding (a finding drawn without a positive is left out of that resample)."""

    def mean_auc(rows: NDArray[np.intp]) -> float:
        aucs = [roc_auc(s[rows], truth[f][rows]) for f, s in scores.items()]
        kept = [a for a in aucs if a == a]
        return float(np.mean(kept)) if kept else float("nan")

    return list(bootstrap_ci(mean_auc, idx, n=BOOTSTRAP, seed=0))


def evaluate(
    engine: Engine,
    home: Path,
    checkpoint: Path,
    label_files: list[Path],
    out_dir: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    labels = read_labels(label_files)
    pairs = [p for p in load_pairs(engine, home) if p.study_uid in labels]
    trained_on = read_train_studies(checkpoint)
    if not trained_on:
        raise EvaluationError(
            f"{checkpoint} does not list its training studies "
            f"({TRAIN_STUDIES}); evaluate a checkpoint from `cmrsearch train`"
        )
    train = np.array([i for i, p in enumerate(pairs) if p.study_uid in trained_on])
    cohorts: dict[str, NDArray[np.intp]] = {}
    for style in ("internal", "external"):
        idx = np.array(
            [
                i
                for i, p in enumerate(pairs)
                if p.study_uid not in trained_on and labels[p.study_uid].get("style") == style
            ],
            dtype=np.intp,
        )
        if len(idx):
            cohorts[style] = idx
    if not len(train) or not cohorts:
        raise EvaluationError(
            f"{len(train)} labelled training studies and {sum(map(len, cohorts.values()))} "
            "held-out ones in the catalog; index the held-out archives (new patients) and "
            "give every labels.jsonl"
        )
    truth = {f: _truth(pairs, labels, f) for f in FINDINGS}
    trained = load_checkpoint(checkpoint, _device())
    torch.manual_seed(seed)
    untrained = CMRCLIP(ModelConfig.from_dict(read_config(checkpoint)["model"])).to(_device())
    stats = image_statistics(pairs)
    stats_z = (stats - stats[train].mean(0)) / (stats[train].std(0) + 1e-6)
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "train_studies": len(train),
        "cohorts": {k: len(v) for k, v in cohorts.items()},
    }
    for name, model in (("model", trained), ("untrained", untrained)):
        enc, prompts = _check_prompts(_encode(model, pairs), train, truth)
        scores = _prompt_scores(enc)
        zero = _zero_shot(scores, train, cohorts, truth)
        report[name] = {
            "zero_shot": zero,
            **_means(zero, scores, truth, cohorts),
            "few_shot": _few_shot(enc.studies, train, cohorts, truth, seed),
            "retrieval": _retrieval(enc, pairs, cohorts),
            "finding_precision_at_10": _precision(enc, cohorts, truth),
            "probe_precision_at_10": _probe_precision(enc.studies, train, cohorts, truth),
            "prompts": prompts,
        }
        if name == "model" and out_dir is not None:
            _plots(enc, train, cohorts, truth, report["model"], out_dir)
    stat_scores = _statistic_scores(stats_z, train, truth)
    stat_zero = _zero_shot(stat_scores, train, cohorts, truth)
    report["image_statistic"] = {
        "zero_shot": stat_zero,
        **_means(stat_zero, stat_scores, truth, cohorts),
        "few_shot": _few_shot(stats_z, train, cohorts, truth, seed),
        "probe_precision_at_10": _probe_precision(stats_z, train, cohorts, truth),
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, default=float))
        (out_dir / "evaluation.md").write_text(markdown(report))
    return report


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def markdown(report: dict[str, Any]) -> str:
    cohorts = list(report["cohorts"])
    head = (
        "| finding | "
        + " | ".join(f"{c} AUC (model [95% CI] / untrained / image stat)" for c in cohorts)
        + " |"
    )
    lines = [
        f"Training studies: {report['train_studies']}; held out: {report['cohorts']}",
        "",
        head,
        "|---|" + "---|" * len(cohorts),
    ]
    for finding in FINDINGS:
        cells = []
        for c in cohorts:
            entries = [report[m]["zero_shot"].get(finding, {}).get(c, {}) for m in COMPARED]
            values = [f"{e.get('auc', float('nan')):.2f}" for e in entries]
            values[0] += _interval(entries[0].get("auc_95ci"))
            cases = entries[0].get("positives", 0)
            cells.append(" / ".join(values) + f" ({cases} case{'' if cases == 1 else 's'})")
        lines.append(f"| {finding} | " + " | ".join(cells) + " |")
    means = []
    for c in cohorts:
        values = [f"{report[m]['mean_auc'][c]:.2f}" for m in COMPARED]
        values[0] += _interval(report["model"].get("mean_auc_95ci", {}).get(c))
        means.append(" / ".join(values))
    lines.append("| **mean** | " + " | ".join(means) + " |")
    lines += [
        "",
        "| metric | " + " | ".join(f"{c} (model / untrained)" for c in cohorts) + " |",
        "|---|" + "---|" * len(cohorts),
    ]
    rows: list[tuple[str, Callable[[dict[str, Any], str], float]]] = [
        ("text->study R@1", lambda r, c: r["retrieval"][c]["text_to_study"]["recall@1"]),
        ("text->study R@10", lambda r, c: r["retrieval"][c]["text_to_study"]["recall@10"]),
        ("study->text R@1", lambda r, c: r["retrieval"][c]["study_to_text"]["recall@1"]),
        ("study->text MRR", lambda r, c: r["retrieval"][c]["study_to_text"]["mrr"]),
        ("finding query P@10", lambda r, c: r["finding_precision_at_10"][c]["mean"]),
        ("linear probe P@10", lambda r, c: r["probe_precision_at_10"][c]["mean"]),
        ("few-shot AUC k=16", lambda r, c: r["few_shot"][c]["16"]["mean_auc"]),
    ]
    for label, get in rows:
        lines.append(
            f"| {label} | "
            + " | ".join(
                f"{get(report['model'], c):.2f} / {get(report['untrained'], c):.2f}"
                for c in cohorts
            )
            + " |"
        )
    ceilings = [report["model"]["finding_precision_at_10"][c]["ceiling"] for c in cohorts]
    lines.append(
        "| finding query P@10, best attainable | " + " | ".join(f"{v:.2f}" for v in ceilings) + " |"
    )
    sizes = report["cohorts"]
    if max(sizes.values()) > UNEQUAL * min(sizes.values()):
        lines += [
            "",
            f"Held-out cohorts of unequal size ({', '.join(f'{c} {n}' for c, n in sizes.items())}):"
            " P@10 and R@k depend on how many studies a query ranks, so compare them only"
            " across cohorts of one size.",
        ]
    kept = report["model"].get("prompts", {})
    left_out = [
        f"{finding}: {text!r}"
        for finding, sides in PROMPTS.items()
        for side, texts in zip(("positive", "negative"), sides, strict=True)
        for text in texts
        if finding in kept and text not in kept[finding][side]
    ]
    lines += [
        "",
        "Prompts left out (they rank the training studies the wrong way): "
        + ("; ".join(left_out) or "none"),
    ]
    return "\n".join(lines) + "\n"


def _interval(ci: list[float] | None) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _plots(
    enc: Encoded,
    train: NDArray[np.intp],
    cohorts: dict[str, NDArray[np.intp]],
    truth: dict[str, NDArray[np.bool_]],
    result: dict[str, Any],
    out_dir: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    for cohort, idx in cohorts.items():
        fig, ax = plt.subplots(figsize=(6, 6))
        for finding in FINDINGS:
            y = truth[finding][idx]
            if not _both_classes(y):
                continue
            scores = zero_shot_scores(enc.studies[idx], *enc.prompts[finding])
            fpr, tpr, _ = roc_curve(scores, y)
            ax.plot(fpr, tpr, lw=1, label=f"{finding} ({roc_auc(scores, y):.2f})")
        # Labelled, so that a cohort with no finding of both classes still has a legend.
        ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
        ax.set(
            xlabel="false positive rate",
            ylabel="true positive rate",
            title=f"Zero-shot ROC, {cohort} cohort",
        )
        ax.legend(fontsize=6, loc="lower right")
        fig.savefig(out_dir / f"roc_{cohort}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    for cohort in cohorts:
        few = result["few_shot"][cohort]
        ks = [int(k) for k in few]
        ax.errorbar(
            ks,
            [few[str(k)]["mean_auc"] for k in ks],
            yerr=[
                [few[str(k)]["mean_auc"] - few[str(k)]["low"] for k in ks],
                [few[str(k)]["high"] - few[str(k)]["mean_auc"] for k in ks],
            ],
            marker="o",
            capsize=3,
            label=cohort,
        )
    ax.set(
        xscale="log",
        xlabel="labelled studies per class (k)",
        ylabel="mean AUC",
        title="Few-shot prototype classifier",
    )
    ax.legend()
    fig.savefig(out_dir / "few_shot.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
