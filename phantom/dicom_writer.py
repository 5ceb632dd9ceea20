"""DICOM Part 10 writing in three vendors' dialects.

Single-frame MR Image Storage for most series, Enhanced MR Image Storage (one
multi-frame file per series) for some, RLE Lossless for some; geometry tags come
from the same planes the pixels were sampled on.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    PYDICOM_ROOT_UID,
    ExplicitVRLittleEndian,
    RLELossless,
)
from rle.utils import encode_pixel_data

from phantom.geometry import Plane

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
IMPLEMENTATION_NAME = "CMRSEARCH_PH"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"

# Series kinds: cine views, LGE, and non-cine extras an ingester must recognise.
KINDS = ("sax", "2ch", "3ch", "4ch", "lge_sax", "lge_lax", "localizer", "t1map")


@dataclass(frozen=True)
class Vendor:
    key: str
    manufacturer: str
    models: dict[float, tuple[str, ...]]
    descriptions: dict[str, tuple[str, ...]]
    sequence_names: dict[str, str]
    image_types: dict[str, tuple[str, ...]]
    enhanced_share: float = 0.0  # fraction of series written as Enhanced MR
    rescale_slope: float = 1.0


VENDORS: dict[str, Vendor] = {
    "siemens": Vendor(
        key="siemens",
        manufacturer="SIEMENS",
        models={1.5: ("Avanto", "Aera", "MAGNETOM Sola"), 3.0: ("Skyra", "Prisma", "Vida")},
        descriptions={
            "sax": ("tf2d15_retro_iPAT_sa", "cine_sax_tf2d", "TF2D_SAX_retro"),
            "2ch": ("tf2d15_retro_iPAT_2ch", "cine_2ch_tf2d"),
            "3ch": ("tf2d15_retro_iPAT_3ch", "cine_lvot_3ch"),
            "4ch": ("tf2d15_retro_iPAT_4ch", "cine_4ch_tf2d"),
            "lge_sax": ("tfl_psir_sa_TI300", "de_psir_sax_MAG"),
            "lge_lax": ("tfl_psir_4ch_TI300", "de_psir_4ch_MAG"),
            "localizer": ("localizer", "AAHScout_tfi"),
            "t1map": ("MOLLI_T1_MAP_SA", "MOLLI 5(3)3 T1 map"),
        },
        sequence_names={
            "cine": "*tfi2d1_15",
            "lge": "*tfl2d1r",
            "localizer": "*tfi2d1",
            "t1map": "*tfi2d1_T1",
        },
        image_types={
            "cine": ("ORIGINAL", "PRIMARY", "M", "RETRO", "DIS2D"),
            "lge": ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"),
            "localizer": ("ORIGINAL", "PRIMARY", "M", "NORM", "DIS2D"),
            "t1map": ("DERIVED", "PRIMARY", "MAP", "T1"),
        },
        enhanced_share=0.1,  # newer platforms write Enhanced MR
    ),
    "ge": Vendor(
        key="ge",
        manufacturer="GE MEDICAL SYSTEMS",
        models={
            1.5: ("SIGNA HDxt", "SIGNA Artist", "Optima MR450w"),
            3.0: ("Discovery MR750", "SIGNA Premier"),
        },
        descriptions={
            "sax": ("FIESTA CINE SAX", "SAX FIESTA CINE", "fiesta cine sa"),
            "2ch": ("FIESTA CINE 2CH", "2CH FIESTA"),
            "3ch": ("FIESTA CINE LVOT", "3CH LVOT FIESTA"),
            "4ch": ("FIESTA CINE 4CH", "4 CH FIESTA"),
            "lge_sax": ("MDE SAX", "PSIR MDE SA"),
            "lge_lax": ("MDE 4CH", "PSIR MDE 4CH"),
            "localizer": ("3-Plane Loc", "SCOUT"),
            "t1map": ("T1 MAP SMART1", "SMART1MAP SAX"),
        },
        sequence_names={
            "cine": "fiestacine",
            "lge": "fgre2d_ir_psir",
            "localizer": "fiesta",
            "t1map": "smartt1",
        },
        image_types={
            "cine": ("ORIGINAL", "PRIMARY", "OTHER"),
            "lge": ("ORIGINAL", "PRIMARY", "OTHER"),
            "localizer": ("ORIGINAL", "PRIMARY", "LOCALIZER"),
            "t1map": ("DERIVED", "PRIMARY", "T1 MAP"),
        },
    ),
    "philips": Vendor(
        key="philips",
        manufacturer="Philips Medical Systems",
        models={1.5: ("Ingenia", "Achieva"), 3.0: ("Ingenia Elition X", "Achieva dStream")},
        descriptions={
            "sax": ("sBTFE_BH SA", "BTFE_BH_SA_MS", "cine_SA"),
            "2ch": ("sBTFE_BH 2ch", "cine_2CH"),
            "3ch": ("sBTFE_BH LVOT", "cine_3CH"),
            "4ch": ("sBTFE_BH 4ch", "cine_4CH"),
            "lge_sax": ("PSIR_TFE SA", "LGE_SA_PSIR"),
            "lge_lax": ("PSIR_TFE 4CH", "LGE_4CH_PSIR"),
            "localizer": ("Survey", "SmartSurvey"),
            "t1map": ("T1MAP_MOLLI", "MOLLI_T1map SA"),
        },
        sequence_names={"cine": "B-TFE", "lge": "IR-TFE", "localizer": "B-TFE", "t1map": "MOLLI"},
        image_types={
            "cine": ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
            "lge": ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
            "localizer": ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
            "t1map": ("DERIVED", "PRIMARY", "T1 MAP", "T1"),
        },
        enhanced_share=0.6,
        rescale_slope=1.46,
    ),
}
# Descriptions that say nothing about the view: the ingester must use geometry.
UNINFORMATIVE = ("BH CINE", "cine_retro", "CINE", "SSFP BH", "")


@dataclass(frozen=True)
class StudyHeader:
    """Patient and study attributes shared by every file of one study."""

    patient_name: str
    patient_id: str
    birth_date: date
    sex: str
    age: int
    weight_kg: float
    height_m: float
    study_uid: str
    frame_of_reference_uid: str
    accession: str
    study_date: date
    study_time: time
    institution: str
    vendor: Vendor
    model: str
    field_strength: float
    heart_rate: int


@dataclass
class SeriesSpec:
    kind: str
    number: int
    description: str
    planes: list[Plane]  # one per slice
    pixels: NDArray[np.uint16]  # (slices, phases, rows, cols)
    trigger_ms: list[float]  # per phase
    inversion_time: float | None = None
    enhanced: bool = False
    rle: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _contrast_of(kind: str) -> str:
    if kind.startswith("lge"):
        return "lge"
    return kind if kind in ("localizer", "t1map") else "cine"


def _ds(value: float) -> str:
    return f"{value:.10g}"  # DS holds 16 characters at most


# A data set to encode: keyword -> value; a sequence is a list of such items.
Item = dict[str, Any]
Chunk = bytes | memoryview  # a piece of a file


def _common(header: StudyHeader, spec: SeriesSpec, series_uid: str, when: datetime) -> Item:
    v = header.vendor
    contrast = _contrast_of(spec.kind)
    plane = spec.planes[0]
    day = header.study_date.strftime("%Y%m%d")
    clock = when.strftime("%H%M%S")
    bits = 12 if contrast != "t1map" else 16
    ds: Item = {
        "SpecificCharacterSet": "ISO_IR 100",
        "ImageType": list(v.image_types[contrast]),
        "StudyDate": day,
        "SeriesDate": day,
        "ContentDate": day,
        "StudyTime": header.study_time.strftime("%H%M%S"),
        "SeriesTime": clock,
        "ContentTime": clock,
        "AccessionNumber": header.accession,
        "Modality": "MR",
        "Manufacturer": v.manufacturer,
        "InstitutionName": header.institution,
        "StudyDescription": "MR HEART W/WO CONTRAST",
        "SeriesDescription": spec.description,
        "ManufacturerModelName": header.model,
        "PatientName": header.patient_name,
        "PatientID": header.patient_id,
        "PatientBirthDate": header.birth_date.strftime("%Y%m%d"),
        "PatientSex": header.sex,
        "PatientAge": f"{header.age:03d}Y",
        "PatientSize": _ds(header.height_m),
        "PatientWeight": _ds(header.weight_kg),
        "BodyPartExamined": "HEART",
        "ScanningSequence": "GR" if contrast != "lge" else ["GR", "IR"],
        "SequenceVariant": ["SK", "SS"] if contrast != "lge" else ["SK", "SP", "MP"],
        "SequenceName": v.sequence_names[contrast],
        "MRAcquisitionType": "2D",
        "SliceThickness": _ds(plane.thickness),
        "RepetitionTime": _ds(3.0 if contrast != "lge" else 700.0),
        "EchoTime": _ds(1.3 if contrast != "lge" else 3.2),
        "MagneticFieldStrength": _ds(header.field_strength),
        "ImagingFrequency": _ds(42.577478 * header.field_strength),
        "FlipAngle": _ds(50.0 if contrast == "cine" else 25.0),
        "HeartRate": header.heart_rate,
        "NominalInterval": round(60000.0 / header.heart_rate),
        "CardiacNumberOfImages": len(spec.trigger_ms),
        "PatientPosition": "HFS",
        "StudyInstanceUID": header.study_uid,
        "SeriesInstanceUID": series_uid,
        "StudyID": "1",
        "SeriesNumber": spec.number,
        "AcquisitionNumber": 1,
        "FrameOfReferenceUID": header.frame_of_reference_uid,
        "PositionReferenceIndicator": "",
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "Rows": plane.rows,
        "Columns": plane.cols,
        "BitsAllocated": 16,
        "BitsStored": bits,
        "HighBit": bits - 1,
        "PixelRepresentation": 0,
    }
    if len(spec.planes) > 1:
        gap = float(np.linalg.norm(spec.planes[1].position - spec.planes[0].position))
        ds["SpacingBetweenSlices"] = _ds(gap)
    if spec.inversion_time is not None:
        ds["InversionTime"] = _ds(spec.inversion_time)
    return ds


def _stored(pixels: NDArray[np.uint16], slope: float) -> NDArray[np.uint16]:
    if slope == 1.0:
        return pixels
    return np.rint(pixels / slope).astype(np.uint16)


def _uid(*sources: str) -> str:
    """pydicom's generate_uid(entropy_srcs=sources) (same value), without its checks."""
    digest = hashlib.sha512("".join(sources).encode()).hexdigest()
    return PYDICOM_ROOT_UID + str(int(digest, 16))[: 64 - len(PYDICOM_ROOT_UID)]


def write_series(
    header: StudyHeader, spec: SeriesSpec, folder: Path, uid_root: str, when: datetime
) -> int:
    """Write one series into ``folder``; return the number of files written."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = _uid(uid_root, "series", str(spec.number))
    slope = header.vendor.rescale_slope if spec.kind != "t1map" else 1.0
    ds = _common(header, spec, series_uid, when)
    stored = _stored(spec.pixels, slope)
    if spec.enhanced:
        _write_enhanced(ds, spec, stored, slope, folder, uid_root)
        return 1
    return _write_single_frames(ds, spec, stored, slope, folder, uid_root)


# ---- single-frame series ----------------------------------------------------------------
# Elements that differ between the files of a series, in ascending tag order; everything
# else is encoded once per series, and each file is spliced from the pieces.
VARYING = (
    "SOPInstanceUID",
    "TriggerTime",
    "InstanceNumber",
    "ImagePositionPatient",
    "SliceLocation",
)
PREAMBLE = b"\0" * 128 + b"DICM"


def _write_single_frames(
    ds: Item,
    spec: SeriesSpec,
    stored: NDArray[np.uint16],
    slope: float,
    folder: Path,
    uid_root: str,
) -> int:
    ds = {
        **ds,
        "SOPClassUID": MR_IMAGE,
        "RescaleIntercept": "0",
        "RescaleSlope": _ds(slope),
        "RescaleType": "US",
        "PixelSpacing": [_ds(x) for x in spec.planes[0].spacing],
        "ImageOrientationPatient": [_ds(x) for x in spec.planes[0].orientation],
    }
    chunks = _chunks(ds)
    syntax = RLELossless if spec.rle else ExplicitVRLittleEndian
    triggers = [_encode_element("TriggerTime", _ds(t)) for t in spec.trigger_ms]
    number = 0
    for k, plane in enumerate(spec.planes):
        position = _encode_element("ImagePositionPatient", [_ds(float(x)) for x in plane.position])
        location = _encode_element("SliceLocation", _ds(float(plane.position @ plane.normal)))
        for t, trigger in enumerate(triggers):
            number += 1
            sop_uid = _uid(uid_root, str(spec.number), str(number))
            sop = _encode_element("SOPInstanceUID", sop_uid)
            instance = _encode_element("InstanceNumber", number)
            parts: list[Chunk] = [PREAMBLE, _meta_bytes(MR_IMAGE, sop_uid, syntax)]
            for chunk, element in zip(
                chunks[:-1], (sop, trigger, instance, position, location), strict=True
            ):
                parts += (chunk, element)
            parts.append(chunks[-1])
            parts += _rle_pixels([stored[k, t]]) if spec.rle else _native_pixels(stored[k, t])
            _write_file(folder / f"IM{number:05d}.dcm", parts)
    return number


def _chunks(ds: Item) -> list[bytes]:
    """The constant elements encoded in len(VARYING) + 1 runs: before each varying
    element, and after the last one (up to the pixel data)."""
    bounds = [_tag_vr(key)[0] for key in VARYING]
    runs: list[Item] = [{} for _ in range(len(bounds) + 1)]
    for key, value in ds.items():
        runs[bisect.bisect(bounds, _tag_vr(key)[0])][key] = value
    return [_encode(run) for run in runs]


# ---- enhanced MR: one multi-frame file per series ----------------------------------------
def _write_enhanced(
    ds: Item,
    spec: SeriesSpec,
    stored: NDArray[np.uint16],
    slope: float,
    folder: Path,
    uid_root: str,
) -> None:
    slices, phases, rows, cols = stored.shape
    sop_uid = _uid(uid_root, str(spec.number), "enhanced")
    measures: Item = {
        "PixelSpacing": [_ds(x) for x in spec.planes[0].spacing],
        "SliceThickness": ds["SliceThickness"],
    }
    if "SpacingBetweenSlices" in ds:
        measures["SpacingBetweenSlices"] = ds["SpacingBetweenSlices"]
    shared: Item = {
        "PixelMeasuresSequence": [measures],
        "PlaneOrientationSequence": [
            {"ImageOrientationPatient": [_ds(x) for x in spec.planes[0].orientation]}
        ],
        "PixelValueTransformationSequence": [
            {"RescaleIntercept": "0", "RescaleSlope": _ds(slope), "RescaleType": "US"}
        ],
    }
    ds = {
        **ds,
        "SOPClassUID": ENHANCED_MR_IMAGE,
        "SOPInstanceUID": sop_uid,
        "InstanceNumber": 1,
        "ImageType": [*ds["ImageType"][:2], "M", "NONE"],
        "NumberOfFrames": slices * phases,
        "ContentQualification": "PRODUCT",
        "AcquisitionContrast": "MIXED",
        "PixelPresentation": "MONOCHROME",
        "VolumetricProperties": "VOLUME",
        "VolumeBasedCalculationTechnique": "NONE",
        "ComplexImageComponent": "MAGNITUDE",
        "SharedFunctionalGroupsSequence": [shared],
        "PerFrameFunctionalGroupsSequence": _frame_items(spec, phases),  # encoded items
    }
    frames = stored.reshape(slices * phases, rows, cols)
    syntax = RLELossless if spec.rle else ExplicitVRLittleEndian
    parts: list[Chunk] = [PREAMBLE, _meta_bytes(ENHANCED_MR_IMAGE, sop_uid, syntax), _encode(ds)]
    parts += _rle_pixels(list(frames)) if spec.rle else _native_pixels(frames)
    _write_file(folder / "IM00001.dcm", parts)


def _frame_items(spec: SeriesSpec, phases: int) -> bytes:
    """Per-frame functional groups, slice-major: position, frame content, trigger."""
    triggers = [
        _encode({"NominalCardiacTriggerDelayTime": float(t)}) for t in spec.trigger_ms[:phases]
    ]
    sync = [_encode_element("CardiacSynchronizationSequence", _item(t)) for t in triggers]
    out = []
    for k, plane in enumerate(spec.planes):
        position = _encode(
            {
                "PlanePositionSequence": [
                    {"ImagePositionPatient": [_ds(float(x)) for x in plane.position]}
                ]
            }
        )
        for t in range(phases):
            # Items hold their elements in tag order: position (0020,9113) sorts after
            # cardiac synchronisation (0018,9118) and frame content (0020,9111).
            out.append(_item(sync[t] + _frame_content(k + 1, t + 1) + position))
    return b"".join(out)


def _frame_content(stack_position: int, temporal: int) -> bytes:
    """FrameContentSequence with one item, packed directly: it is encoded once per frame
    (hundreds per file), and the generic encoder costs ~15x more."""
    body = _encode_element("StackID", "1") + _FRAME_INDICES.pack(
        *(0x0020, 0x9057, b"UL", 4, stack_position),  # InStackPositionNumber
        *(0x0020, 0x9128, b"UL", 4, temporal),  # TemporalPositionIndex
        *(0x0020, 0x9157, b"UL", 8, stack_position, temporal),  # DimensionIndexValues
    )
    return _header(_FRAME_CONTENT, "SQ", len(body) + 8) + _item(body)


_FRAME_INDICES = struct.Struct("<HH2sHI HH2sHI HH2sHII")
_FRAME_CONTENT = 0x00209111


# ---- pixel data -------------------------------------------------------------------------
def _native_pixels(pixels: NDArray[np.uint16]) -> list[Chunk]:
    data = np.ascontiguousarray(pixels, dtype="<u2")
    return [_header(0x7FE00010, "OW", data.nbytes), data.data.cast("B")]  # no copy


def _rle_pixels(frames: list[NDArray[np.uint16]]) -> list[Chunk]:
    """Encapsulated RLE Lossless pixel data (PS3.5 A.4): undefined length, a basic offset
    table, one fragment per frame, a sequence delimiter."""
    rows, cols = frames[0].shape
    encoded = []
    for frame in frames:
        data = encode_pixel_data(
            np.ascontiguousarray(frame, dtype="<u2").tobytes(),
            rows=rows,
            columns=cols,
            samples_per_pixel=1,
            bits_allocated=16,
            byteorder="<",
        )
        encoded.append(data + b"\0" * (len(data) % 2))
    offsets = np.cumsum([0] + [8 + len(f) for f in encoded[:-1]]).astype("<u4").tobytes()
    parts: list[Chunk] = [
        struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF),
        _item(offsets),
    ]
    for data in encoded:
        parts.append(_item(data))
    parts.append(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    return parts


# ---- explicit VR little endian encoding -------------------------------------------------
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
PACKED = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


@functools.cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    tag = keyword_dict[keyword]
    vr = dictionary_VR(tag)
    return tag, {"US or SS": "US", "OB or OW": "OW"}.get(vr, vr)


def _encode(ds: Item) -> bytes:
    """A data set's elements in ascending tag order (PS3.5 7.1)."""
    return b"".join(_encode_element(key, ds[key]) for key in sorted(ds, key=_tag_key))


def _tag_key(keyword: str) -> int:
    return _tag_vr(keyword)[0]


def _encode_element(keyword: str, value: Any) -> bytes:
    tag, vr = _tag_vr(keyword)
    data = _value_bytes(vr, value)
    if len(data) % 2:  # values have even length: UI pads with NUL, text with a space
        data += b"\0" if vr in ("UI", "OB") else b" "
    return _header(tag, vr, len(data)) + data


def _value_bytes(vr: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if vr == "SQ":
        return b"".join(_item(_encode(item)) for item in value)
    values = value if isinstance(value, list | tuple) else [value]
    if vr in PACKED:
        return struct.pack(f"<{len(values)}{PACKED[vr]}", *values)
    return "\\".join(str(x) for x in values).encode("latin-1")  # ISO_IR 100


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _item(body: bytes) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def _meta_bytes(sop_class: str, sop_uid: str, syntax: str) -> bytes:
    """File meta information group (0002), always explicit VR little endian."""
    before, after = _meta_parts(sop_class, syntax)
    instance = _encode_element("MediaStorageSOPInstanceUID", sop_uid)
    length = len(before) + len(instance) + len(after)
    return _encode_element("FileMetaInformationGroupLength", length) + before + instance + after


@functools.cache
def _meta_parts(sop_class: str, syntax: str) -> tuple[bytes, bytes]:
    """The meta elements before and after the instance UID, the same for a whole series."""
    before = _encode(
        {"FileMetaInformationVersion": b"\x00\x01", "MediaStorageSOPClassUID": sop_class}
    )
    after = _encode(
        {
            "TransferSyntaxUID": syntax,
            "ImplementationClassUID": PYDICOM_IMPLEMENTATION_UID,
            "ImplementationVersionName": IMPLEMENTATION_NAME,
        }
    )
    return before, after


def _write_file(path: Path, parts: list[Chunk]) -> None:
    """One unbuffered write: the io layer behind Path.write_bytes costs a third more per
    file, and a series holds hundreds of small files."""
    view = memoryview(b"".join(parts))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def series_times(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=3 * i + 1) for i in range(count)]
