"""The one console script, ``cmrsearch``, with a subcommand per job.

``main(argv)`` runs in-process (tests call it directly). Results go to stdout
(one JSON document with ``--json``); logs and progress go to stderr. A
``CmrSearchError`` becomes a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cmrsearch.errors import CmrSearchError, ConfigError
from cmrsearch.settings import Settings, load_settings

log = logging.getLogger("cmrsearch")

Handler = Callable[[argparse.Namespace, Settings], int]


def open_catalog(settings: Settings, *, require_schema: bool = True) -> Engine:
    """The catalog engine, checked: HOME writable, database reachable, schema at head."""
    from catalog.db import make_engine
    from catalog.schema import require_head

    settings.ensure_home()
    engine = make_engine(settings.resolved_database_url)
    if require_schema:
        require_head(engine)
    return engine


def emit(args: argparse.Namespace, result: dict[str, Any], human: Sequence[str]) -> None:
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        for line in human:
            print(line)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from catalog.db import safe_url
    from catalog.schema import upgrade

    engine = open_catalog(settings, require_schema=False)
    before, after = upgrade(engine)
    where = safe_url(engine.url)
    result = {"database": where, "from_revision": before, "to_revision": after}
    verb = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    emit(args, result, [f"{where}: {verb} revision {after}"])
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from catalog.db import safe_url, session_factory
    from catalog.schema import current_revision
    from catalog.stats import archive_status

    engine = open_catalog(settings)
    with session_factory(engine)() as session:
        status = archive_status(session)
    status["database"] = safe_url(engine.url)
    status["schema_revision"] = current_revision(engine)
    lines = [f"{key}: {value}" for key, value in sorted(status.items())]
    emit(args, status, lines)
    return 0


def cmd_phantom(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from phantom.archive import generate
    from phantom.preview import write_previews

    workers = args.workers or os.cpu_count() or 1
    with tqdm(total=args.studies, unit="study", file=sys.stderr, disable=args.json) as bar:
        summary = generate(
            args.out,
            args.studies,
            seed=args.seed,
            style=args.style,
            workers=workers,
            force=args.force,
            size=args.size,
            progress=bar.update,
        )
    if args.preview:
        summary["previews"] = [str(p) for p in write_previews(args.out, args.preview)]
    emit(
        args,
        summary,
        [
            f"{summary['studies']} studies of {summary['patients']} patients, "
            f"{summary['files']} files, {summary['bytes'] / 1e6:.1f} MB in {summary['seconds']} s "
            f"-> {args.out}",
        ],
    )
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from indexer.clips import ClipConfig
    from indexer.runner import IndexOptions, run_index

    engine = open_catalog(settings)
    options = IndexOptions(
        home=settings.ensure_home(),
        secret=settings.site_secret(),
        keep_identifiers=settings.store_identifiers,
        workers=args.workers or os.cpu_count() or 1,
        clips=ClipConfig(frames=args.frames, size=args.size),
    )
    bar = tqdm(unit="study", file=sys.stderr, disable=args.json or not sys.stderr.isatty())

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        summary = run_index(engine, args.paths, args.reports, options, progress).as_dict()
    finally:
        bar.close()
    errors = sum(summary["errors_by_type"].values())
    emit(
        args,
        summary,
        [
            f"{summary['studies']} studies ({summary['studies_written']} written, "
            f"{summary['studies_unchanged']} unchanged), {summary['clips']} clips, "
            f"series by view {summary['series_by_view']}, reports linked "
            f"{summary['reports_linked']}, unmatched {summary['reports_unmatched']}, "
            f"{errors} files rejected {summary['errors_by_type']}",
        ],
    )
    return 3 if args.strict and errors else 0


# `train` options whose defaults live in TrainConfig alone: unset, they are not passed.
TRAIN_OVERRIDES = (
    "statement_weight",
    "view_statement_weights",
    "measurement_weight",
    "unlocated_statements",
    "interpretation_statements",
    "view_dropout",
)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    import torch

    from trainer.data import load_pairs
    from trainer.loop import TrainConfig, train
    from trainer.register import register

    engine = open_catalog(settings)
    torch.set_num_threads(os.cpu_count() or 1)
    given = {name: value for name in TRAIN_OVERRIDES if (value := getattr(args, name)) is not None}
    if "view_statement_weights" in given:  # the views it does not name keep their default
        given["view_statement_weights"] = {
            **TrainConfig().view_statement_weights,
            **given["view_statement_weights"],
        }
    config = TrainConfig(
        model=args.config,
        text_layers=args.text_layers,
        video_size=args.video_size,
        **given,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device or settings.device,
    )
    pairs = load_pairs(engine, settings.ensure_home())
    log.info(
        "training on %d studies with reports (%s config, %d epochs)",
        len(pairs),
        config.model,
        config.epochs,
    )

    def progress(record: dict[str, float]) -> None:
        if not args.json:
            print(
                f"epoch {record['epoch']:3d}  loss {record['loss']:.3f}  "
                f"val R@1 {record.get('val_recall_at_1', float('nan')):.2f}  "
                f"MRR {record.get('val_mrr', float('nan')):.2f}  {record['seconds']} s",
                file=sys.stderr,
            )

    result = train(pairs, args.out, config, progress)
    model = args.out / "last"
    result["model_version"] = register(
        engine, model, {"training": {k: v for k, v in result.items() if k != "history"}}
    )
    result["checkpoint"] = str(model)
    mrr = result["val_mrr"]
    emit(
        args,
        result,
        [
            f"model {result['model_version']} -> {model} "
            f"(validation MRR {'-' if mrr is None else f'{mrr:.3f}'}); "
            f"use it with CMRSEARCH_MODEL={model}"
        ],
    )
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from trainer.evaluate import evaluate

    checkpoint = args.model or settings.model
    if checkpoint is None:
        raise ConfigError("no model to evaluate: pass --model DIR or set CMRSEARCH_MODEL")
    engine = open_catalog(settings)
    report = evaluate(
        engine, settings.ensure_home(), checkpoint, args.labels, args.out, seed=args.seed
    )
    if args.register:
        from trainer.register import register

        zero = report["model"]["zero_shot"]
        thresholds = {f: v["threshold"] for f, v in zero.items()}
        evaluation = {
            "mean_auc": report["model"]["mean_auc"],
            "mean_auc_95ci": report["model"]["mean_auc_95ci"],
            "zero_shot": zero,
            "prompts": report["model"]["prompts"],
            "thresholds": thresholds,
        }
        register(engine, checkpoint, {"evaluation": evaluation})
    lines = [
        f"mean zero-shot AUC {cohort}: model {report['model']['mean_auc'][cohort]:.3f} "
        "(95% CI {:.3f}-{:.3f}), ".format(*report["model"]["mean_auc_95ci"][cohort])
        + f"untrained {report['untrained']['mean_auc'][cohort]:.3f}, image statistic "
        f"{report['image_statistic']['mean_auc'][cohort]:.3f}"
        for cohort in report["cohorts"]
    ]
    emit(args, report, lines)
    return 0


def _checkpoint(args: argparse.Namespace, settings: Settings) -> Path:
    checkpoint = getattr(args, "model", None) or settings.model
    if checkpoint is None:
        raise ConfigError(
            "no model given: pass --model DIR or set CMRSEARCH_MODEL to a "
            "checkpoint written by `cmrsearch train`"
        )
    return Path(checkpoint)


def open_search(args: argparse.Namespace, settings: Settings) -> Any:
    from search.engine import SearchEngine

    return SearchEngine(
        open_catalog(settings),
        settings.ensure_home(),
        _checkpoint(args, settings),
        settings.resolved_device(),
    )


def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from cmrclip.checkpoint import load_checkpoint
    from search.embed import embed_catalog, ensure_model_version
    from search.store import open_index

    engine = open_catalog(settings)
    checkpoint = _checkpoint(args, settings)
    home = settings.ensure_home()
    version = ensure_model_version(engine, checkpoint)
    model = load_checkpoint(checkpoint, settings.resolved_device())
    bar = tqdm(unit="study", file=sys.stderr, disable=args.json or not sys.stderr.isatty())

    def progress(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()

    result = embed_catalog(engine, home, model, version, progress=progress)
    bar.close()
    index = open_index(engine, home, version, "study")
    result["index"] = {"kind": index.kind, "vectors": index.ntotal} if index else None
    emit(
        args,
        result,
        [
            f"{result['studies_embedded']} studies embedded with model {version}; "
            f"index: {result['index']}"
        ],
    )
    return 0


def _filters(args: argparse.Namespace) -> Any:
    from search.filters import parse_filters

    return parse_filters(args.filter or [])


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_search(args, settings)
    result = engine.search(
        args.text, k=args.k, offset=args.offset, filters=_filters(args), view=args.view
    ).as_dict()
    lines = [result["message"]] if result["message"] else []
    lines += [
        f"{h['score']:.3f}  {h['study_uid']}  {h['study_date']}  {h['best_sentence']}"
        for h in result["hits"]
    ]
    emit(args, result, lines)
    return 0


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    result = (
        open_search(args, settings)
        .similar(args.study_uid, k=args.k, exclude_same_patient=args.other_patients)
        .as_dict()
    )
    emit(
        args,
        result,
        [f"{h['score']:.3f}  {h['study_uid']}  {h['impression']}" for h in result["hits"]],
    )
    return 0


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    result = open_search(args, settings).classify(args.study_uid)
    emit(
        args,
        {"study_uid": args.study_uid, "findings": result},
        [f"{name:34s} {v['probability']:.2f}" for name, v in result.items()],
    )
    return 0


def cmd_cohort(args: argparse.Namespace, settings: Settings) -> int:
    from search.engine import export_cohort

    hits = open_search(args, settings).cohort(
        args.text,
        findings=args.finding,
        min_score=args.min_score,
        top=args.top,
        filters=_filters(args),
    )
    path = export_cohort(hits, args.out)
    emit(args, {"studies": len(hits), "csv": str(path)}, [f"{len(hits)} studies -> {path}"])
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from cmrsearch.serve import check_access, exec_streamlit

    open_catalog(settings)
    check_access(settings)
    if settings.model is None:
        log.warning("CMRSEARCH_MODEL is not set: the UI will show the archive but not search")
    print(f"cmr-search UI on http://{args.host}:{args.port}", file=sys.stderr)
    return exec_streamlit(args.host, args.port)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from cmrsearch.demo import run_demo

    return run_demo(args, settings, main)


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from cmrsearch.accounts import add_user

    path = args.users or settings.resolved_users_file
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; run the command again")
    replaced = add_user(path, args.name, password)
    emit(
        args,
        {"user": args.name, "users_file": str(path), "replaced": replaced},
        [f"{'updated' if replaced else 'added'} {args.name} in {path}"],
    )
    return 0


def _number_up_to(text: str, top: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and 0.0 <= value <= top):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _fraction(text: str) -> float:
    return _number_up_to(text, 1.0, "a number from 0 to 1")


def _non_negative(text: str) -> float:
    return _number_up_to(text, math.inf, "a number of 0 or more")


def _view_weights(text: str) -> dict[str, float]:
    """One weight for every view with its own loss ("0.5"), or one per view named
    ("lge=0.5,lvot=0.25")."""
    from trainer.statements import VIEW_WORDS

    if "=" not in text:
        return dict.fromkeys(VIEW_WORDS, _non_negative(text))
    weights = {}
    for part in text.split(","):
        view, _, weight = (s.strip() for s in part.partition("="))
        if view not in VIEW_WORDS:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not W or VIEW=W,... with VIEW one of {', '.join(VIEW_WORDS)}"
            )
        weights[view] = _non_negative(weight)
    return weights


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmrsearch", description="Semantic search for cardiac MRI archives."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="catalog database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="bring the database schema to head")
    upgrade.add_argument("--json", action="store_true", help="print the result as JSON")
    upgrade.set_defaults(handler=cmd_db_upgrade)

    phantom = commands.add_parser(
        "phantom", help="write a synthetic CMR archive (DICOM, reports.jsonl, labels.jsonl)"
    )
    phantom.add_argument("out", type=Path, metavar="OUT", help="output directory")
    phantom.add_argument("--studies", type=int, required=True, help="number of studies")
    phantom.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    phantom.add_argument(
        "--style",
        choices=["internal", "external"],
        default="internal",
        help="reporting institution: internal or external cohort",
    )
    phantom.add_argument(
        "--size",
        choices=["small", "default", "large"],
        default="default",
        help="image matrix: small (64, tests), default (~96), large (~192)",
    )
    phantom.add_argument("--workers", type=int, default=0, help="processes (default: cores)")
    phantom.add_argument(
        "--preview",
        type=int,
        default=0,
        metavar="N",
        help="also write PNG montages of the first N studies",
    )
    phantom.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    phantom.add_argument("--json", action="store_true", help="print the summary as JSON")
    phantom.set_defaults(handler=cmd_phantom)

    index = commands.add_parser("index", help="ingest DICOM studies and their reports")
    index.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="folders, DICOM files or zip archives"
    )
    index.add_argument("--reports", type=Path, help="reports: .jsonl, .csv or a folder of .txt")
    index.add_argument("--workers", type=int, default=0, help="processes (default: cores)")
    index.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    index.add_argument("--size", type=int, default=64, help="clip width/height (default 64)")
    index.add_argument(
        "--strict", action="store_true", help="exit with status 3 when any file was rejected"
    )
    index.add_argument("--json", action="store_true", help="print the summary as JSON")
    index.set_defaults(handler=cmd_index)

    train = commands.add_parser("train", help="train the CMR-CLIP model on the catalog")
    train.add_argument("--out", type=Path, required=True, help="output directory")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument(
        "--config",
        choices=["tiny", "small", "base"],
        default="tiny",
        help="model size: tiny (CPU default), small, base (GPU)",
    )
    train.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="default: CMRSEARCH_DEVICE"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--text-layers",
        type=int,
        choices=range(7),
        metavar="N",
        help="fine-tune the top N of MiniLM's 6 layers (default: the config's)",
    )
    train.add_argument(
        "--video-size",
        type=int,
        choices=(32, 64),
        help="network input width in pixels (default: the config's; clips are 64)",
    )
    train.add_argument(
        "--statement-weight",
        type=_fraction,
        metavar="W",
        help="share of the loss that aligns studies with single report statements "
        "(0 to 1; default 0.8)",
    )
    train.add_argument(
        "--view-statement-weight",
        dest="view_statement_weights",
        type=_view_weights,
        metavar="W|VIEW=W,...",
        help="weight of aligning the LGE and LVOT views alone with the report's statements "
        "about scar and the aortic root: one for both, or per view as lge=0.5,lvot=0.25 "
        "(0 turns it off; default lge=0.5,lvot=0.25)",
    )
    train.add_argument(
        "--measurement-weight",
        type=_non_negative,
        metavar="W",
        help="weight of regressing the sizes and fractions reports state from the study "
        "vector (0 turns it off; default 1)",
    )
    train.add_argument(
        "--unlocated-statements",
        action=argparse.BooleanOptionalAction,
        help="also train on regional statements without their territory and segments (default: on)",
    )
    train.add_argument(
        "--interpretation-statements",
        action=argparse.BooleanOptionalAction,
        help='also train on the interpretation that closes a statement ("..., '
        'non-ischaemic pattern"; default: on)',
    )
    train.add_argument(
        "--view-dropout",
        type=_fraction,
        metavar="P",
        help="chance that training hides each view of a study, one always kept (0 to 1; default 0)",
    )
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("evaluate", help="zero-shot, few-shot and retrieval metrics")
    evaluate.add_argument(
        "--labels",
        type=Path,
        action="append",
        required=True,
        help="labels.jsonl of the training and held-out archives (repeat)",
    )
    evaluate.add_argument("--model", type=Path, help="checkpoint (default: CMRSEARCH_MODEL)")
    evaluate.add_argument("--out", type=Path, help="write evaluation.json/.md and ROC plots")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="do not store the numbers on the model version",
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(handler=cmd_evaluate)

    embed = commands.add_parser("embed", help="embed studies with the model; update the index")
    embed.add_argument("--model", type=Path, help="checkpoint (default: CMRSEARCH_MODEL)")
    embed.add_argument("--json", action="store_true", help="print the result as JSON")
    embed.set_defaults(handler=cmd_embed)

    def query_options(p: argparse.ArgumentParser, k: int = 10) -> None:
        p.add_argument("--k", type=int, default=k, help=f"results (default {k})")
        p.add_argument("--model", type=Path, help="checkpoint (default: CMRSEARCH_MODEL)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    search = commands.add_parser("search", help="find studies matching a text")
    search.add_argument("text")
    query_options(search)
    search.add_argument("--offset", type=int, default=0, help="skip this many (pagination)")
    search.add_argument(
        "--view",
        default="study",
        help="search one view's vectors (e.g. lge, 4ch); default: whole study",
    )
    search.add_argument(
        "--filter",
        action="append",
        metavar="KEY=VALUE",
        help="date_from, date_to, manufacturer, institution, field_strength, "
        "sex, age_min, age_max, views, has_lge, patient",
    )
    search.set_defaults(handler=cmd_search)

    similar = commands.add_parser("similar", help="studies similar to a study")
    similar.add_argument("study_uid")
    query_options(similar)
    similar.add_argument(
        "--other-patients", action="store_true", help="leave out the query patient's other studies"
    )
    similar.set_defaults(handler=cmd_similar)

    classify = commands.add_parser("classify", help="zero-shot finding probabilities")
    classify.add_argument("study_uid")
    classify.add_argument("--model", type=Path, help="checkpoint (default: CMRSEARCH_MODEL)")
    classify.add_argument("--json", action="store_true", help="print the result as JSON")
    classify.set_defaults(handler=cmd_classify)

    cohort = commands.add_parser("cohort", help="a study list by text or findings, as CSV")
    cohort.add_argument("text", nargs="?")
    cohort.add_argument("--finding", action="append", help="vocabulary finding (repeat)")
    limit = cohort.add_mutually_exclusive_group()
    limit.add_argument("--min-score", type=float)
    limit.add_argument("--top", type=int)
    cohort.add_argument("--filter", action="append", metavar="KEY=VALUE")
    cohort.add_argument("--out", type=Path, required=True, help="CSV file to write")
    cohort.add_argument("--model", type=Path, help="checkpoint (default: CMRSEARCH_MODEL)")
    cohort.add_argument("--json", action="store_true", help="print the result as JSON")
    cohort.set_defaults(handler=cmd_cohort)

    serve = commands.add_parser("serve", help="start the web UI (Streamlit)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=8501)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "demo", help="phantom archive -> index -> train -> embed -> UI, reusing what exists"
    )
    demo.add_argument("--studies", type=int, default=200, help="phantom archive size")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs of the demo model")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--port", type=int, default=8501)
    demo.add_argument("--no-serve", action="store_true", help="stop before starting the UI")
    demo.set_defaults(handler=cmd_demo)

    user = commands.add_parser("user", help="UI accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add an account or change its password")
    add.add_argument("name")
    add.add_argument("--users", type=Path, help="users file (default: CMRSEARCH_USERS_FILE)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=cmd_user_add)

    status = commands.add_parser("status", help="what the archive holds")
    status.add_argument("--json", action="store_true", help="print the result as JSON")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("alembic", "faiss"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    handler: Handler = args.handler
    try:
        return handler(args, load_settings())
    except CmrSearchError as exc:
        print(f"cmrsearch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cmrsearch: interrupted", file=sys.stderr)
        return 130
