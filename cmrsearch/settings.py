"""Service settings, read from the environment (prefix ``CMRSEARCH_``).

This is the only module that reads ``os.environ``; everything else receives a
``Settings`` object, so ``compose.yaml`` only has to set variables.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cmrsearch.errors import ConfigError

SECRET_FILE = "site-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CMRSEARCH_", extra="ignore")

    home: Path = Field(default=Path("var"), description="data root: clips, indexes, models")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under HOME"
    )
    model: Path | None = Field(default=None, description="active checkpoint directory")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    secret: SecretStr | None = Field(
        default=None,
        description="site key for pseudonymising patient identifiers; "
        "default: a random key kept in HOME/site-secret",
    )
    store_identifiers: bool = Field(
        default=False, description="keep real patient names/IDs in the catalog (off by default)"
    )
    users_file: Path | None = Field(
        default=None,
        description="UI accounts (`cmrsearch user add`); default: HOME/users when it exists",
    )
    open_access: bool = Field(
        default=False, description="UI without login, for a local demo only (off by default)"
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'catalog.sqlite').resolve()}"

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``: ``auto`` picks CUDA when torch sees a GPU."""
        if self.device != "auto":
            return self.device
        import torch  # only when asked: settings load without torch for most commands

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def resolved_users_file(self) -> Path:
        return self.users_file or self.home / "users"

    def ensure_home(self) -> Path:
        """Create HOME if needed and prove it is writable; return its absolute path."""
        home = self.home.expanduser().resolve()
        try:
            home.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"CMRSEARCH_HOME={home} is not a writable directory ({exc.strerror}); "
                "set CMRSEARCH_HOME to a directory this user can write"
            ) from None
        return home

    def site_secret(self) -> bytes:
        """The pseudonymisation key: CMRSEARCH_SECRET, else one generated once per HOME."""
        if self.secret is not None:
            value = self.secret.get_secret_value().encode()
            if len(value) < 16:
                raise ConfigError(
                    "CMRSEARCH_SECRET is shorter than 16 characters; set a longer random value"
                )
            return value
        path = self.ensure_home() / SECRET_FILE
        if not path.exists():
            # O_EXCL: two processes starting at once must not write different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
        value = path.read_text().strip().encode()
        if not value:
            raise ConfigError(f"{path} is empty; delete it or set CMRSEARCH_SECRET")
        return value


def environment_with(**overrides: str) -> dict[str, str]:
    """This process's environment plus CMRSEARCH_* overrides, for a child process."""
    env = dict(os.environ)
    env.update({f"CMRSEARCH_{key.upper()}": value for key, value in overrides.items()})
    return env


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:  # pydantic.ValidationError
        first = exc.errors()[0] if hasattr(exc, "errors") else None
        if first:
            name = "CMRSEARCH_" + str(first["loc"][0]).upper()
            raise ConfigError(f"{name} is invalid: {first['msg']}") from None
        raise ConfigError(f"invalid CMRSEARCH_* setting: {exc}") from None
