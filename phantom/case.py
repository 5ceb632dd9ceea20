"""Clinical truth of one synthetic study: diagnosis, findings, grades, measurements.

Graded findings are derived from the measurements through the thresholds below, so
labels, grades, report numbers and image geometry can never disagree. Reference
ranges follow the SCMR normal values for adults (Kawel-Boehm et al., JCMR 2020),
rounded: LVEF 57-77 %, LVEDVi <= 100 ml/m2, wall <= 11 mm, RVEF >= 47 %,
RVEDVi <= 105 ml/m2, LA AP diameter <= 40 mm, aortic root <= 38 mm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cmrsearch.vocabulary import DIAGNOSES, FINDINGS

# Diagnosis prevalence of a tertiary-centre CMR archive (referral mix, not population).
PREVALENCE: dict[str, float] = {
    "normal": 0.28,
    "dcm": 0.15,
    "icm": 0.20,
    "hcm": 0.12,
    "amyloidosis": 0.06,
    "arvc": 0.05,
    "pericarditis": 0.07,
    "athlete": 0.07,
}
assert set(PREVALENCE) == set(DIAGNOSES)

# (lower bound of mild, moderate, severe) for "higher is abnormal" measurements.
GRADE_CUTS: dict[str, tuple[float, float, float]] = {
    "lv_dilation": (101.0, 121.0, 141.0),  # LVEDVi ml/m2
    "lv_hypertrophy": (12.0, 15.0, 20.0),  # max wall thickness mm
    "rv_dilation": (106.0, 126.0, 146.0),  # RVEDVi ml/m2
    "pericardial_effusion": (3.0, 10.0, 20.0),  # maximal depth mm
    "la_enlargement": (41.0, 47.0, 52.0),  # LA AP diameter mm
    "aortic_root_dilation": (39.0, 45.0, 50.0),  # sinus diameter mm
}
# (upper bound of mild, moderate, severe) for "lower is abnormal": ejection fractions.
EF_CUTS: dict[str, tuple[float, float, float]] = {
    "lv_systolic_dysfunction": (54.0, 44.0, 29.0),  # LVEF %
    "rv_systolic_dysfunction": (46.0, 39.0, 29.0),  # RVEF %
}
MEASURED_BY: dict[str, str] = {
    "lv_dilation": "lvedvi",
    "lv_hypertrophy": "max_wall_mm",
    "rv_dilation": "rvedvi",
    "pericardial_effusion": "effusion_mm",
    "la_enlargement": "la_diameter_mm",
    "aortic_root_dilation": "aortic_root_mm",
    "lv_systolic_dysfunction": "lvef",
    "rv_systolic_dysfunction": "rvef",
}
TERRITORIES = ("lad", "rca", "lcx")


@dataclass(frozen=True)
class Measurements:
    bsa: float  # m2
    heart_rate: int  # bpm
    lvedv: float  # ml
    lvef: float  # %
    rvedv: float
    rvef: float
    septal_mm: float  # end-diastolic wall thickness at the mid septum
    lateral_mm: float  # at the mid lateral wall
    la_diameter_mm: float
    aortic_root_mm: float
    effusion_mm: float

    @property
    def lvesv(self) -> float:
        return self.lvedv * (1 - self.lvef / 100)

    @property
    def rvesv(self) -> float:
        return self.rvedv * (1 - self.rvef / 100)

    @property
    def lvedvi(self) -> float:
        return self.lvedv / self.bsa

    @property
    def rvedvi(self) -> float:
        return self.rvedv / self.bsa

    @property
    def max_wall_mm(self) -> float:
        return max(self.septal_mm, self.lateral_mm)

    def value(self, name: str) -> float:
        return float(getattr(self, name))

    def as_dict(self) -> dict[str, float]:
        out = {k: round(float(v), 1) for k, v in asdict(self).items()}
        for derived in ("lvesv", "rvesv", "lvedvi", "rvedvi", "max_wall_mm"):
            out[derived] = round(self.value(derived), 1)
        return out


@dataclass(frozen=True)
class Case:
    """Everything true about one study; images and report are rendered from it."""

    diagnosis: str
    sex: str  # "M" | "F"
    age: int
    measurements: Measurements
    # Structural findings not defined by a measurement, with their details.
    rwma_territory: str | None = None  # lad | rca | lcx
    rwma_kind: str | None = None  # hypokinetic | akinetic | dyskinetic
    apical_aneurysm: bool = False
    lv_thrombus: bool = False
    lge_ischemic: str | None = None  # subendocardial | transmural
    lge_ischemic_territory: str | None = None
    lge_nonischemic: str | None = None  # midwall | patchy | diffuse | subepicardial
    asymmetric_septal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> dict[str, bool]:
        out = {name: self.grade(name) is not None for name in MEASURED_BY}
        out["asymmetric_septal_hypertrophy"] = self.asymmetric_septal
        out["regional_wall_motion_abnormality"] = self.rwma_territory is not None
        out["apical_aneurysm"] = self.apical_aneurysm
        out["lv_thrombus"] = self.lv_thrombus
        out["lge_ischemic"] = self.lge_ischemic is not None
        out["lge_nonischemic"] = self.lge_nonischemic is not None
        return {name: out[name] for name in FINDINGS}

    def grade(self, finding: str) -> str | None:
        """mild / moderate / severe, or None when the measurement is normal."""
        value = self.measurements.value(MEASURED_BY[finding])
        if finding in EF_CUTS:
            cuts = EF_CUTS[finding]
            hits = [value <= cut for cut in cuts]
        else:
            hits = [value >= cut for cut in GRADE_CUTS[finding]]
        if not hits[0]:
            return None
        return ("mild", "moderate", "severe")[sum(hits) - 1]

    @property
    def grades(self) -> dict[str, str]:
        return {f: g for f in MEASURED_BY if (g := self.grade(f)) is not None}

    def truth(self) -> dict[str, Any]:
        details = {
            "rwma_territory": self.rwma_territory,
            "rwma_kind": self.rwma_kind,
            "lge_ischemic": self.lge_ischemic,
            "lge_ischemic_territory": self.lge_ischemic_territory,
            "lge_nonischemic": self.lge_nonischemic,
        }
        return {
            "diagnosis": self.diagnosis,
            "findings": self.findings,
            "grades": self.grades,
            "details": {k: v for k, v in details.items() if v is not None},
            "measurements": self.measurements.as_dict(),
        }


def _in_grade(rng: np.random.Generator, finding: str, grade: str) -> float:
    """A measurement value inside the band of ``grade`` for ``finding``."""
    index = ("mild", "moderate", "severe").index(grade)
    if finding in EF_CUTS:
        cuts = EF_CUTS[finding]
        high = cuts[index] - 0.5
        low = cuts[index + 1] + 0.5 if index < 2 else 15.0
    else:
        cuts = GRADE_CUTS[finding]
        low = cuts[index] + 0.5
        span = {"pericardial_effusion": 8.0}.get(finding, cuts[1] - cuts[0])
        high = cuts[index + 1] - 0.5 if index < 2 else cuts[2] + span
    return float(rng.uniform(low, high))


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    p = np.array([options[n] for n in names])
    return str(rng.choice(names, p=p / p.sum()))


def sample_case(rng: np.random.Generator, diagnosis: str | None = None) -> Case:
    """One patient's first study, with findings co-occurring the way diseases do."""
    dx = diagnosis or _pick(rng, PREVALENCE)
    sex = "M" if rng.random() < (0.7 if dx in ("icm", "athlete", "hcm") else 0.55) else "F"
    age = int(
        np.clip(
            rng.normal(
                {
                    "athlete": 27,
                    "arvc": 38,
                    "hcm": 48,
                    "pericarditis": 45,
                    "normal": 46,
                    "dcm": 55,
                    "icm": 64,
                    "amyloidosis": 72,
                }[dx],
                9,
            ),
            16,
            92,
        )
    )
    bsa = float(np.clip(rng.normal(2.0 if sex == "M" else 1.75, 0.15), 1.4, 2.5))
    wall = float(rng.uniform(8.0, 11.0) if sex == "M" else rng.uniform(7.0, 10.0))
    m: dict[str, float] = {
        "bsa": bsa,
        "heart_rate": float(rng.integers(55, 85)),
        "lvedv": bsa * rng.uniform(62, 95),
        "lvef": rng.uniform(58, 72),
        "rvedv": bsa * rng.uniform(65, 100),
        "rvef": rng.uniform(50, 65),
        "septal_mm": wall,
        "lateral_mm": wall * rng.uniform(0.9, 1.05),
        "la_diameter_mm": rng.uniform(28, 39),
        "aortic_root_mm": rng.uniform(27, 36) + (3 if sex == "M" else 0),
        "effusion_mm": rng.uniform(0, 1.5),
    }
    m["aortic_root_mm"] = min(m["aortic_root_mm"], 38.0)
    case: dict[str, Any] = {}

    def grade_of(weights: tuple[float, float, float]) -> str:
        return _pick(rng, dict(zip(("mild", "moderate", "severe"), weights, strict=True)))

    def set_finding(finding: str, weights: tuple[float, float, float]) -> None:
        value = _in_grade(rng, finding, grade_of(weights))
        key = MEASURED_BY[finding]
        if key in ("lvedvi", "rvedvi"):
            m[key[:5]] = value * bsa
        elif key == "max_wall_mm":
            m["septal_mm"] = value
            m["lateral_mm"] = value * rng.uniform(0.85, 1.0)
        else:
            m[key] = value

    def maybe(p: float) -> bool:
        return bool(rng.random() < p)

    if dx == "normal":
        if maybe(0.05):
            set_finding("la_enlargement", (1, 0, 0))
        if maybe(0.05):
            set_finding("aortic_root_dilation", (1, 0, 0))
    elif dx == "dcm":
        set_finding("lv_systolic_dysfunction", (0.25, 0.4, 0.35))
        if maybe(0.9):
            set_finding("lv_dilation", (0.3, 0.35, 0.35))
        m["septal_mm"] = m["lateral_mm"] = wall * rng.uniform(0.75, 0.95)
        if maybe(0.35):
            case["lge_nonischemic"] = "midwall"
        if maybe(0.3):
            set_finding("rv_systolic_dysfunction", (0.5, 0.35, 0.15))
        if maybe(0.2):
            set_finding("rv_dilation", (0.6, 0.3, 0.1))
        if maybe(0.5):
            set_finding("la_enlargement", (0.5, 0.35, 0.15))
        case["lv_thrombus"] = maybe(0.05)
    elif dx == "icm":
        territory = _pick(rng, {"lad": 0.5, "rca": 0.3, "lcx": 0.2})
        case["rwma_territory"] = territory
        case["rwma_kind"] = _pick(rng, {"hypokinetic": 0.45, "akinetic": 0.45, "dyskinetic": 0.1})
        if maybe(0.95):
            transmural = case["rwma_kind"] != "hypokinetic" and maybe(0.7)
            case["lge_ischemic"] = "transmural" if transmural else "subendocardial"
            case["lge_ischemic_territory"] = territory
        if maybe(0.8):
            set_finding("lv_systolic_dysfunction", (0.35, 0.4, 0.25))
        else:
            m["lvef"] = rng.uniform(56, 62)
        if maybe(0.5):
            set_finding("lv_dilation", (0.5, 0.3, 0.2))
        if territory == "lad" and maybe(0.35):
            case["apical_aneurysm"] = True
            case["rwma_kind"] = "dyskinetic"
            case["lge_ischemic"] = "transmural"
            case["lge_ischemic_territory"] = "lad"
        case["lv_thrombus"] = maybe(0.3 if case.get("apical_aneurysm") else 0.04)
        if maybe(0.3):
            set_finding("la_enlargement", (0.6, 0.3, 0.1))
        if territory == "rca" and maybe(0.3):
            set_finding("rv_systolic_dysfunction", (0.6, 0.3, 0.1))
    elif dx == "hcm":
        set_finding("lv_hypertrophy", (0.1, 0.45, 0.45))
        if maybe(0.75):
            case["asymmetric_septal"] = True
            m["septal_mm"] = max(m["septal_mm"], 15.5)
            m["lateral_mm"] = min(wall * rng.uniform(1.0, 1.2), m["septal_mm"] / 1.5)
        else:
            m["lateral_mm"] = m["septal_mm"] * rng.uniform(0.9, 1.0)
        m["lvef"] = rng.uniform(62, 78)
        m["lvedv"] = bsa * rng.uniform(55, 80)
        if maybe(0.6):
            case["lge_nonischemic"] = "patchy"
        if maybe(0.55):
            set_finding("la_enlargement", (0.5, 0.35, 0.15))
    elif dx == "amyloidosis":
        set_finding("lv_hypertrophy", (0.35, 0.5, 0.15))
        m["lateral_mm"] = m["septal_mm"] * rng.uniform(0.92, 1.0)
        m["lvedv"] = bsa * rng.uniform(50, 72)
        if maybe(0.9):
            case["lge_nonischemic"] = "diffuse"
        if maybe(0.5):
            set_finding("pericardial_effusion", (0.8, 0.2, 0.0))
        if maybe(0.8):
            set_finding("la_enlargement", (0.4, 0.4, 0.2))
        if maybe(0.4):
            set_finding("lv_systolic_dysfunction", (0.8, 0.2, 0.0))
        if maybe(0.25):
            set_finding("rv_systolic_dysfunction", (0.7, 0.3, 0.0))
    elif dx == "arvc":
        if maybe(0.9):
            set_finding("rv_dilation", (0.3, 0.4, 0.3))
        set_finding("rv_systolic_dysfunction", (0.3, 0.4, 0.3))
        if maybe(0.3):
            case["lge_nonischemic"] = "midwall"
        if maybe(0.15):
            set_finding("lv_systolic_dysfunction", (0.8, 0.2, 0.0))
    elif dx == "pericarditis":
        if maybe(0.85):
            set_finding("pericardial_effusion", (0.45, 0.4, 0.15))
        if maybe(0.4):
            case["lge_nonischemic"] = "subepicardial"
    elif dx == "athlete":
        # Hard negatives: a large heart with normal function.
        m["lvef"] = rng.uniform(56, 66)
        if maybe(0.65):
            set_finding("lv_dilation", (0.85, 0.15, 0.0))
        if maybe(0.55):
            set_finding("rv_dilation", (0.85, 0.15, 0.0))
        if maybe(0.3):
            set_finding("lv_hypertrophy", (1.0, 0.0, 0.0))
            m["lateral_mm"] = m["septal_mm"] * rng.uniform(0.92, 1.0)
        if maybe(0.3):
            set_finding("la_enlargement", (1.0, 0.0, 0.0))
        m["heart_rate"] = float(rng.integers(42, 58))
    if dx != "normal" and maybe(0.06):
        set_finding("aortic_root_dilation", (0.7, 0.25, 0.05))

    measurements = Measurements(
        **{k: float(v) for k, v in m.items() if k != "heart_rate"}, heart_rate=int(m["heart_rate"])
    )
    return Case(diagnosis=dx, sex=sex, age=age, measurements=measurements, **case)


def follow_up(rng: np.random.Generator, prior: Case, years: float) -> Case:
    """The same patient later: measurements drift, findings evolve with the disease."""
    m = prior.measurements
    delta_ef = {"dcm": rng.normal(4, 8), "icm": rng.normal(-2, 5)}.get(
        prior.diagnosis, rng.normal(0, 2)
    )
    lvef = float(np.clip(m.lvef + delta_ef, 12, 78))
    remodel = 1 + rng.normal(0.0, 0.05) - (0.05 if delta_ef > 4 else 0.0)
    effusion = m.effusion_mm
    if prior.diagnosis == "pericarditis":
        effusion = float(max(0.0, effusion * rng.uniform(0.0, 0.6)))  # treated: it resolves
    updated = replace(
        m,
        lvef=lvef,
        lvedv=float(m.lvedv * remodel),
        effusion_mm=effusion,
        heart_rate=int(np.clip(m.heart_rate + rng.integers(-8, 9), 40, 110)),
        la_diameter_mm=float(m.la_diameter_mm + rng.normal(0.3, 1.0) * years),
    )
    thrombus = prior.lv_thrombus and rng.random() < 0.3  # anticoagulated: usually resolves
    return replace(prior, age=prior.age + round(years), measurements=updated, lv_thrombus=thrombus)
