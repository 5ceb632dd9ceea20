"""The phantom archive: valid DICOM whose pixels and geometry carry the truth.

The pixel checks measure from the images alone (thresholds, rays, rings), the way a
reader or a simple tool would, and compare with labels.jsonl.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from cmrsearch.cli import main
from cmrsearch.vocabulary import FINDINGS
from phantom.archive import PhantomError, generate, plan_archive
from phantom.geometry import heart_frame
from phantom.heart import build_heart
from phantom.render import Renderer, long_axis_plane, sample_acquisition, sax_planes
from phantom.thorax import sample_thorax

SAX, LGE_SAX = "SE05", "SE10"  # the phantom's series numbers for the SAX cine and LGE stacks


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "archive"
    generate(out, 100, seed=7, style="internal", workers=2, size="small")
    return out


def labels(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]


def load_series(
    folder: Path,
) -> tuple[NDArray[np.float32], list[NDArray[np.float64]], NDArray[np.float64], float]:
    """(slices, phases, rows, cols) pixels, slice positions, orientation, pixel spacing."""
    files = sorted(folder.glob("*.dcm"))
    first = pydicom.dcmread(files[0])
    if "PerFrameFunctionalGroupsSequence" in first:
        frames = first.pixel_array.astype(np.float32)
        slope = float(
            first.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope
        )
        per_frame = first.PerFrameFunctionalGroupsSequence
        keys = [
            (
                int(f.FrameContentSequence[0].InStackPositionNumber),
                int(f.FrameContentSequence[0].TemporalPositionIndex),
            )
            for f in per_frame
        ]
        n_slices, n_phases = max(k[0] for k in keys), max(k[1] for k in keys)
        pixels = np.zeros((n_slices, n_phases, *frames.shape[1:]), np.float32)
        positions: dict[int, NDArray[np.float64]] = {}
        for frame, (k, t), item in zip(frames, keys, per_frame, strict=True):
            pixels[k - 1, t - 1] = frame * slope
            positions[k] = np.array(item.PlanePositionSequence[0].ImagePositionPatient, float)
        shared = first.SharedFunctionalGroupsSequence[0]
        orientation = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
        spacing = float(shared.PixelMeasuresSequence[0].PixelSpacing[0])
        return pixels, [positions[k] for k in sorted(positions)], orientation, spacing
    by_position: dict[tuple[float, ...], list[Any]] = defaultdict(list)
    for path in files:
        ds = pydicom.dcmread(path)
        by_position[tuple(float(x) for x in ds.ImagePositionPatient)].append(ds)
    orientation = np.array(first.ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    ordered = sorted(by_position, key=lambda p: float(np.dot(p, normal)))
    pixels = np.stack(
        [
            np.stack(
                [
                    d.pixel_array.astype(np.float32) * float(d.RescaleSlope)
                    for d in sorted(by_position[p], key=lambda d: float(d.TriggerTime))
                ]
            )
            for p in ordered
        ]
    )
    return pixels, [np.array(p) for p in ordered], orientation, float(first.PixelSpacing[0])


def lv_blood_pool(
    image: NDArray[np.float32],
    threshold: float,
    centre: tuple[float, float] | None = None,
    max_distance: float | None = None,
) -> NDArray[np.bool_]:
    """The round bright region nearest ``centre`` (default: the image centre, where the
    LV is planned); atria, vessels and the chest wall are not round and are skipped."""
    bright = image > threshold
    # Erode first so that a thin septum cannot merge the LV with the RV.
    parts, count = ndimage.label(ndimage.binary_erosion(bright))
    rows, cols = np.indices(image.shape)
    centre = centre or (image.shape[0] / 2, image.shape[1] / 2)
    max_distance = max_distance or 0.3 * image.shape[1]
    best, best_d = 0, np.inf
    for index in range(1, count + 1):
        mask = parts == index
        area = int(mask.sum())
        if area < 2 or area > 0.08 * image.size:
            continue
        cy, cx = rows[mask].mean(), cols[mask].mean()
        reach = np.hypot(rows[mask] - cy, cols[mask] - cx).max() + 0.5
        if area < 0.45 * np.pi * reach**2:
            continue
        d = np.hypot(cy - centre[0], cx - centre[1])
        if d < best_d:
            best, best_d = index, d
    if best_d > max_distance:
        return np.zeros(image.shape, bool)
    return ndimage.binary_dilation(parts == best) & bright


def lv_axis(pixels: NDArray[np.float32], threshold: float) -> tuple[float, float]:
    """Where the LV long axis crosses the stack: median pool centre of the mid slices."""
    n = len(pixels)
    centres = [
        np.argwhere(pool).mean(axis=0)
        for k in range(n // 3, max(2 * n // 3, n // 3 + 1))
        if (pool := lv_blood_pool(pixels[k, 0], threshold)).any()
    ]
    if not centres:
        return (float("nan"), float("nan"))
    y, x = np.median(np.array(centres), axis=0)
    return float(y), float(x)


def blood_threshold(stack: NDArray[np.float32]) -> float:
    """Midway between myocardium and blood: the brightest tenth of the central region."""
    rows, cols = stack.shape[-2:]
    centre = stack[..., rows // 4 : 3 * rows // 4, cols // 4 : 3 * cols // 4]
    return 0.5 * float(np.percentile(centre, 93))


def measured_ef(study: Path) -> float:
    pixels, positions, _, spacing = load_series(study / SAX)
    step = float(np.linalg.norm(positions[1] - positions[0]))
    threshold = blood_threshold(pixels)
    axis = lv_axis(pixels, threshold)
    pools = [
        [
            lv_blood_pool(pixels[k, t], threshold, axis, 12.0 / spacing)
            for t in range(pixels.shape[1])
        ]
        for k in range(pixels.shape[0])
    ]
    # No LV slice is larger than the widest mid-ventricular one (effusion, stomach are).
    widest = max(int(pools[k][0].sum()) for k in range(len(pools) // 3, 2 * len(pools) // 3))
    areas = np.array([[p.sum() if p.sum() <= 1.2 * widest else 0 for p in row] for row in pools])
    volumes = areas.sum(axis=0) * spacing**2 * step
    if volumes.max() <= 0:
        return float("nan")  # the simple tool found no LV: counted as a miss
    return float(100 * (volumes.max() - volumes.min()) / volumes.max())


def test_every_file_reads_and_the_archive_is_laid_out(archive: Path) -> None:
    rows = labels(archive)
    assert len(rows) == 100
    reports = [json.loads(x) for x in (archive / "reports.jsonl").read_text().splitlines()]
    assert {r["study_uid"] for r in reports} == {r["study_uid"] for r in rows}
    files = sorted((archive / "dicom").rglob("*.dcm"))
    assert len(files) == sum(r["files"] for r in rows)
    # Every file of a few studies, and the first file of every series, fully decoded.
    sample = [p for r in rows[:4] for p in (archive / r["path"]).rglob("*.dcm")]
    sample += [sorted(series.glob("*.dcm"))[0] for series in (archive / "dicom").glob("*/*/*")]
    syntaxes, classes = set(), set()
    for path in sample:
        ds = pydicom.dcmread(path)
        assert ds.Modality == "MR" and ds.StudyInstanceUID and ds.SeriesInstanceUID
        assert ds.pixel_array.size > 0
        syntaxes.add(ds.file_meta.TransferSyntaxUID.name)
        classes.add(ds.SOPClassUID.name)
    assert {"Explicit VR Little Endian", "RLE Lossless"} <= syntaxes
    assert {"MR Image Storage", "Enhanced MR Image Storage"} <= classes
    assert len(list(archive.glob(".partial*"))) == 0
    for row in rows:
        assert set(row["findings"]) == set(FINDINGS)
        assert (archive / row["path"]).is_dir()
    assert len({r["patient"] for r in rows}) < len(rows)  # some patients have follow-ups


def test_files_are_byte_for_byte_what_pydicom_writes(archive: Path) -> None:
    """The writer splices files from pieces it encodes itself; pydicom, writing back each
    data set it reads, must give the same bytes (tag order, lengths, padding, sequences,
    encapsulated RLE with its offset table), for every class and syntax."""
    kinds = set()
    for series in sorted((archive / "dicom").glob("*/*/*")):
        for path in sorted(series.glob("*.dcm"))[:2]:
            ds = pydicom.dcmread(path)
            again = io.BytesIO()
            ds.save_as(again, enforce_file_format=True)
            assert again.getvalue() == path.read_bytes(), path
            kinds.add((ds.SOPClassUID.name, ds.file_meta.TransferSyntaxUID.name))
    classes = ("MR Image Storage", "Enhanced MR Image Storage")
    syntaxes = ("Explicit VR Little Endian", "RLE Lossless")
    assert kinds == {(c, s) for c in classes for s in syntaxes}


def test_sax_slices_lie_along_the_stack_normal(archive: Path) -> None:
    for row in labels(archive)[:20]:
        _, positions, orientation, _ = load_series(archive / row["path"] / SAX)
        normal = np.cross(orientation[:3], orientation[3:])
        assert 6 <= len(positions) <= 12
        steps = np.diff(np.array(positions), axis=0)
        for step in steps:
            assert abs(abs(np.dot(step, normal)) - np.linalg.norm(step)) < 1e-3
        assert np.allclose(np.linalg.norm(steps, axis=1), np.linalg.norm(steps[0]), atol=1e-3)


def test_long_axis_planes_share_the_lv_long_axis(archive: Path) -> None:
    checked = 0
    for row in labels(archive)[:30]:
        if not {"2ch", "3ch", "4ch"} <= set(row["views"]):
            continue
        study = archive / row["path"]
        _, _, sax_orientation, _ = load_series(study / SAX)
        sax_normal = np.cross(sax_orientation[:3], sax_orientation[3:])
        planes = []
        for series in ("SE03", "SE06", "SE04"):
            _, (position,), orientation, _spacing = load_series(study / series)
            normal = np.cross(orientation[:3], orientation[3:])
            planes.append((normal, float(normal @ position)))
            # Each long-axis plane contains the long axis, i.e. the SAX normal direction.
            assert abs(normal @ sax_normal) < 1e-3
        # All three planes meet in one line: the LV long axis.
        normals = np.array([p[0] for p in planes])
        offsets = np.array([p[1] for p in planes])
        point, *_ = np.linalg.lstsq(normals, offsets, rcond=None)
        assert np.abs(normals @ point - offsets).max() < 1e-2
        checked += 1
    assert checked >= 10


def test_ejection_fraction_measured_from_pixels_tracks_the_label(archive: Path) -> None:
    rows = labels(archive)
    truth = np.array([r["measurements"]["lvef"] for r in rows])
    measured = np.array([measured_ef(archive / r["path"]) for r in rows])
    found = ~np.isnan(measured)
    assert found.mean() >= 0.95, f"the LV was found in only {found.sum()} studies"
    r = np.corrcoef(truth[found], measured[found])[0, 1]
    assert r >= 0.9, f"Pearson r = {r:.3f}"


def mid_wall_thickness(study: Path) -> float:
    """Median end-diastolic wall thickness (mm) along rays from the LV centre, mid slice."""
    pixels, _, _, spacing = load_series(study / SAX)
    threshold = blood_threshold(pixels)
    image = pixels[len(pixels) // 2, 0]
    pool = lv_blood_pool(image, threshold)
    cy, cx = (float(v.mean()) for v in np.nonzero(pool))
    dark = 0.25 * threshold  # lungs and air are far darker than myocardium
    widths = []
    for angle in np.linspace(0, 2 * np.pi, 36, endpoint=False):
        inside, width = True, 0
        for step in np.arange(0, image.shape[0], 0.5):
            y, x = round(cy + step * np.sin(angle)), round(cx + step * np.cos(angle))
            if not (0 <= y < image.shape[0] and 0 <= x < image.shape[1]):
                break
            if inside:
                inside = bool(pool[y, x])
                continue
            if image[y, x] > threshold or image[y, x] < dark:
                break
            width += 1
        widths.append(width * 0.5 * spacing)
    return float(np.median(widths))


def test_wall_thickness_ranks_hypertrophy_above_normal(archive: Path) -> None:
    rows = labels(archive)
    thick = [
        mid_wall_thickness(archive / r["path"])
        for r in rows
        if r["grades"].get("lv_hypertrophy") in ("moderate", "severe")
    ]
    normal = [mid_wall_thickness(archive / r["path"]) for r in rows if r["diagnosis"] == "normal"]
    assert len(thick) >= 4 and len(normal) >= 10
    # Probability that a hypertrophied heart measures thicker than a normal one (AUC).
    auc = np.mean([[t > n for n in normal] for t in thick])
    assert auc >= 0.85, f"AUC {auc:.2f}: thick {thick}, normal {normal}"


def scar_contrast(study: Path) -> float:
    """Brightest myocardium on LGE relative to the blood pool, mid-ventricular slices."""
    cine, _, _, _ = load_series(study / SAX)
    lge, _, _, _ = load_series(study / LGE_SAX)
    threshold = blood_threshold(cine)
    best = 0.0
    n = min(len(cine), len(lge))
    for k in range(n // 3, max(2 * n // 3, n // 3 + 1)):  # mid-ventricular slices
        frame = cine[k, int(0.75 * cine.shape[1])]
        pool = lv_blood_pool(frame, threshold)
        if pool.sum() < 16:
            continue
        ring = ndimage.binary_dilation(pool, iterations=2) & ~ndimage.binary_dilation(pool)
        ring &= frame < threshold  # myocardium is dark on cine; fat and blood are not
        blood = float(np.median(lge[k, 0][ndimage.binary_erosion(pool)]))
        best = max(best, float(np.percentile(lge[k, 0][ring], 90)) / max(blood, 1.0))
    return best


def test_lge_shows_bright_myocardium_only_where_there_is_scar(archive: Path) -> None:
    rows = [r for r in labels(archive) if "lge_sax" in r["views"]]
    scar = [
        scar_contrast(archive / r["path"])
        for r in rows
        if r["details"].get("lge_ischemic") == "transmural"
    ]
    clean = [scar_contrast(archive / r["path"]) for r in rows if r["diagnosis"] == "normal"]
    assert len(scar) >= 3 and len(clean) >= 10
    auc = np.mean([[s > c for c in clean] for s in scar])
    assert auc >= 0.9, f"AUC {auc:.2f}: scar {scar}, clean {clean}"


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 2, seed=3, size="small")
    b = generate(tmp_path / "b", 2, seed=3, size="small")
    assert (tmp_path / "a/labels.jsonl").read_text() == (tmp_path / "b/labels.jsonl").read_text()
    assert (tmp_path / "a/reports.jsonl").read_text() == (tmp_path / "b/reports.jsonl").read_text()
    first = sorted((tmp_path / "a/dicom").rglob("*.dcm"))[10]
    twin = tmp_path / "b" / first.relative_to(tmp_path / "a")
    assert first.read_bytes() == twin.read_bytes()
    assert a["files"] == b["files"]


def test_cli_writes_archive_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(
        [
            "phantom",
            str(out),
            "--studies",
            "2",
            "--seed",
            "5",
            "--size",
            "small",
            "--workers",
            "1",
            "--preview",
            "1",
            "--style",
            "external",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["studies"] == 2 and summary["style"] == "external"
    preview = Path(summary["previews"][0])
    assert preview.stat().st_size > 1000
    assert all(r["style"] == "external" for r in labels(out))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--studies", "0"], "--studies must be at least 1"),
        (["--studies", "1"], "not empty; pass --force"),
    ],
)
def test_bad_arguments_give_one_line_errors(
    tmp_path: Path, argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code = main(["phantom", str(out), *argv, "--size", "small"])
    err = capsys.readouterr().err
    assert code == 1 and fragment in err and "Traceback" not in err
    assert (out / "keep.txt").read_text() == "precious"


def test_unwritable_out_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PhantomError, match="not a directory"):
        generate(blocker, 1, size="small")
    with pytest.raises(PhantomError, match="cannot write"):
        generate(blocker / "sub", 1, size="small")


def test_interrupted_study_never_looks_complete(tmp_path: Path) -> None:
    """A study appears under dicom/ only by rename; leftovers stay in .partial/."""
    from phantom.archive import plan_archive, render_study

    out = tmp_path / "out"
    plan = plan_archive(1, seed=1, style="internal", size="small")[0]
    partial = out / ".partial"
    (partial / plan.key.replace("/", "_") / "SE05").mkdir(parents=True)
    (partial / plan.key.replace("/", "_") / "SE05" / "IM00001.dcm").write_bytes(b"half")
    assert not (out / "dicom").exists()
    render_study(plan, partial, out / "dicom")
    study = out / "dicom" / plan.key
    assert all(pydicom.dcmread(p).pixel_array.size for p in study.rglob("*.dcm"))
    assert not (partial / plan.key.replace("/", "_")).exists()


def test_heart_support_covers_every_pixel_the_heart_touches() -> None:
    """The renderer evaluates the heart only inside ``HeartModel.support``; the full model
    must give every pixel outside it region 0 at every phase (the bound may be loose,
    never tight)."""
    for plan in plan_archive(12, 5, "internal", "small"):
        rng = np.random.default_rng(plan.seed)
        heart = build_heart(plan.case, rng)
        frame = heart_frame(rng)
        sample_thorax(rng, plan.case.sex, plan.case.measurements.bsa)
        acq = sample_acquisition(rng, plan.case.measurements.heart_rate, "small")
        taus = (np.arange(acq.phases) / acq.phases).astype(np.float32)
        views = [long_axis_plane(frame, heart, acq, v) for v in ("2ch", "3ch", "4ch")]
        for plane in sax_planes(frame, heart, acq) + views:
            s, u, v = frame.to_local(plane.points())
            out = ~heart.support(s, u, v, taus, plane.spacing[1])
            _, region = heart.evaluate(s[out], u[out], v[out], taus, "cine", plane.spacing[1])
            assert region.size == 0 or float(region.max()) == 0.0


def test_a_dilated_aortic_root_shows_as_a_wider_root_on_three_chamber_cine() -> None:
    """The root leaves the heart; it must be drawn beyond the heart's outline too, or a
    report's "aortic root 45 mm" has nothing in the images to match (it once was not)."""
    plan = plan_archive(1, 3, "internal", "large")[0]

    def blood_area(root_mm: float) -> float:
        """mm² of blood-bright pixels on a noiseless end-diastolic 3CH frame."""
        rng = np.random.default_rng(plan.seed)
        case = replace(
            plan.case, measurements=replace(plan.case.measurements, aortic_root_mm=root_mm)
        )
        heart = build_heart(case, rng)
        frame = heart_frame(rng)
        thorax = sample_thorax(rng, case.sex, case.measurements.bsa)
        acq = replace(
            sample_acquisition(rng, case.measurements.heart_rate, "large"),
            noise=0.0, artifact="none", breath_hold_mm=0.0,
        )  # fmt: skip
        plane = long_axis_plane(frame, heart, acq, "3ch")
        image = Renderer(frame, heart, thorax, acq).render(
            plane, np.zeros(1, np.float32), "cine", np.random.default_rng(0)
        )[0]
        blood = 0.6 * float(np.percentile(image, 99.5))
        return float((image > blood).sum()) * plane.spacing[0] * plane.spacing[1]

    # 15 mm wider over the 40-75 mm of root the plane shows: at least 15 x 30 mm² more.
    assert blood_area(45.0) - blood_area(30.0) >= 15 * 30
