"""Reader stage: one DICOM file's header, validated, as an ``Instance``.

Pixel data is not decoded here. It is deferred (``defer_size``) rather than cut
off with ``stop_before_pixels`` so that its presence and declared length can be
checked against the file: a truncated file is caught before any decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pydicom
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID

from indexer.errors import IngestFailure
from indexer.sources import Source

# Scanner files often break VR rules (UID components with leading zeros, say); reading
# is lenient and silent about it, what matters is checked below.
config.settings.reading_validation_mode = config.IGNORE

MAX_PIXELS = 4096 * 4096  # per frame
MAX_FRAMES = 5000  # per file
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
MAGIC = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a ZIP archive",
    b"%PDF": "a PDF document",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
}


@dataclass(frozen=True)
class Frame:
    """One 2-D image inside a file (index 0 for single-frame files)."""

    source: str
    index: int
    position: tuple[float, float, float]
    trigger_ms: float | None
    instance: int


@dataclass
class Instance:
    source: Source
    study_uid: str
    series_uid: str
    sop_uid: str
    patient_key: str  # patient ID, else name: pseudonymised before it reaches the catalog
    accession: str | None
    study_date: date | None
    study_description: str | None
    institution: str | None
    manufacturer: str | None
    model: str | None
    field_strength: float | None
    age: int | None
    sex: str | None
    series_number: int | None
    series_description: str
    image_type: tuple[str, ...]
    sequence_name: str
    inversion_time: float | None
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    slice_thickness: float | None
    rows: int
    columns: int
    transfer_syntax: str
    cardiac_images: int | None
    nominal_interval: float | None
    frames: list[Frame] = field(default_factory=list)


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no number


def _date(value: Any) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None  # e.g. the anonymised "20120000"


def _age(ds: Dataset) -> int | None:
    text = str(ds.get("PatientAge", "") or "").strip().upper()
    if len(text) == 4 and text[:3].isdigit():
        years = {"Y": 1, "M": 1 / 12, "W": 1 / 52, "D": 1 / 365}.get(text[3])
        return int(int(text[:3]) * years) if years else None
    return None


def _sniff(head: bytes) -> None:
    if not head:
        raise IngestFailure("empty", "the file is empty (0 bytes)")
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            raise IngestFailure("not_dicom", f"the file is {what}, not DICOM")


def _parse(source: Source) -> Dataset:
    try:
        with source.open() as fh:
            _sniff(fh.read(132))
            fh.seek(0)
            return pydicom.dcmread(fh, defer_size="2 KB")
    except InvalidDicomError:
        raise IngestFailure(
            "not_dicom", "no DICOM preamble/prefix and no DICOM header; not a DICOM file"
        ) from None
    except (EOFError, struct.error, BytesLengthException):
        raise IngestFailure("truncated", "the file ends inside the DICOM header") from None
    except RecursionError:
        raise IngestFailure("malformed", "sequences nested too deeply to parse") from None
    except (ValueError, TypeError, KeyError, OSError, NotImplementedError) as exc:
        raise IngestFailure(
            "malformed", f"unreadable DICOM header ({type(exc).__name__})"
        ) from None


def _check_pixels(ds: Dataset, source: Source, frames: int) -> str:
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    if "PixelData" not in ds:
        raise IngestFailure("no_pixel_data", "the file has no Pixel Data element")
    element = ds.get_item("PixelData", keep_deferred=True)
    length = getattr(element, "length", None)
    offset = getattr(element, "value_tell", None)
    deflated = syntax == "1.2.840.10008.1.2.1.99"  # offsets refer to the inflated stream
    if length is not None and offset is not None and length != 0xFFFFFFFF and not deflated:
        if offset + length > source.size:
            raise IngestFailure(
                "truncated",
                f"Pixel Data declares {length} bytes but the file "
                f"ends {offset + length - source.size} bytes early",
            )
        if syntax in NATIVE:
            expected = (
                int(ds.Rows)
                * int(ds.Columns)
                * int(ds.get("SamplesPerPixel", 1))
                * frames
                * int(ds.get("BitsAllocated", 16))
                // 8
            )
            if length < expected:
                raise IngestFailure(
                    "truncated",
                    f"Pixel Data holds {length} bytes, {expected} expected for the image size",
                )
    if syntax in NATIVE:
        return syntax
    try:
        decoder = get_decoder(UID(syntax))
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies) if decoder else "no known decoder"
        raise IngestFailure(
            "unsupported_transfer_syntax",
            f"transfer syntax {UID(syntax).name} cannot be decoded here (install: {needs})",
        )
    return syntax


def _geometry(ds: Dataset) -> tuple[tuple[float, ...], tuple[float, float], float | None]:
    """Orientation, pixel spacing, thickness: top level or the enhanced shared groups."""
    holders = [ds]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        item = shared[0]
        for seq in ("PlaneOrientationSequence", "PixelMeasuresSequence"):
            if seq in item:
                holders.append(item[seq][0])
    orientation = spacing = thickness = None
    for holder in holders:
        orientation = orientation or holder.get("ImageOrientationPatient")
        spacing = spacing or holder.get("PixelSpacing")
        thickness = thickness or holder.get("SliceThickness")
    if not orientation or len(orientation) != 6 or not spacing or len(spacing) != 2:
        raise IngestFailure(
            "missing_geometry",
            "no ImageOrientationPatient/PixelSpacing: the image cannot be placed in the patient",
        )
    values = tuple(float(x) for x in orientation)
    return values, (float(spacing[0]), float(spacing[1])), _number(thickness)


def _frames(ds: Dataset, source: Source, count: int) -> list[Frame]:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    instance = int(_number(ds.get("InstanceNumber")) or 0)
    if "NumberOfFrames" in ds and per_frame is not None and len(per_frame) > 0:
        if len(per_frame) != count:
            raise IngestFailure(
                "inconsistent_frames", f"{len(per_frame)} per-frame groups for {count} frames"
            )
        out = []
        for index, item in enumerate(per_frame):
            try:
                position = item.PlanePositionSequence[0].ImagePositionPatient
            except (AttributeError, IndexError):
                raise IngestFailure(
                    "missing_geometry", f"frame {index + 1} has no ImagePositionPatient"
                ) from None
            trigger = None
            if "CardiacSynchronizationSequence" in item:
                trigger = _number(
                    item.CardiacSynchronizationSequence[0].get("NominalCardiacTriggerDelayTime")
                )
            out.append(
                Frame(
                    source.key,
                    index,
                    tuple(float(x) for x in position),  # type: ignore[arg-type]
                    trigger,
                    instance,
                )
            )
        return out
    position = ds.get("ImagePositionPatient")
    if not position or len(position) != 3:
        raise IngestFailure("missing_geometry", "no ImagePositionPatient")
    trigger = _number(ds.get("TriggerTime"))
    base = tuple(float(x) for x in position)
    return [Frame(source.key, i, base, trigger, instance) for i in range(count)]  # type: ignore[arg-type]


def read_instance(source: Source) -> Instance:
    """Parse and validate one file's header; raise ``IngestFailure`` when it is unusable."""
    ds = _parse(source)
    try:
        return _instance(ds, source)
    except (ValueError, TypeError, BytesLengthException, EOFError, struct.error) as exc:
        # pydicom converts values lazily: a corrupt value surfaces only when read.
        raise IngestFailure(
            "malformed", f"an element value cannot be read ({type(exc).__name__})"
        ) from None


def _instance(ds: Dataset, source: Source) -> Instance:
    try:
        study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        sop_uid = str(ds.SOPInstanceUID)
    except AttributeError:
        raise IngestFailure("missing_uid", "Study/Series/SOP Instance UID missing") from None
    modality = str(ds.get("Modality", "")).upper()
    if modality and modality != "MR":
        raise IngestFailure("unsupported_modality", f"modality {modality}; only MR is indexed")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    count = int(_number(ds.get("NumberOfFrames")) or 1)
    if rows * columns == 0:
        raise IngestFailure("no_pixel_data", "Rows/Columns missing or zero")
    if rows * columns > MAX_PIXELS or count > MAX_FRAMES:
        raise IngestFailure(
            "too_large",
            f"{rows}x{columns}x{count} is above the limit "
            f"({MAX_PIXELS} pixels per frame, {MAX_FRAMES} frames)",
        )
    syntax = _check_pixels(ds, source, count)
    orientation, spacing, thickness = _geometry(ds)
    frames = _frames(ds, source, count)
    patient = _text(ds, "PatientID") or _text(ds, "PatientName") or f"unknown:{study_uid}"
    return Instance(
        source=source,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        patient_key=patient,
        accession=_text(ds, "AccessionNumber"),
        study_date=_date(ds.get("StudyDate")),
        study_description=_text(ds, "StudyDescription"),
        institution=_text(ds, "InstitutionName"),
        manufacturer=_text(ds, "Manufacturer"),
        model=_text(ds, "ManufacturerModelName"),
        field_strength=_number(ds.get("MagneticFieldStrength")),
        age=_age(ds),
        sex=(_text(ds, "PatientSex") or "").upper()[:1] or None,
        series_number=int(_number(ds.get("SeriesNumber")) or 0) or None,
        series_description=_text(ds, "SeriesDescription") or "",
        image_type=tuple(str(x).upper() for x in (ds.get("ImageType") or ())),
        sequence_name=_text(ds, "SequenceName") or "",
        inversion_time=_number(ds.get("InversionTime")),
        orientation=orientation,
        pixel_spacing=spacing,
        slice_thickness=thickness,
        rows=rows,
        columns=columns,
        transfer_syntax=syntax,
        cardiac_images=int(_number(ds.get("CardiacNumberOfImages")) or 0) or None,
        nominal_interval=_number(ds.get("NominalInterval")),
        frames=frames,
    )
