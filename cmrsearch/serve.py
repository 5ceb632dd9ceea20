"""`cmrsearch serve`: run the Streamlit app in this process's place."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from cmrsearch.errors import ConfigError
from cmrsearch.settings import Settings, environment_with

STREAMLIT_OPTIONS = {
    "server.headless": "true",
    "server.runOnSave": "false",
    "server.fileWatcherType": "none",
    "browser.gatherUsageStats": "false",
    # Tracebacks go to the server log only, never to the page.
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
    "global.developmentMode": "false",
}


def check_access(settings: Settings) -> None:
    if settings.open_access:
        return
    users = settings.resolved_users_file
    if not users.exists():
        raise ConfigError(
            f"no UI accounts ({users} does not exist): create one with `cmrsearch user add "
            "NAME`, or set CMRSEARCH_OPEN_ACCESS=true for a local demo on this machine only"
        )


def app_path() -> Path:
    spec = importlib.util.find_spec("ui")
    if spec is None or spec.origin is None:
        raise ConfigError("the `ui` package is not installed; reinstall cmr-search")
    return Path(spec.origin).parent / "app.py"


def exec_streamlit(host: str, port: int, **overrides: str) -> int:
    """Replace this process with Streamlit (signals then reach the server directly)."""
    argv = [sys.executable, "-m", "streamlit", "run", str(app_path())]
    options = {**STREAMLIT_OPTIONS, "server.address": host, "server.port": str(port)}
    argv += [f"--{key}={value}" for key, value in options.items()]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, environment_with(**overrides))
    return 0  # not reached
