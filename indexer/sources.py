"""Discover the files to ingest: a folder, a list of files, or a zip archive.

Hidden entries and anything that is not a regular file are skipped; a symlink is
followed only when its target stays inside the root, so an archive cannot pull in
files from elsewhere on the machine.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from indexer.errors import IndexingError

MAX_ZIP_MEMBER = 2 * 1024**3  # refuse zip bombs: no single member above 2 GiB


@dataclass(frozen=True)
class Source:
    """One file to read: on disk, or a member of a zip archive."""

    key: str  # stable name for the catalog and errors: path relative to the root
    path: str  # absolute file path (the zip itself for members)
    member: str | None
    size: int
    mtime_ns: int

    def open(self) -> BinaryIO:
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as archive:
            return io.BytesIO(archive.read(self.member))


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX")


def _walk(root: Path) -> Iterator[Source]:
    real_root = root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for name in sorted(files):
            if _hidden(name):
                continue
            path = Path(folder) / name
            source = _file_source(path, real_root, root)
            if source is not None:
                yield source


def _file_source(path: Path, real_root: Path, root: Path) -> Source | None:
    try:
        target = path.resolve(strict=True)
        if path.is_symlink() and not target.is_relative_to(real_root):
            return None  # a link out of the archive
        st = target.stat()
    except OSError:
        return None
    if not target.is_file():
        return None
    key = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    return Source(key, str(target), None, st.st_size, st.st_mtime_ns)


def _zip_members(path: Path) -> Iterator[Source]:
    st = path.stat()
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IndexingError(
            f"{path.name} is not a readable zip archive; unpack it and index the folder instead"
        ) from None
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            parts = info.filename.split("/")
            if info.is_dir() or any(_hidden(p) for p in parts if p):
                continue
            if info.file_size > MAX_ZIP_MEMBER:
                continue
            yield Source(
                f"{path.name}/{info.filename}",
                str(path.resolve()),
                info.filename,
                info.file_size,
                st.st_mtime_ns,
            )


def discover(paths: list[Path]) -> list[Source]:
    """Every ingestible file under ``paths`` (folders, files, zip archives), in a stable order."""
    found: list[Source] = []
    for path in paths:
        if not path.exists():
            raise IndexingError(f"{path} does not exist; give a folder, a file or a zip archive")
        if path.is_dir():
            found.extend(_walk(path))
        elif zipfile.is_zipfile(path) and path.suffix.lower() == ".zip":
            found.extend(_zip_members(path))
        else:
            source = _file_source(path, path.parent.resolve(), path.parent)
            if source is not None:
                found.append(source)
    return found
