"""DICOM Part 10 writing in three vendors' dialects.

Single-frame MR Image Storage for most series, Enhanced MR Image Storage (one
multi-frame file per series) for some, RLE Lossless for some; geometry tags come
from the same planes the pixels were sampled on.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydicom.datadict import keyword_dict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

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


def _common(header: StudyHeader, spec: SeriesSpec, series_uid: str, when: datetime) -> Dataset:
    v = header.vendor
    contrast = _contrast_of(spec.kind)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(v.image_types[contrast])
    ds.StudyDate = header.study_date.strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.ContentDate = ds.StudyDate
    ds.StudyTime = header.study_time.strftime("%H%M%S")
    ds.SeriesTime = when.strftime("%H%M%S")
    ds.ContentTime = ds.SeriesTime
    ds.AccessionNumber = header.accession
    ds.Modality = "MR"
    ds.Manufacturer = v.manufacturer
    ds.InstitutionName = header.institution
    ds.StudyDescription = "MR HEART W/WO CONTRAST"
    ds.SeriesDescription = spec.description
    ds.ManufacturerModelName = header.model
    ds.PatientName = header.patient_name
    ds.PatientID = header.patient_id
    ds.PatientBirthDate = header.birth_date.strftime("%Y%m%d")
    ds.PatientSex = header.sex
    ds.PatientAge = f"{header.age:03d}Y"
    ds.PatientSize = _ds(header.height_m)
    ds.PatientWeight = _ds(header.weight_kg)
    ds.BodyPartExamined = "HEART"
    ds.ScanningSequence = "GR" if contrast != "lge" else ["GR", "IR"]
    ds.SequenceVariant = ["SK", "SS"] if contrast != "lge" else ["SK", "SP", "MP"]
    ds.SequenceName = v.sequence_names[contrast]
    ds.MRAcquisitionType = "2D"
    plane = spec.planes[0]
    ds.SliceThickness = _ds(plane.thickness)
    if len(spec.planes) > 1:
        gap = float(np.linalg.norm(spec.planes[1].position - spec.planes[0].position))
        ds.SpacingBetweenSlices = _ds(gap)
    ds.RepetitionTime = _ds(3.0 if contrast != "lge" else 700.0)
    ds.EchoTime = _ds(1.3 if contrast != "lge" else 3.2)
    ds.MagneticFieldStrength = _ds(header.field_strength)
    ds.ImagingFrequency = _ds(42.577478 * header.field_strength)
    ds.FlipAngle = _ds(50.0 if contrast == "cine" else 25.0)
    ds.HeartRate = header.heart_rate
    rr = 60000.0 / header.heart_rate
    ds.NominalInterval = round(rr)
    ds.CardiacNumberOfImages = len(spec.trigger_ms)
    if spec.inversion_time is not None:
        ds.InversionTime = _ds(spec.inversion_time)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = header.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = spec.number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = header.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = plane.rows
    ds.Columns = plane.cols
    ds.BitsAllocated = 16
    ds.BitsStored = 12 if contrast != "t1map" else 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    return ds


def _file_meta(sop_class: str, sop_uid: str, syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_NAME
    return meta


def _stored(pixels: NDArray[np.uint16], slope: float) -> NDArray[np.uint16]:
    if slope == 1.0:
        return pixels
    return np.rint(pixels / slope).astype(np.uint16)


def write_series(
    header: StudyHeader, spec: SeriesSpec, folder: Path, uid_root: str, when: datetime
) -> int:
    """Write one series into ``folder``; return the number of files written."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(entropy_srcs=[uid_root, "series", str(spec.number)])
    slope = header.vendor.rescale_slope if spec.kind != "t1map" else 1.0
    ds = _common(header, spec, series_uid, when)
    stored = _stored(spec.pixels, slope)
    if spec.enhanced:
        _write_enhanced(ds, spec, stored, slope, folder, uid_root)
        return 1
    ds.SOPClassUID = MR_IMAGE
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = _ds(slope)
    ds.RescaleType = "US"
    ds.PixelSpacing = [_ds(x) for x in spec.planes[0].spacing]
    ds.ImageOrientationPatient = [_ds(x) for x in spec.planes[0].orientation]
    _slices, phases = stored.shape[:2]
    writer = None if spec.rle else _TemplateWriter(ds)
    number = 0
    for k, plane in enumerate(spec.planes):
        position = [_ds(float(x)) for x in plane.position]
        location = _ds(float(plane.position @ plane.normal))
        for t in range(phases):
            number += 1
            sop_uid = generate_uid(entropy_srcs=[uid_root, str(spec.number), str(number)])
            path = folder / f"IM{number:05d}.dcm"
            varying = {
                "SOPInstanceUID": sop_uid,
                "TriggerTime": _ds(spec.trigger_ms[t]),
                "InstanceNumber": number,
                "ImagePositionPatient": position,
                "SliceLocation": location,
            }
            if writer is not None:
                writer.write(path, sop_uid, varying, stored[k, t])
                continue
            for key, value in varying.items():
                setattr(ds, key, value)
            ds.file_meta = _file_meta(MR_IMAGE, sop_uid, ExplicitVRLittleEndian)
            ds.PixelData = stored[k, t].tobytes()
            ds.compress(
                RLELossless, stored[k, t], encoding_plugin="pylibjpeg", generate_instance_uid=False
            )
            ds.save_as(path, enforce_file_format=True)
    return number


class _TemplateWriter:
    """Writes many single-frame files of one series fast: the constant elements are
    encoded once by pydicom; per file only the varying elements and pixels are added
    (explicit VR little endian, elements in ascending tag order as Part 5 requires)."""

    VARYING = (
        "SOPInstanceUID",
        "TriggerTime",
        "InstanceNumber",
        "ImagePositionPatient",
        "SliceLocation",
        "PixelData",
    )
    VRS: ClassVar[dict[str, str]] = {
        "SOPInstanceUID": "UI",
        "TriggerTime": "DS",
        "InstanceNumber": "IS",
        "ImagePositionPatient": "DS",
        "SliceLocation": "DS",
        "PixelData": "OW",
    }

    def __init__(self, ds: Dataset) -> None:
        self.tags = {k: int(Tag(keyword_dict[k])) for k in self.VARYING}
        tags = list(self.tags.values())
        bounds = [-1, *tags]
        self.chunks = []
        for lo, hi in itertools.pairwise(bounds):
            part = Dataset()
            for elem in ds:
                if lo < int(elem.tag) < hi:
                    part.add(elem)
            self.chunks.append(_encode(part))

    def write(
        self, path: Path, sop_uid: str, varying: dict[str, Any], pixels: NDArray[np.uint16]
    ) -> None:
        body = [b"\0" * 128, b"DICM", _meta_bytes(MR_IMAGE, sop_uid)]
        for chunk, key in zip(self.chunks, self.VARYING, strict=True):
            body.append(chunk)
            if key == "PixelData":
                body.append(_element(0x7FE00010, "OW", pixels.astype("<u2").tobytes()))
            else:
                value = varying[key]
                text = "\\".join(value) if isinstance(value, list) else str(value)
                body.append(_element(self.tags[key], self.VRS[key], text.encode()))
        path.write_bytes(b"".join(body))


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    head = struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, vr.encode())
    if vr in ("OB", "OW", "SQ", "UN", "UT"):
        return head + struct.pack("<HI", 0, len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def _meta_bytes(sop_class: str, sop_uid: str) -> bytes:
    """File meta group (0002) for explicit VR little endian files."""
    elements = b"".join(
        [
            _element(0x00020001, "OB", b"\x00\x01"),
            _element(0x00020002, "UI", sop_class.encode()),
            _element(0x00020003, "UI", sop_uid.encode()),
            _element(0x00020010, "UI", ExplicitVRLittleEndian.encode()),
            _element(0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID.encode()),
            _element(0x00020013, "SH", IMPLEMENTATION_NAME.encode()),
        ]
    )
    return _element(0x00020000, "UL", struct.pack("<I", len(elements))) + elements


def _write_enhanced(
    ds: Dataset,
    spec: SeriesSpec,
    stored: NDArray[np.uint16],
    slope: float,
    folder: Path,
    uid_root: str,
) -> None:
    slices, phases, rows, cols = stored.shape
    sop_uid = generate_uid(entropy_srcs=[uid_root, str(spec.number), "enhanced"])
    ds.SOPClassUID = ENHANCED_MR_IMAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = 1
    ds.ImageType = [*ds.ImageType[:2], "M", "NONE"]
    ds.NumberOfFrames = slices * phases
    ds.ContentQualification = "PRODUCT"
    ds.AcquisitionContrast = "MIXED"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [_ds(x) for x in spec.planes[0].spacing]
    measures.SliceThickness = ds.SliceThickness
    if "SpacingBetweenSlices" in ds:
        measures.SpacingBetweenSlices = ds.SpacingBetweenSlices
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [_ds(x) for x in spec.planes[0].orientation]
    shared.PlaneOrientationSequence = Sequence([orientation])
    transform = Dataset()
    transform.RescaleIntercept = "0"
    transform.RescaleSlope = _ds(slope)
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])

    frames = []
    for k, plane in enumerate(spec.planes):
        for t in range(phases):
            item = Dataset()
            position = Dataset()
            position.ImagePositionPatient = [_ds(float(x)) for x in plane.position]
            item.PlanePositionSequence = Sequence([position])
            content = Dataset()
            content.StackID = "1"
            content.InStackPositionNumber = k + 1
            content.TemporalPositionIndex = t + 1
            content.DimensionIndexValues = [k + 1, t + 1]
            item.FrameContentSequence = Sequence([content])
            sync = Dataset()
            sync.NominalCardiacTriggerDelayTime = float(spec.trigger_ms[t])
            item.CardiacSynchronizationSequence = Sequence([sync])
            frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.file_meta = _file_meta(ENHANCED_MR_IMAGE, sop_uid, ExplicitVRLittleEndian)
    ds.PixelData = stored.reshape(slices * phases, rows, cols).tobytes()
    if spec.rle:
        pixels = stored.reshape(slices * phases, rows, cols)
        ds.compress(
            RLELossless,
            pixels[0] if len(pixels) == 1 else pixels,  # one frame is passed as 2-D
            encoding_plugin="pylibjpeg",
            generate_instance_uid=False,
        )
    ds.save_as(folder / "IM00001.dcm", enforce_file_format=True)


def series_times(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(minutes=3 * i + 1) for i in range(count)]
