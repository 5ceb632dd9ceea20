"""The one console script, ``cmrsearch``, with a subcommand per job.

``main(argv)`` runs in-process (tests call it directly). Results go to stdout
(one JSON document with ``--json``); logs and progress go to stderr. A
``CmrSearchError`` becomes a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from cmrsearch.errors import CmrSearchError
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
        logging.getLogger("alembic").setLevel(logging.WARNING)
    handler: Handler = args.handler
    try:
        return handler(args, load_settings())
    except CmrSearchError as exc:
        print(f"cmrsearch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cmrsearch: interrupted", file=sys.stderr)
        return 130
