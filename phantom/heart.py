"""A beating 3-D heart, evaluated at arbitrary points in its own frame.

Heart frame (mm): ``s`` along the LV long axis from the end-diastolic mitral plane
toward the apex, ``u`` toward the septum/RV, ``v = u x a`` (the anterior wall). The angle
``theta = atan2(v, u)`` is 0 at the septum, +90 deg anterior, 180 lateral, -90 inferior.

- LV: truncated prolate spheroid cavity inside a thick wall; radial contraction per
  angle (regional kinesis), base descent toward the apex (longitudinal shortening),
  wall thickening that conserves myocardial cross-section area.
- RV: an ellipsoid wrapped around the septum minus the LV, so its cavity is a crescent.
- Atria, aortic root, pulmonary trunk; epicardial fat, effusion, pericardium.
- Pathology: thickness pattern, kinesis pattern, apical aneurysm, thrombus, scar.

Sizes are solved so that the volumes of this model equal the case's EDV and EF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phantom.case import Case
from phantom.motion import atrial_filling, end_systole, ventricular_emptying

Float = NDArray[np.floating[Any]]
F = np.float32

# Relative signal per tissue: bSSFP cine and inversion-recovery LGE (myocardium nulled).
CINE = {
    "blood": 1.0,
    "myo": 0.26,
    "fat": 0.86,
    "fluid": 0.97,
    "pericardium": 0.06,
    "thrombus": 0.30,
    "valve": 0.18,
    "wall": 0.30,
    "scar": 0.26,
}
LGE = {
    "blood": 0.40,
    "myo": 0.035,
    "fat": 0.55,
    "fluid": 0.10,
    "pericardium": 0.12,
    "thrombus": 0.03,
    "valve": 0.10,
    "wall": 0.10,
    "scar": 1.0,
}
EQUATOR = 0.2  # the cavity is widest 20 % of its length below the mitral plane
LVOT_ANGLE = np.deg2rad(56.0)  # where the aortic root leaves the LV base (from the septum)


def _ramp(inside_margin: Float, width: float) -> Float:
    """Soft membership: 1 well inside (margin > 0), 0 outside, linear over ``width`` mm."""
    return np.clip(0.5 + inside_margin / width, 0.0, 1.0).astype(F)


def _window(theta: Float, centre_deg: float, half_width_deg: float) -> Float:
    """A smooth angular window (1 at centre, 0 beyond half width)."""
    d = np.angle(np.exp(1j * (theta - np.deg2rad(centre_deg))))
    x = np.clip(np.abs(d) / np.deg2rad(half_width_deg), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * x)).astype(F)


def _ellipsoid_distance(
    p: tuple[Float, Float, Float],
    centre: tuple[float, float, float],
    semi: tuple[float, float, float],
) -> Float:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid (first-order)."""
    q = [(p[i] - centre[i]) / semi[i] for i in range(3)]
    rho = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2) + 1e-6
    grad = np.sqrt(sum((q[i] / semi[i]) ** 2 for i in range(3))) / rho + 1e-6
    return ((rho - 1.0) / grad).astype(F)


# Coronary territories as (angle centre, half width, longitudinal extent) in the heart frame.
TERRITORY = {
    "lad": (60.0, 95.0, (0.25, 1.0)),  # anterior + anteroseptal, and the apex
    "rca": (-70.0, 70.0, (0.0, 0.75)),  # inferior + inferoseptal, basal to mid
    "lcx": (-165.0, 60.0, (0.0, 0.75)),  # lateral / inferolateral
}
KINESIS = {"hypokinetic": 0.45, "akinetic": 0.0, "dyskinetic": -0.22}


@dataclass
class HeartModel:
    """Geometry and motion parameters of one heart; ``evaluate`` renders it."""

    heart_rate: float
    length: float  # LV cavity length at end-diastole
    radius: float  # LV cavity equatorial radius at end-diastole
    contraction: float  # radial shortening fraction at end-systole (normal segments)
    long_shortening: float  # fraction of cavity length lost by base descent
    t_septal: float
    t_lateral: float
    t_apex: float
    asymmetric: bool
    territory: str | None
    kinesis: float  # regional contraction factor inside the territory
    aneurysm_radius: float  # 0: none
    thrombus_radius: float  # 0: none
    rv_offset: float
    rv_semi: tuple[float, float, float]  # (u, v, along-axis) at end-diastole
    rv_contraction: float
    la_semi: tuple[float, float, float]
    ra_semi: tuple[float, float, float]
    root_diameter: float
    effusion: float
    epi_fat: float
    scar_ischemic: str | None
    scar_territory: str | None
    scar_nonischemic: str | None
    scar_seed: int

    # ---- LV -------------------------------------------------------------------------
    def kinesis_factor(self, theta: Float, xi: Float) -> Float:
        if self.territory is None:
            return np.ones_like(theta, dtype=F)
        centre, half, (lo, hi) = TERRITORY[self.territory]
        w = _window(theta, centre, half)
        if self.territory == "lad":
            w = np.maximum(w, np.clip((xi - 0.7) / 0.15, 0.0, 1.0))  # apical cap
        longitudinal = np.clip(np.minimum((xi - lo) / 0.1 + 1, (hi - xi) / 0.1 + 1), 0, 1)
        w = w * longitudinal
        return (1.0 - w * (1.0 - self.kinesis)).astype(F)

    def thickness(self, theta: Float, xi: Float) -> Float:
        sept = _window(theta, 15.0, 80.0) if self.asymmetric else np.ones_like(theta)
        t = self.t_lateral + (self.t_septal - self.t_lateral) * sept
        taper = 1.0 - 0.3 * xi**2  # thinner toward the apex
        if self.aneurysm_radius > 0:
            taper = taper * (1.0 - 0.75 * np.clip((xi - 0.55) / 0.25, 0.0, 1.0))
        return (t * taper).astype(F)

    def lv_radii(self, s: Float, theta: Float, e: Float) -> tuple[Float, Float, Float, Float]:
        """(endocardial radius, epicardial radius, wall depth scale, xi) at (s, theta)."""
        base = self.long_shortening * self.length * e
        cav_len = self.length - base
        semi = cav_len * (1 - EQUATOR)
        centre = base + EQUATOR * cav_len
        xi = np.clip((s - base) / cav_len, 0.0, 1.2)
        q = (s - centre) / semi
        k = self.kinesis_factor(theta, xi)
        r_eq = self.radius * (1.0 - self.contraction * k * e)
        t = self.thickness(theta, xi)
        wall_area = (self.radius + t) ** 2 - self.radius**2
        r_eq_epi = np.sqrt(r_eq**2 + wall_area)
        thickening = float(np.mean(r_eq_epi - r_eq)) / float(np.mean(t) + 1e-6)
        semi_epi = semi + self.t_apex * thickening
        above_base = s >= base
        r_endo = np.where(above_base, r_eq * np.sqrt(np.clip(1 - q**2, 0, 1)), 0.0)
        q_epi = (s - centre) / semi_epi
        r_epi = np.where(above_base, r_eq_epi * np.sqrt(np.clip(1 - q_epi**2, 0, 1)), 0.0)
        return r_endo.astype(F), r_epi.astype(F), xi.astype(F), base.astype(F)

    def aneurysm(self, s: Float, r: Float, e: Float) -> tuple[Float, Float]:
        """Signed margins (mm, > 0 inside) of the aneurysm cavity and its thin wall."""
        if self.aneurysm_radius <= 0:
            none = np.full(np.broadcast(s, r, e).shape, -1e3, dtype=F)
            return none, none
        radius = self.aneurysm_radius * (1.0 + 0.07 * e)  # dyskinetic: bulges in systole
        centre = self.length - 0.35 * self.aneurysm_radius
        dist = np.sqrt((s - centre) ** 2 + r**2)
        return (radius - dist).astype(F), (radius + 2.0 - dist).astype(F)

    # ---- whole heart ----------------------------------------------------------------
    def evaluate(
        self, s: Float, u: Float, v: Float, taus: Float, contrast: str, pixel: float
    ) -> tuple[Float, Float]:
        """Signal and heart-region membership, shape (phases, points)."""
        table = CINE if contrast == "cine" else LGE
        s, u, v = (x[None, :].astype(F) for x in (s, u, v))
        e = ventricular_emptying(taus, self.heart_rate)[:, None]
        atr = atrial_filling(taus, self.heart_rate)[:, None]
        r = np.sqrt(u**2 + v**2)
        theta = np.arctan2(v, u)
        w = max(pixel, 0.8)

        r_endo, r_epi, xi, base = self.lv_radii(s, theta, e)
        an_cav, an_wall = self.aneurysm(s, r, e)
        lv_cav = np.maximum(_ramp(r_endo - r, w) * (s >= base), _ramp(an_cav, w))
        lv_all = np.maximum(_ramp(r_epi - r, w) * (s >= base), _ramp(an_wall, w))

        # RV: ellipsoid around the septum, minus the LV (crescent); free wall 3.5 mm.
        rv_e = 1.0 - self.rv_contraction * e
        rv_base = 1.25 * self.long_shortening * self.rv_semi[2] * e
        rv_semi = (self.rv_semi[0] * rv_e, self.rv_semi[1] * rv_e, self.rv_semi[2])
        d_rv = self._ell(s - 0.8 * self.rv_semi[2], u - self.rv_offset, v, rv_semi)
        rv_above = s >= rv_base
        rv_cav = _ramp(-d_rv, w) * rv_above * (1.0 - lv_all)
        rv_cav = rv_cav * _ramp(r - r_epi - 1.0, w)  # a 1 mm gap: the septum is LV wall
        rv_all = np.maximum(_ramp(3.5 - d_rv, w) * rv_above, rv_cav)

        # Atria above the mitral/tricuspid planes; they fill as the ventricles empty.
        la_scale = 0.88 + 0.24 * atr
        la_semi = tuple(a * la_scale for a in self.la_semi)
        la_c = (-self.la_semi[2] * 0.85 + base, -0.15 * self.radius, -0.35 * self.la_semi[1])
        d_la = self._ell3(s, u, v, la_c, la_semi)
        ra_c = (
            -self.ra_semi[2] * 0.8 + rv_base,
            self.rv_offset + 0.45 * self.rv_semi[0],
            -0.1 * self.ra_semi[1],
        )
        d_ra = self._ell3(s, u, v, ra_c, tuple(a * la_scale for a in self.ra_semi))
        la_cav, ra_cav = _ramp(-d_la, w), _ramp(-d_ra, w)
        atria_all = np.maximum(_ramp(2.0 - d_la, w), _ramp(2.0 - d_ra, w))

        # Aortic root from the anteroseptal LV base, up and to the right.
        # It lies in the three-chamber plane (see geometry.long_axis_directions).
        ao_start = (
            0.0,
            0.54 * self.radius * np.cos(LVOT_ANGLE),
            0.54 * self.radius * np.sin(LVOT_ANGLE),
        )
        ao_dir = (-0.8, 0.38 * np.cos(LVOT_ANGLE), 0.38 * np.sin(LVOT_ANGLE))
        ao_d = self._vessel_distance(s, u, v, ao_start, ao_dir, self.root_diameter / 2, 75.0)
        pa_d = self._vessel_distance(
            s,
            u,
            v,
            (-2.0, self.rv_offset + 0.2 * self.rv_semi[0], 0.9 * self.rv_semi[1]),
            (-0.75, -0.45, -0.15),
            13.0,
            60.0,
        )
        ao = _ramp(-ao_d, w)
        pa = _ramp(-pa_d, w)
        vessels_all = np.maximum(_ramp(1.5 - ao_d, w), _ramp(1.5 - pa_d, w))

        # Distance to the heart surface, for fat, effusion and pericardium layers.
        rim = self.radius + self.t_lateral
        cav_len = self.length - base
        epi_semi = (rim, rim, cav_len * (1 - EQUATOR) + self.t_apex)
        lv_epi_d = np.where(
            s >= base,
            self._ell(s - base - EQUATOR * cav_len, u, v, epi_semi),
            np.sqrt((base - s) ** 2 + np.maximum(r - rim, 0.0) ** 2),  # the top disc
        )
        surface = np.minimum.reduce([lv_epi_d, d_rv - 3.5, d_la - 2.0, d_ra - 2.0])
        groove = np.exp(-(((s - base) / 12.0) ** 2))  # fat collects in the AV groove
        fat_in = self.epi_fat * (0.1 + 2.5 * groove)
        gravity = 0.55 + 0.45 * np.clip(-np.sin(theta), 0.0, 1.0)  # posterior-inferior
        # Physiological pericardial fluid (< 2 mm) is not visible on cine.
        eff = max(self.effusion - 1.5, 0.0) * gravity * (s > -10)
        peri_in = fat_in + eff
        # Paracardial fat outside the pericardium: in front only (lungs lie behind).
        para = 2.0 * self.epi_fat * np.clip(np.sin(theta), 0.0, 1.0)
        region = _ramp(peri_in + 1.2 + para - surface, w)

        sig = np.full(np.broadcast(s, e).shape, table["fat"], dtype=F)
        sig = self._paint(
            sig,
            _ramp(surface - peri_in, w) * _ramp(peri_in + 1.2 - surface, w),
            self._pericardium_signal(table),
        )
        sig = self._paint(
            sig, _ramp(surface - fat_in, w) * _ramp(peri_in - surface, w), table["fluid"]
        )
        sig = self._paint(sig, np.maximum(atria_all, vessels_all), table["wall"])
        sig = self._paint(sig, np.maximum(la_cav, ra_cav), table["blood"])
        sig = self._paint(sig, np.maximum(ao, pa), table["blood"])
        sig = self._paint(sig, rv_all, table["myo"])
        sig = self._paint(sig, rv_cav, table["blood"])
        myo_signal = self._myocardium_signal(table, s, theta, r, r_endo, r_epi, xi, contrast)
        sig = sig * (1 - lv_all) + myo_signal * lv_all
        sig = self._paint(sig, lv_cav, self._blood_signal(table, contrast))
        sig = self._paint(
            sig,
            self._papillary(s, u, v, r_endo, base, w) * lv_cav,
            table["myo"] if contrast == "cine" else table["myo"] * 2,
        )
        sig = self._paint(sig, self._thrombus(s, r, w), table["thrombus"])
        # Closed mitral valve during systole: a thin dark line across the base.
        closed = (np.mod(taus, 1.0) < end_systole(self.heart_rate))[:, None]
        valve = _ramp(0.8 - np.abs(s - base), w) * (r < self.radius) * closed
        sig = self._paint(sig, valve, table["valve"])
        return sig.astype(F), np.maximum(region, np.maximum(lv_all, rv_all)).astype(F)

    # ---- helpers --------------------------------------------------------------------
    @staticmethod
    def _paint(sig: Float, membership: Float, value: float | Float) -> Float:
        return (sig * (1 - membership) + value * membership).astype(F)

    @staticmethod
    def _ell(ds: Float, du: Float, dv: Float, semi: tuple[Float | float, ...]) -> Float:
        return _ellipsoid_distance((du, dv, ds), (0.0, 0.0, 0.0), (semi[0], semi[1], semi[2]))  # type: ignore[arg-type]

    def _ell3(
        self,
        s: Float,
        u: Float,
        v: Float,
        centre: tuple[Float | float, ...],
        semi: tuple[Float | float, ...],
    ) -> Float:
        return self._ell(s - centre[0], u - centre[1], v - centre[2], semi)

    @staticmethod
    def _vessel_distance(
        s: Float,
        u: Float,
        v: Float,
        start: tuple[float, float, float],
        direction: tuple[float, float, float],
        radius: float,
        length: float,
    ) -> Float:
        d = np.array(direction, dtype=F)
        d /= np.linalg.norm(d)
        ps, pu, pv = s - start[0], u - start[1], v - start[2]
        along = ps * d[0] + pu * d[1] + pv * d[2]
        perp = np.sqrt(np.maximum(ps**2 + pu**2 + pv**2 - along**2, 0.0))
        # Sinuses of Valsalva: widest 12 mm above the annulus.
        profile = radius * (0.82 + 0.18 * np.exp(-(((along - 12.0) / 10.0) ** 2)))
        out = np.maximum(perp - profile, np.maximum(-along, along - length))
        return out.astype(F)

    def _pericardium_signal(self, table: dict[str, float]) -> float:
        inflamed = table is LGE and self.scar_nonischemic == "subepicardial"
        return 0.75 if inflamed else table["pericardium"]

    def _blood_signal(self, table: dict[str, float], contrast: str) -> float:
        # Amyloid: gadolinium leaves the blood early, so the blood pool is dark on LGE.
        if contrast == "lge" and self.scar_nonischemic == "diffuse":
            return 0.18
        return table["blood"]

    def _myocardium_signal(
        self,
        table: dict[str, float],
        s: Float,
        theta: Float,
        r: Float,
        r_endo: Float,
        r_epi: Float,
        xi: Float,
        contrast: str,
    ) -> Float:
        base = np.full(np.broadcast(s, r).shape, table["myo"], dtype=F)
        if contrast == "cine":
            return base
        depth = np.clip((r - r_endo) / np.maximum(r_epi - r_endo, 1.0), 0.0, 1.0)
        scar = self.scar_fraction(theta, xi, depth)
        return (base * (1 - scar) + table["scar"] * scar).astype(F)

    def scar_fraction(self, theta: Float, xi: Float, depth: Float) -> Float:
        """Enhancing fraction of the myocardium (0-1) at (angle, level, wall depth)."""
        scar = np.zeros(np.broadcast(theta, xi, depth).shape, dtype=F)
        if self.scar_ischemic and self.scar_territory:
            centre, half, (lo, hi) = TERRITORY[self.scar_territory]
            w = _window(theta, centre, half * 0.8)
            if self.scar_territory == "lad":
                w = np.maximum(w, np.clip((xi - 0.75) / 0.1, 0, 1))
            w = w * (xi >= lo) * (xi <= hi)
            reach = 1.05 if self.scar_ischemic == "transmural" else 0.45
            scar = np.maximum(scar, w * np.clip((reach - depth) / 0.12, 0, 1))
        pattern = self.scar_nonischemic
        if pattern == "midwall":  # septal stripe
            w = _window(theta, 0.0, 55.0) * (xi < 0.8)
            scar = np.maximum(scar, w * np.clip(1 - np.abs(depth - 0.5) / 0.18, 0, 1))
        elif pattern == "patchy":  # RV insertion points of a hypertrophied septum
            rng = np.random.default_rng(self.scar_seed)
            for _ in range(3):
                c, lv = rng.choice([60.0, -60.0, 20.0]), rng.uniform(0.1, 0.7)
                blob = _window(theta, c + rng.normal(0, 10), 30.0)
                blob = blob * np.exp(-(((xi - lv) / 0.15) ** 2))
                scar = np.maximum(scar, blob * np.clip(1 - np.abs(depth - 0.5) / 0.35, 0, 1))
        elif pattern == "diffuse":  # global subendocardial (amyloid)
            scar = np.maximum(scar, 0.65 * np.clip((0.6 - depth) / 0.2, 0, 1))
        elif pattern == "subepicardial":  # lateral wall, outer layer
            w = _window(theta, -160.0, 60.0)
            scar = np.maximum(scar, w * np.clip((depth - 0.6) / 0.15, 0, 1))
        return scar.astype(F)

    def _papillary(
        self, s: Float, u: Float, v: Float, r_endo: Float, base: Float, w: float
    ) -> Float:
        out = np.zeros(np.broadcast(s, r_endo).shape, dtype=F)
        for angle in (140.0, -115.0):
            a = np.deg2rad(angle)
            rc = 0.55 * r_endo
            d = np.sqrt((u - rc * np.cos(a)) ** 2 + (v - rc * np.sin(a)) ** 2)
            level = (s > base + 0.3 * self.length) & (s < 0.78 * self.length)
            out = np.maximum(out, _ramp(3.5 - d, w) * level)
        return out

    def _thrombus(self, s: Float, r: Float, w: float) -> Float:
        if self.thrombus_radius <= 0:
            return np.zeros(np.broadcast(s, r).shape, dtype=F)
        if self.aneurysm_radius > 0:
            centre = self.length - 0.35 * self.aneurysm_radius + 0.45 * self.aneurysm_radius
        else:
            centre = self.length - 0.8 * self.thrombus_radius
        d = np.sqrt((s - centre) ** 2 + r**2)
        return _ramp(self.thrombus_radius - d, w)

    # ---- volumes (truth) ------------------------------------------------------------
    def lv_volume(self, e: float, grid: float = 2.0) -> float:
        """LV blood volume (ml) at emptying ``e``, integrated over rings."""
        s = np.arange(-5.0, self.length + self.aneurysm_radius + 5, grid, dtype=F)
        theta = np.linspace(-np.pi, np.pi, 48, endpoint=False, dtype=F)
        ss, tt = np.meshgrid(s, theta, indexing="ij")
        ee = np.full_like(ss, e)
        r_endo, _, _, base = self.lv_radii(ss, tt, ee)
        r_endo = np.where(ss >= base, r_endo, 0)
        if self.aneurysm_radius > 0:
            radius = self.aneurysm_radius * (1 + 0.07 * e)
            centre = self.length - 0.35 * self.aneurysm_radius
            r_an = np.sqrt(np.clip(radius**2 - (ss - centre) ** 2, 0, None))
            r_endo = np.maximum(r_endo, r_an)
        area = 0.5 * np.mean(r_endo**2, axis=1) * 2 * np.pi
        return float(np.sum(area) * grid / 1000.0)

    def rv_volume(self, e: float, grid: float = 3.0) -> float:
        """RV blood volume (ml) at emptying ``e``, on a voxel grid (it is LV-shaped)."""
        ext = self.rv_offset + self.rv_semi[0] + 5
        u = np.arange(-self.rv_semi[1], ext, grid, dtype=F)
        v = np.arange(-self.rv_semi[1] - 5, self.rv_semi[1] + 5, grid, dtype=F)
        s = np.arange(-10, 2 * self.rv_semi[2] + 10, grid, dtype=F)
        ss, uu, vv = (x.ravel() for x in np.meshgrid(s, u, v, indexing="ij"))
        r = np.sqrt(uu**2 + vv**2)
        theta = np.arctan2(vv, uu)
        ee = np.full_like(ss, e)
        _, r_epi, _, base = self.lv_radii(ss, theta, ee)
        rv_e = 1.0 - self.rv_contraction * e
        rv_base = 1.25 * self.long_shortening * self.rv_semi[2] * e
        semi = (self.rv_semi[0] * rv_e, self.rv_semi[1] * rv_e, self.rv_semi[2])
        d = self._ell(ss - 0.8 * self.rv_semi[2], uu - self.rv_offset, vv, semi)
        lv_d = np.where(ss >= base, r - r_epi, 1e3)
        inside = (d < 0) & (ss >= rv_base) & (lv_d > 1.0)
        return float(inside.sum() * grid**3 / 1000.0)


def _bisect(f: object, lo: float, hi: float, target: float, steps: int = 30) -> float:
    func = f  # increasing function of its argument
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if func(mid) < target:  # type: ignore[operator]
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def build_heart(case: Case, rng: np.random.Generator) -> HeartModel:
    """Solve a heart whose volumes and walls match the case's measurements."""
    m = case.measurements
    # Cavity length / equatorial radius: ~3.2 in normal hearts, rounder when dilated.
    dilation = m.lvedvi / 80.0
    sphericity = float(np.clip(3.2 - 1.0 * (dilation - 1.0), 2.0, 3.4))
    ef = m.lvef / 100.0
    heart = HeartModel(
        heart_rate=m.heart_rate,
        length=sphericity * 25.0,
        radius=25.0,
        contraction=0.3,
        long_shortening=float(np.clip(0.16 * ef / 0.62, 0.05, 0.18)),
        t_septal=m.septal_mm,
        t_lateral=m.lateral_mm,
        t_apex=0.7 * min(m.septal_mm, m.lateral_mm),
        asymmetric=case.asymmetric_septal,
        territory=case.rwma_territory,
        kinesis=KINESIS.get(case.rwma_kind or "", 1.0),
        aneurysm_radius=float(rng.uniform(13, 20)) if case.apical_aneurysm else 0.0,
        thrombus_radius=float(rng.uniform(6, 10)) if case.lv_thrombus else 0.0,
        rv_offset=0.0,
        rv_semi=(1.0, 1.0, 1.0),
        rv_contraction=0.2,
        la_semi=(0.6 * m.la_diameter_mm, 0.5 * m.la_diameter_mm, 0.55 * m.la_diameter_mm),
        ra_semi=(22.0, 24.0, 24.0),
        root_diameter=m.aortic_root_mm,
        effusion=m.effusion_mm,
        epi_fat=float(rng.uniform(1.0, 3.5)),
        scar_ischemic=case.lge_ischemic,
        scar_territory=case.lge_ischemic_territory,
        scar_nonischemic=case.lge_nonischemic,
        scar_seed=int(rng.integers(1 << 30)),
    )
    if case.apical_aneurysm:
        heart.t_apex = 2.0

    # Scale the LV to its EDV (volume grows with the cube of a size factor) ...
    unit = heart.lv_volume(0.0)
    scale = (m.lvedv / unit) ** (1 / 3)
    heart.length *= scale
    heart.radius *= scale
    heart.aneurysm_radius *= scale
    # ... then find the radial contraction that gives its EF.
    target_esv = m.lvedv * (1 - ef)

    def esv(c: float) -> float:
        heart.contraction = c
        return -heart.lv_volume(1.0)

    heart.contraction = _bisect(esv, 0.0, 0.85, -target_esv, steps=12)

    # RV: wraps the septum; sized to RVEDV, contraction to RVEF.
    outer = heart.radius + heart.t_septal
    heart.rv_offset = 0.8 * outer

    def rv_size(k: float) -> float:
        heart.rv_semi = (k * 0.62 * outer, k * 1.1 * outer, 0.47 * heart.length)
        return heart.rv_volume(0.0)

    k = _bisect(rv_size, 0.5, 2.6, m.rvedv, steps=11)
    rv_size(k)
    rv_target = m.rvedv * (1 - m.rvef / 100.0)

    def rv_esv(c: float) -> float:
        heart.rv_contraction = c
        return -heart.rv_volume(1.0)

    heart.rv_contraction = _bisect(rv_esv, 0.0, 0.7, -rv_target, steps=10)
    heart.ra_semi = (0.55 * heart.rv_semi[1], 0.55 * heart.rv_semi[1], 0.5 * heart.rv_semi[1])
    return heart
