"""Indexer inputs: a malformed DICOM corpus, a mixed-folder index run, discovery, reports.

Every file is real, written with pydicom (or byte-patched from one that was); nothing
is mocked.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import struct
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.db import make_engine
from catalog.models import IngestError, Study
from cmrsearch.cli import main
from indexer.errors import ERROR_TYPES, IndexingError, IngestFailure
from indexer.headers import read_instance
from indexer.reports import extract_impression, read_reports
from indexer.sources import Source, discover
from phantom.archive import generate
from phantom.case import sample_case
from phantom.reports import STYLES, write_report

PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "MRN123"
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID, "DOE", "JANE")
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"


# --- writing DICOM files ------------------------------------------------------------


def _uid(n: int, part: int) -> str:
    return f"{UID_ROOT}.{n:04d}.{part}"


def mr_dataset(n: int = 1, rows: int = 64, columns: int = 64) -> Dataset:
    """A small, valid single-frame MR image (fixed UIDs, so byte offsets are stable)."""
    ds = Dataset()
    ds.SOPClassUID = MR_IMAGE
    ds.SOPInstanceUID = _uid(n, 3)
    ds.StudyDate = "20240102"
    ds.Modality = "MR"
    ds.Manufacturer = "PHANTOM"
    ds.StudyDescription = "MR HEART"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientSex = "F"
    ds.SliceThickness = "8"
    ds.StudyInstanceUID = _uid(n, 1)
    ds.SeriesInstanceUID = _uid(n, 2)
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [-100.0, -120.0, 35.5]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [1.5, 1.5]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    y, x = np.mgrid[:rows, :columns]
    ds.PixelData = ((x * 7 + y * 3) % 4096).astype(np.uint16).tobytes()
    return ds


def write_dicom(path: Path, ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def _valid_bytes(tmp: Path, rows: int = 64, columns: int = 64) -> bytes:
    return write_dicom(tmp / f".valid-{rows}x{columns}.bin", mr_dataset(90, rows, columns))


def _pixel_value_offset(data: bytes | bytearray) -> int:
    """Where the Pixel Data value starts in ``data`` (explicit VR little endian)."""
    return data.index(b"\xe0\x7f\x10\x00OW") + 12


def _value_offset(data: bytes, group: int, element: int, vr: bytes) -> int:
    """Where a short-length explicit-VR element's value starts (after the file meta)."""
    return data.index(struct.pack("<HH", group, element) + vr, 132) + 8


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _nested_sequences(depth: int) -> bytes:
    """(0008,0006) sequences nested ``depth`` deep, undefined lengths: parsed at read time."""
    undefined = 0xFFFFFFFF
    head = struct.pack("<HH2sHI", 0x0008, 0x0006, b"SQ", 0, undefined)
    head += struct.pack("<HHI", 0xFFFE, 0xE000, undefined)
    tail = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    inner = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 2) + b"X "
    return head * depth + inner + tail * depth


# --- the corpus: name -> writer, accepted error types --------------------------------

Builder = Callable[[Path, Path], None]  # (file to write, scratch folder)


def _empty(path: Path, tmp: Path) -> None:
    _write(path, b"")


def _cut_in_preamble(path: Path, tmp: Path) -> None:
    _write(path, _valid_bytes(tmp)[:64])


def _cut_in_file_meta(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    start = data.index(b"\x02\x00\x10\x00UI") + 8  # Transfer Syntax UID value
    _write(path, data[: start + 5])


def _cut_in_dataset(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    start = _value_offset(data, 0x0020, 0x000D, b"UI")  # Study Instance UID value
    _write(path, data[: start + 10])


def _cut_in_pixel_header(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    _write(path, data[: _pixel_value_offset(data) - 3])  # inside Pixel Data's length field


def _cut_in_small_pixel_data(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp, 16, 16)  # 512 bytes of pixels: below defer_size, read at once
    offset = _pixel_value_offset(data)
    _write(path, data[: offset + (len(data) - offset) // 2])


def _cut_in_pixel_data(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)  # 8 KiB of pixels: deferred by read_instance
    offset = _pixel_value_offset(data)
    _write(path, data[: offset + (len(data) - offset) // 2])


def _no_dicm_prefix(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    _write(path, data[:128] + b"XXXX" + data[132:])


def _garbage(path: Path, tmp: Path) -> None:
    rng = random.Random(20240102)
    _write(path, b"\x13\x37" + bytes(rng.randrange(256) for _ in range(4094)))


def _png(path: Path, tmp: Path) -> None:
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path, format="PNG")


def _zip(path: Path, tmp: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("IM00001.dcm", _valid_bytes(tmp))


def _huge_text_length_implicit(path: Path, tmp: Path) -> None:
    data = bytearray(write_dicom(tmp / ".implicit.bin", mr_dataset(91), ImplicitVRLittleEndian))
    at = data.index(struct.pack("<HH", 0x0008, 0x1030), 132)  # Study Description
    data[at + 4 : at + 8] = struct.pack("<I", 0x7FFFFFF0)
    _write(path, bytes(data))


def _huge_ut_length(path: Path, tmp: Path) -> None:
    ds = mr_dataset(92)
    ds.add_new(0x00204000, "UT", "free text comment")  # Image Comments, 4-byte length
    data = bytearray(write_dicom(tmp / ".ut.bin", ds))
    at = data.index(struct.pack("<HH", 0x0020, 0x4000) + b"UT", 132)
    data[at + 8 : at + 12] = struct.pack("<I", 0x7FFFFFF0)
    _write(path, bytes(data))


def _huge_pixel_length(path: Path, tmp: Path) -> None:
    data = bytearray(_valid_bytes(tmp))
    offset = _pixel_value_offset(data)
    data[offset - 4 : offset] = struct.pack("<I", 0x7FFFFFF0)
    _write(path, bytes(data))


def _nested(depth: int) -> Builder:
    def build(path: Path, tmp: Path) -> None:
        data = write_dicom(tmp / f".nested-{depth}.bin", mr_dataset(93))
        at = data.index(struct.pack("<HH", 0x0008, 0x0016) + b"UI", 132)  # first element
        _write(path, data[:at] + _nested_sequences(depth) + data[at:])

    return build


def _no_pixel_data(path: Path, tmp: Path) -> None:
    ds = mr_dataset(94)
    del ds.PixelData
    write_dicom(path, ds)


def _no_orientation(path: Path, tmp: Path) -> None:
    ds = mr_dataset(95)
    del ds.ImageOrientationPatient
    write_dicom(path, ds)


def _ct(path: Path, tmp: Path) -> None:
    ds = mr_dataset(96)
    ds.SOPClassUID = CT_IMAGE
    ds.Modality = "CT"
    write_dicom(path, ds)


def _too_large(path: Path, tmp: Path) -> None:
    ds = mr_dataset(97)
    ds.Rows = ds.Columns = 8000  # the header says 8000x8000; the pixels are not there
    write_dicom(path, ds)


def _cut_in_rows_value(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    _write(path, data[: _value_offset(data, 0x0028, 0x0010, b"US") + 1])


def _cut_in_meta_group_length(path: Path, tmp: Path) -> None:
    _write(path, _valid_bytes(tmp)[:141])  # one byte of (0002,0000)'s 4-byte UL value


def _non_numeric_position(path: Path, tmp: Path) -> None:
    data = _valid_bytes(tmp)
    good = b"-100.0\\-120.0\\35.5"
    assert good in data
    _write(path, data.replace(good, b"-1OO.0\\-12O.0\\35.5"))


HEADER_REJECTIONS = {"truncated", "not_dicom", "malformed", "missing_uid", "no_pixel_data"}

# name -> (builder, accepted error types)
CORPUS: dict[str, tuple[Builder, set[str]]] = {
    "empty.dcm": (_empty, {"empty"}),
    "cut_in_preamble.dcm": (_cut_in_preamble, {"not_dicom", "truncated"}),
    "cut_in_file_meta.dcm": (_cut_in_file_meta, HEADER_REJECTIONS),
    "cut_in_dataset.dcm": (_cut_in_dataset, HEADER_REJECTIONS),
    "cut_in_pixel_header.dcm": (_cut_in_pixel_header, {"truncated"}),
    "cut_in_small_pixel_data.dcm": (_cut_in_small_pixel_data, {"truncated"}),
    "no_dicm_prefix.dcm": (_no_dicm_prefix, {"not_dicom"}),
    "garbage.dcm": (_garbage, {"not_dicom"}),
    "picture.dcm": (_png, {"not_dicom"}),
    "archive.dcm": (_zip, {"not_dicom"}),
    "huge_text_length_implicit.dcm": (_huge_text_length_implicit, HEADER_REJECTIONS),
    "huge_ut_length.dcm": (_huge_ut_length, HEADER_REJECTIONS),
    "nested_2000.dcm": (_nested(2000), {"malformed"}),
    "no_pixel_data.dcm": (_no_pixel_data, {"no_pixel_data"}),
    "no_orientation.dcm": (_no_orientation, {"missing_geometry"}),
    "ct.dcm": (_ct, {"unsupported_modality"}),
    "too_large.dcm": (_too_large, {"too_large"}),
}

# Problems that surface only when pixel data or a value is actually read (pydicom defers
# large values and converts lazily).
LAZY_CORPUS: dict[str, tuple[Builder, set[str]]] = {
    "cut_in_pixel_data.dcm": (_cut_in_pixel_data, {"truncated"}),
    "huge_pixel_length.dcm": (_huge_pixel_length, {"truncated"}),
    "cut_in_rows_value.dcm": (_cut_in_rows_value, HEADER_REJECTIONS),
    "cut_in_meta_group_length.dcm": (_cut_in_meta_group_length, HEADER_REJECTIONS),
    "non_numeric_position.dcm": (_non_numeric_position, {"malformed", "missing_geometry"}),
}


def build_corpus(folder: Path, scratch: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    for name in names:
        build = CORPUS[name][0] if name in CORPUS else LAZY_CORPUS[name][0]
        build(folder / name, scratch)


def _source(path: Path) -> Source:
    [source] = discover([path])
    return source


def _assert_clean_message(message: str) -> None:
    assert message.strip() and "\n" not in message and "\r" not in message, message
    for identifier in IDENTIFIERS:
        assert identifier not in message.upper(), message


def rejection(path: Path) -> IngestFailure:
    """read_instance must raise IngestFailure (any other exception fails the test)."""
    with pytest.raises(IngestFailure) as info:
        read_instance(_source(path))
    failure = info.value
    assert failure.error_type in ERROR_TYPES
    _assert_clean_message(failure.message)
    return failure


# --- 1. the reader on each malformed file --------------------------------------------


def test_the_valid_template_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "valid.dcm"
    write_dicom(path, mr_dataset(1))
    instance = read_instance(_source(path))
    assert (instance.study_uid, instance.rows, instance.columns) == (_uid(1, 1), 64, 64)
    assert instance.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert [f.position for f in instance.frames] == [(-100.0, -120.0, 35.5)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_file_is_rejected_by_type(name: str, tmp_path: Path) -> None:
    _, accepted = CORPUS[name]
    build_corpus(tmp_path / "corpus", tmp_path / "scratch", [name])
    failure = rejection(tmp_path / "corpus" / name)
    assert failure.error_type in accepted, failure
    if name == "picture.dcm":
        assert "PNG" in failure.message
    if name == "archive.dcm":
        assert "ZIP" in failure.message


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "name",
    [pytest.param(n) for n in LAZY_CORPUS],
)
def test_lazily_surfacing_problems_are_rejected_by_type(name: str, tmp_path: Path) -> None:
    _, accepted = LAZY_CORPUS[name]
    build_corpus(tmp_path / "corpus", tmp_path / "scratch", [name])
    failure = rejection(tmp_path / "corpus" / name)
    assert failure.error_type in accepted, failure


def test_every_cut_inside_the_header_is_an_ingest_failure(tmp_path: Path) -> None:
    data = _valid_bytes(tmp_path)
    path = tmp_path / "cut.dcm"
    escaped = {}
    for cut in range(1, _pixel_value_offset(data)):
        path.write_bytes(data[:cut])
        try:
            read_instance(_source(path))
        except IngestFailure as failure:
            _assert_clean_message(failure.message)
        except Exception as exc:  # what the runner cannot record
            escaped[cut] = type(exc).__name__
        else:
            escaped[cut] = "accepted"
    assert escaped == {}


def test_a_cut_below_the_deferral_size_is_truncated(tmp_path: Path) -> None:
    """The declared-length check works when pydicom reads the pixels at once (<= 2 KB)."""
    build_corpus(tmp_path / "c", tmp_path / "s", ["cut_in_small_pixel_data.dcm"])
    failure = rejection(tmp_path / "c" / "cut_in_small_pixel_data.dcm")
    assert failure.error_type == "truncated"
    assert "Pixel Data declares" in failure.message


@pytest.mark.parametrize("depth", [1, 50, 200])
def test_nested_sequences_read_or_malformed(depth: int, tmp_path: Path) -> None:
    path = tmp_path / f"nested_{depth}.dcm"
    _nested(depth)(path, tmp_path)
    try:
        instance = read_instance(_source(path))
    except IngestFailure as failure:
        assert failure.error_type == "malformed", failure
        _assert_clean_message(failure.message)
    else:
        assert instance.study_uid == _uid(93, 1)


def test_a_deflated_file_is_not_mistaken_for_truncated(tmp_path: Path) -> None:
    """Deflated Explicit VR LE: Pixel Data's value_tell is in the inflated stream, past the
    (compressed) file's size, so that check must not apply to it."""
    path = tmp_path / "deflated.dcm"
    data = write_dicom(path, mr_dataset(5), DeflatedExplicitVRLittleEndian)
    assert len(data) < 64 * 64 * 2  # the file is smaller than its pixel data
    instance = read_instance(_source(path))
    assert instance.transfer_syntax == DeflatedExplicitVRLittleEndian


# --- 2. a mixed folder through `cmrsearch index` ------------------------------------


@pytest.fixture(scope="module")
def phantom_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "archive"
    generate(out, 1, seed=11, size="small")
    return out


def _phantom_study_uid(archive: Path) -> str:
    [line] = (archive / "reports.jsonl").read_text().splitlines()
    return str(json.loads(line)["study_uid"])


def _index(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["index", *argv, "--json", "--workers", "1"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def _expected_types(folder: Path, names: list[str], accepted: dict[str, set[str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name in names:
        failure = rejection(folder / name)
        assert failure.error_type in accepted[name], (name, failure)
        counts[failure.error_type] += 1
    return counts


def _error_rows(database_url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(IngestError.path, IngestError.error_type, IngestError.message)
            ).all()
            return [(str(p), str(t), str(m)) for p, t, m in rows]
    finally:
        engine.dispose()


def _study_uids(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return set(session.scalars(select(Study.study_uid)).all())
    finally:
        engine.dispose()


def _study_files(archive: Path) -> int:
    return sum(1 for p in (archive / "dicom").rglob("*") if p.is_file())


def test_index_a_folder_of_bad_files_and_one_study(
    cmr_env: Path,
    database_url: str,
    phantom_archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "incoming"
    names = sorted(CORPUS)
    build_corpus(folder / "bad", tmp_path / "scratch", names)
    shutil.copytree(phantom_archive / "dicom", folder / "study")
    expected = _expected_types(folder / "bad", names, {n: CORPUS[n][1] for n in names})
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()

    code, summary = _index(capsys, str(folder))
    assert code == 0
    assert summary["errors_by_type"] == dict(sorted(expected.items()))
    assert summary["files"] == len(names) + _study_files(phantom_archive)
    assert (summary["studies"], summary["studies_written"], summary["studies_unchanged"]) == (
        1,
        1,
        0,
    )
    assert _study_uids(database_url) == {_phantom_study_uid(phantom_archive)}
    rows = _error_rows(database_url)
    assert sorted(path for path, _, _ in rows) == sorted(f"bad/{n}" for n in names)
    assert Counter(error_type for _, error_type, _ in rows) == expected
    for _, _, message in rows:
        _assert_clean_message(message)

    code, again = _index(capsys, str(folder))
    assert code == 0
    assert (again["studies_written"], again["studies_unchanged"]) == (0, 1)
    assert again["errors_by_type"] == summary["errors_by_type"]
    assert sorted(_error_rows(database_url)) == sorted(rows)  # replaced, not duplicated

    assert main(["index", str(folder), "--workers", "1", "--strict"]) == 3
    assert len(_error_rows(database_url)) == len(names)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Study)) == 1
    finally:
        engine.dispose()


def test_index_records_lazily_surfacing_problems_too(
    cmr_env: Path,
    database_url: str,
    phantom_archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Such a file must cost itself only, never abort the run."""
    folder = tmp_path / "incoming"
    names = sorted(LAZY_CORPUS)
    build_corpus(folder / "bad", tmp_path / "scratch", names)
    shutil.copytree(phantom_archive / "dicom", folder / "study")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code, summary = _index(capsys, str(folder))
    assert code == 0
    assert sum(summary["errors_by_type"].values()) == len(names)
    assert summary["errors_by_type"].get("truncated", 0) >= 2
    assert summary["studies_written"] == 1
    assert sorted(path for path, _, _ in _error_rows(database_url)) == [f"bad/{n}" for n in names]


# --- 3. discovery --------------------------------------------------------------------


def test_discovery_skips_hidden_links_out_and_special_files(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_dicom(root / "a" / "x.dcm", mr_dataset(10))
    write_dicom(outside / "secret.dcm", mr_dataset(11))
    for hidden in (".hidden.dcm", ".cache/y.dcm", "__MACOSX/z.dcm", "a/.w.dcm", "a/._x.dcm"):
        write_dicom(root / hidden, mr_dataset(12))
    (root / "inside_link.dcm").symlink_to(root / "a" / "x.dcm")
    (root / "out_link.dcm").symlink_to(outside / "secret.dcm")
    (root / "out_dir").symlink_to(outside, target_is_directory=True)
    (root / "a_link").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.dcm").symlink_to(root / "missing.dcm")
    os.mkfifo(root / "pipe.dcm")

    sources = discover([root])
    keys = [s.key for s in sources]
    assert sorted(keys) == [
        "a/x.dcm",
        "inside_link.dcm",
    ]  # each once; no loop, nothing from outside
    by_key = {s.key: s for s in sources}
    real = str((root / "a" / "x.dcm").resolve())
    assert by_key["inside_link.dcm"].path == real == by_key["a/x.dcm"].path
    assert all(s.member is None and s.size > 0 for s in sources)
    assert read_instance(by_key["inside_link.dcm"]).study_uid == _uid(10, 1)


@pytest.fixture(scope="module")
def phantom_zip(phantom_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zipped") / "study.zip"
    root = phantom_archive / "dicom"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(root.rglob("*")):
            archive.write(file, file.relative_to(root).as_posix())  # folders get entries too
        archive.writestr(".DS_Store", b"\0")
        archive.writestr("__MACOSX/._IM00001.dcm", b"\0")
        archive.writestr("notes/.hidden.dcm", b"\0")
    return path


def test_a_zip_archive_is_discovered_member_by_member(
    phantom_archive: Path, phantom_zip: Path
) -> None:
    root = phantom_archive / "dicom"
    folder_files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    sources = discover([phantom_zip])
    assert [s.key for s in sources] == [f"study.zip/{name}" for name in folder_files]
    assert {s.member for s in sources} == set(folder_files)
    assert {s.path for s in sources} == {str(phantom_zip.resolve())}
    first = sources[0]
    with first.open() as fh:
        assert fh.read() == (root / str(first.member)).read_bytes()


def test_zip_members_read_like_the_folder_files(phantom_archive: Path, phantom_zip: Path) -> None:
    root = phantom_archive / "dicom"
    for source in discover([phantom_zip])[:3]:
        from_zip = read_instance(source)
        from_folder = read_instance(_source(root / str(source.member)))
        assert (from_zip.study_uid, from_zip.sop_uid) == (
            from_folder.study_uid,
            from_folder.sop_uid,
        )


def test_a_zip_indexes_to_the_same_study_as_the_folder(
    cmr_env: Path,
    database_url: str,
    phantom_archive: Path,
    phantom_zip: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    code, summary = _index(capsys, str(phantom_zip))
    assert code == 0 and summary["errors_by_type"] == {}
    assert summary["studies_written"] == 1
    assert _study_uids(database_url) == {_phantom_study_uid(phantom_archive)}


# --- 4. reports ----------------------------------------------------------------------


def _phantom_reports(style: str, count: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(accession, study_uid, text, impression) for ``count`` phantom reports."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        report = write_report(sample_case(rng), style, rng)
        out.append((f"ACC{i:04d}", f"{UID_ROOT}.{i}", report.text, report.impression))
    return out


def test_jsonl_csv_and_text_folder_give_the_same_records(tmp_path: Path) -> None:
    rows = _phantom_reports("internal", 3, 1) + _phantom_reports("external", 3, 2)
    rows = [(f"ACC{i:04d}", uid, text, imp) for i, (_, uid, text, imp) in enumerate(rows)]
    jsonl = tmp_path / "reports.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"accession": a, "study_uid": u, "text": t}) + "\n" for a, u, t, _ in rows
        )
    )
    table = tmp_path / "reports.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["accession", "study_uid", "text"])
        writer.writeheader()
        writer.writerows({"accession": a, "study_uid": u, "text": t} for a, u, t, _ in rows)
    folder = tmp_path / "texts"
    folder.mkdir()
    for accession, _, text, _ in rows:
        (folder / f"{accession}.txt").write_bytes(text.encode())
    (folder / ".ACC9999.txt").write_text("hidden")
    (folder / "README.md").write_text("not a report")

    from_jsonl, from_csv, from_folder = (read_reports(p) for p in (jsonl, table, folder))
    expected = [(a, u, t) for a, u, t, _ in rows]
    assert [(r.accession, r.study_uid, r.text) for r in from_jsonl] == expected
    assert [(r.accession, r.study_uid, r.text) for r in from_csv] == expected
    assert [(r.accession, r.study_uid, r.text) for r in from_folder] == [
        (a, None, t) for a, _, t in expected
    ]
    assert [r.source for r in from_jsonl][:2] == ["reports.jsonl:1", "reports.jsonl:2"]
    assert [r.source for r in from_csv][:2] == ["reports.csv:2", "reports.csv:3"]
    assert from_folder[0].source == "ACC0000.txt"


def test_a_bad_json_line_names_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    good = json.dumps({"accession": "A1", "text": "IMPRESSION: normal."})
    path.write_text(f"{good}\n\n{{not json, DOE^JANE\n{good}\n")
    with pytest.raises(IndexingError) as info:
        read_reports(path)
    message = str(info.value)
    assert "line 3" in message and "reports.jsonl" in message
    assert "\n" not in message and PATIENT_NAME not in message


@pytest.mark.parametrize("style", STYLES)
def test_extract_impression_recovers_the_phantom_impression(style: str) -> None:
    for accession, _, text, impression in _phantom_reports(style, 100, 42):
        assert extract_impression(text) == (impression.strip(), True), accession


HEADINGS = [
    "IMPRESSION:",
    "Impression:",
    "impression",
    "IMPRESSION.",
    "Impression -",
    "Impression:-",
    "Impressions:",
    "Final impression:",
    "CONCLUSION",
    "Conclusion:",
    "Conclusions:",
    "CONCLUSIONS",
    "Summary:",
    "SUMMARY",
    "OPINION:",
    "Opinion",
    "  Impression :",
]


HEADING_CASES = [pytest.param(h, False, id=f"{h.strip()}-own-line") for h in HEADINGS] + [
    pytest.param(
        h,
        True,
        id=f"{h.strip()}-inline",
    )
    for h in HEADINGS
    if h.rstrip().endswith((":", "-"))  # without ':' or '-' it is a heading on its own line only
]


@pytest.mark.parametrize(("heading", "inline"), HEADING_CASES)
def test_extract_impression_headings(heading: str, inline: bool) -> None:
    body = "Dilated LV with severely reduced function.\nNo LGE."
    text = f"CARDIAC MRI\nFINDINGS: LVEF 25%.\nSummary of prior imaging reviewed.\n{heading}"
    text += f" {body}" if inline else f"\n{body}"
    assert extract_impression(text + "\n\nRecommendation: follow-up CMR.") == (body, True)


def test_extract_impression_without_a_heading_returns_the_whole_text() -> None:
    text = "\n  CARDIAC MRI\nFINDINGS: normal biventricular size and function.\n  "
    assert extract_impression(text) == (text.strip(), False)
    assert extract_impression("IMPRESSION:\n   \n") == ("IMPRESSION:", False)


def test_a_crlf_report_from_csv_finds_its_impression(tmp_path: Path) -> None:
    path = tmp_path / "reports.csv"
    text = "CARDIAC MRI\r\nFINDINGS:\r\nLVEF 25%.\r\nIMPRESSION:\r\nDilated cardiomyopathy."
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["accession", "study_uid", "text"])
        writer.writerow(["A1", "", text])
    [record] = read_reports(path)
    assert extract_impression(record.text) == ("Dilated cardiomyopathy.", True)
