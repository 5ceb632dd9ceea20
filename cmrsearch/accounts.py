"""UI accounts: a users file of ``name:hash`` lines, passwords hashed with scrypt.

scrypt (RFC 7914) is in the standard library and memory-hard; the parameters follow
OWASP's recommended minimum (N=2**17, r=8, p=1). Hashes are compared in constant
time. The file holds no plain passwords and is written with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from pathlib import Path

from cmrsearch.errors import CmrSearchError

N, R, P = 2**17, 8, 1
MAX_MEMORY = 256 * 1024 * 1024  # scrypt needs 128 * N * r bytes = 128 MiB here
USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD = 10


class AccountError(CmrSearchError):
    """A users file or an account that cannot be used."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, maxmem=MAX_MEMORY)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=MAX_MEMORY,
        )
        expected = bytes.fromhex(digest)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, expected)


def read_users(path: Path) -> dict[str, str]:
    """name -> hash; a malformed line is an error naming the line, never a silent skip."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise AccountError(
            f"users file {path} does not exist; create an account with `cmrsearch user add NAME`"
        ) from None
    users = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not USER_NAME.fullmatch(name) or not stored.startswith("scrypt$"):
            raise AccountError(
                f"{path} line {number} is not `name:scrypt$...`; "
                "recreate it with `cmrsearch user add NAME`"
            )
        users[name] = stored
    return users


def add_user(path: Path, name: str, password: str) -> bool:
    """Add or replace an account; return True when it replaced one."""
    if not USER_NAME.fullmatch(name):
        raise AccountError(
            f"user name {name[:64]!r} is not allowed; use 1-64 letters, digits, . _ @ -"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short; use at least {MIN_PASSWORD} characters")
    users = read_users(path) if path.exists() else {}
    replaced = name in users
    users[name] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name_ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    tmp = Path(name_)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{user}:{stored}\n" for user, stored in sorted(users.items()))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return replaced


def authenticate(path: Path, name: str, password: str) -> bool:
    stored = read_users(path).get(name)
    if stored is None:
        # Same work for an unknown name, so timing does not reveal which names exist.
        verify_password(password, _DUMMY)
        return False
    return verify_password(password, stored)


_DUMMY = f"scrypt${N}${R}${P}${'00' * 16}${'00' * 64}"
