"""Settings from CMRSEARCH_* variables, the site secret and pseudonyms."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cmrsearch.errors import ConfigError
from cmrsearch.privacy import pseudonymise
from cmrsearch.settings import Settings, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in ("HOME", "DATABASE_URL", "MODEL", "DEVICE", "SECRET", "STORE_IDENTIFIERS"):
        monkeypatch.delenv(f"CMRSEARCH_{key}", raising=False)
    return tmp_path


def test_defaults_put_everything_under_var(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.home == Path("var")
    assert settings.device == "auto"
    assert settings.model is None
    assert not settings.store_identifiers
    expected = clean_env.resolve() / "var" / "catalog.sqlite"
    assert settings.resolved_database_url == f"sqlite:///{expected}"


def test_environment_overrides(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMRSEARCH_HOME", "/data/cmr")
    monkeypatch.setenv("CMRSEARCH_DATABASE_URL", "postgresql://db/cmr")
    monkeypatch.setenv("CMRSEARCH_MODEL", "/models/demo")
    monkeypatch.setenv("CMRSEARCH_DEVICE", "cuda")
    settings = load_settings()
    assert settings.home == Path("/data/cmr")
    assert settings.resolved_database_url == "postgresql://db/cmr"
    assert settings.model == Path("/models/demo")
    assert settings.device == "cuda"


def test_generated_site_secret_is_private_and_stable(clean_env: Path) -> None:
    settings = Settings(home=clean_env / "home")
    first = settings.site_secret()
    assert len(first) >= 32
    assert settings.site_secret() == first
    mode = stat.S_IMODE((clean_env / "home" / "site-secret").stat().st_mode)
    assert mode == 0o600


def test_configured_secret_wins_and_must_be_long(clean_env: Path) -> None:
    assert Settings(home=clean_env, secret="x" * 20).site_secret() == b"x" * 20
    assert not (clean_env / "site-secret").exists()
    with pytest.raises(ConfigError, match="CMRSEARCH_SECRET"):
        Settings(home=clean_env, secret="short").site_secret()


def test_pseudonyms_are_keyed_stable_and_hide_the_identifier() -> None:
    a = pseudonymise("MRN-0042", b"k" * 32)
    assert a == pseudonymise(" MRN-0042 ", b"k" * 32)
    assert a != pseudonymise("MRN-0042", b"j" * 32)
    assert a != pseudonymise("MRN-0043", b"k" * 32)
    assert "0042" not in a and len(a) == 16
