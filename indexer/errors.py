"""Indexer errors: a run-stopping one, and per-file rejections that the run records."""

from __future__ import annotations

from cmrsearch.errors import CmrSearchError


class IndexingError(CmrSearchError):
    """The run cannot proceed (bad PATH, unreadable reports file)."""


class IngestFailure(Exception):
    """One file or series is rejected; recorded in the catalog, the run goes on.

    ``error_type`` is one of ERROR_TYPES; the message never contains patient data.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)  # both in args: the failure pickles across processes
        self.error_type = error_type
        self.message = message

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


ERROR_TYPES = (
    "empty",
    "not_dicom",
    "truncated",
    "malformed",
    "missing_uid",
    "no_pixel_data",
    "unsupported_transfer_syntax",
    "unsupported_modality",
    "missing_geometry",
    "inconsistent_frames",
    "too_large",
    "decode_failed",
    "timeout",
    "crash",
)
