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

import math
from dataclasses import dataclass, field, fields
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
    out = np.multiply(inside_margin, F(1.0 / width), dtype=F)
    out += F(0.5)
    return np.clip(out, 0.0, 1.0, out=out)


def _window(theta: Float, centre_deg: float, half_width_deg: float) -> Float:
    """A smooth angular window (1 at centre, 0 beyond half width)."""
    # Wrapped angular distance in float32 (a complex exponential costs far more).
    d = np.abs(np.mod(theta - F(math.radians(centre_deg) - math.pi), F(2 * math.pi)) - F(math.pi))
    x = np.clip(d * F(1.0 / math.radians(half_width_deg)), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(F(math.pi) * x)).astype(F, copy=False)


# An axis-aligned ellipsoid in the heart frame: ((s, u, v) centre, (u, v, s) semi-axes);
# each number a float or one value per phase, shape (phases, 1).
Shape = tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]
# A vessel as a capped tube: (start, direction, radius, length), in (s, u, v) mm.
Vessel = tuple[tuple[float, float, float], tuple[float, float, float], float, float]


def _basis(s: Float, u: Float, v: Float) -> Float:
    """[u^2, v^2, s^2, u, v, s, 1] per point, shape (7, points), from (1, points) rows."""
    return np.concatenate([u * u, v * v, s * s, u, v, s, np.ones_like(s)], axis=0)


def _weights(shapes: list[Shape], phases: int) -> tuple[Float, Float]:
    """Weights on the basis of sum_i (x_i - c_i)^2 / a_i^2 (rho^2) and of the same over
    a_i^4 (|grad rho|^2 rho^2), one row per shape and phase."""
    rho = np.zeros((len(shapes), phases, 7))
    grad = np.zeros((len(shapes), phases, 7))
    for n, ((cs, cu, cv), semi) in enumerate(shapes):
        for i, (c, a) in enumerate(zip((cu, cv, cs), semi, strict=True)):
            c, k = np.ravel(c), np.ravel(a) ** -2.0
            for out, f in ((rho, k), (grad, k * k)):
                out[n, :, i] = f
                out[n, :, 3 + i] = -2.0 * c * f
                out[n, :, 6] += c * c * f
    return rho.reshape(-1, 7).astype(F), grad.reshape(-1, 7).astype(F)


def _ellipsoid_distances(basis: Float, shapes: list[Shape], phases: int) -> list[Float]:
    """Approximate signed distances (mm) to ellipsoids (first order: (rho - 1) / |grad rho|,
    rho the normalised radius), each (phases, points).

    The squares expand on a fixed basis, so every shape at every phase comes out of two
    small matrix products instead of some fifteen array passes per shape."""
    w_rho, w_grad = _weights(shapes, phases)
    return list(np.split(_distances(basis, w_rho, w_grad), len(shapes)))


def _distances(basis: Float, w_rho: Float, w_grad: Float) -> Float:
    """The distances of ``_ellipsoid_distances`` from its weights, stacked by shape."""
    # einsum, not @: OpenBLAS would spread these small products over threads, which is
    # many times slower on a busy machine and not one core's work.
    rho2 = np.einsum("pk,kn->pn", w_rho, basis)
    grad2 = np.einsum("pk,kn->pn", w_grad, basis)
    np.maximum(rho2, 0.0, out=rho2)  # the expansion may round just below zero
    np.maximum(grad2, 1e-12, out=grad2)
    out = rho2 - np.sqrt(rho2)  # (rho - 1) rho
    out /= np.sqrt(grad2, out=grad2)  # |grad rho| rho
    return out


def _near_ellipsoid(
    s: Float,
    u: Float,
    v: Float,
    centre: tuple[float, float, float],
    largest: tuple[float, float, float],
    smallest: tuple[float, float, float],
    distance: float,
    shift: float = 0.0,
) -> NDArray[np.bool_]:
    """Points whose ellipsoid distance may fall below ``distance`` while the semi-axes
    (u, v, s) vary between ``smallest`` and ``largest`` and the centre (s, u, v) moves
    up to ``shift`` mm along s. The first-order distance is at least (rho - 1) times the
    smallest semi-axis, so such points have rho < 1 + distance / min(smallest)."""
    grow = 1.0 + distance / min(smallest)
    a = [x * grow for x in largest]
    cover = 1.0 + 0.5 * shift / a[2]  # a scaled ellipsoid covers the moving centre
    a = [x * cover for x in a]
    cs = centre[0] + 0.5 * shift
    q = ((s - F(cs)) / F(a[2])) ** 2 + ((u - F(centre[1])) / F(a[0])) ** 2
    q += ((v - F(centre[2])) / F(a[1])) ** 2
    return np.asarray(q < 1.0)


def _cap(ds: Float, semi: Float) -> Float:
    """Radius profile of a spheroid along its axis: sqrt(1 - (ds/semi)^2), 0 beyond."""
    q = ds / semi
    q *= q
    np.subtract(1.0, q, out=q)
    np.clip(q, 0.0, 1.0, out=q)
    return np.sqrt(q, out=q)


# Coronary territories as (angle centre, half width, longitudinal extent) in the heart frame.
TERRITORY = {
    "lad": (60.0, 95.0, (0.25, 1.0)),  # anterior + anteroseptal, and the apex
    "rca": (-70.0, 70.0, (0.0, 0.75)),  # inferior + inferoseptal, basal to mid
    "lcx": (-165.0, 60.0, (0.0, 0.75)),  # lateral / inferolateral
}
KINESIS = {"hypokinetic": 0.45, "akinetic": 0.0, "dyskinetic": -0.22}
# A fixed sample of the LV wall (angle, level) for quantities averaged over it.
_WALL_THETA, _WALL_XI = (
    x.ravel()[None, :].astype(F)
    for x in np.meshgrid(np.linspace(-np.pi, np.pi, 48, endpoint=False), np.linspace(0, 1, 12))
)


@dataclass(frozen=True)
class Cycle:
    """What depends only on the phases rendered, not on the points: the same for every
    plane of a series, so it is computed once per series (see ``HeartModel.cycle``)."""

    e: Float  # ventricular emptying, (phases, 1)
    thick: float  # HeartModel.thickening(e)
    w_rho: Float  # chamber-surface weights of _distances, 4 shapes x phases rows
    w_grad: Float

    @property
    def phases(self) -> int:
        return len(self.e)


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
    _cycles: dict[tuple[Any, ...], Cycle] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def cycle(self, taus: Float) -> Cycle:
        """The per-phase state for ``taus``, cached by the phases and every parameter
        (``build_heart`` changes parameters while it solves)."""
        key = (np.asarray(taus).tobytes(), *(getattr(self, f.name) for f in fields(self) if f.init))
        if key not in self._cycles:
            e = ventricular_emptying(taus, self.heart_rate)[:, None]
            atr = atrial_filling(taus, self.heart_rate)[:, None]
            w_rho, w_grad = _weights(self._shapes(e, atr), len(e))
            if len(self._cycles) > 8:  # a study renders two or three phase sets
                self._cycles.clear()
            self._cycles[key] = Cycle(e, self.thickening(e), w_rho, w_grad)
        return self._cycles[key]

    # ---- LV -------------------------------------------------------------------------
    def kinesis_factor(self, theta: Float, xi: Float) -> Float | float:
        if self.territory is None:
            return 1.0
        centre, half, (lo, hi) = TERRITORY[self.territory]
        w = _window(theta, centre, half)
        if self.territory == "lad":
            w = np.maximum(w, np.clip((xi - 0.7) / 0.15, 0.0, 1.0))  # apical cap
        longitudinal = np.clip(np.minimum((xi - lo) / 0.1 + 1, (hi - xi) / 0.1 + 1), 0, 1)
        w = w * longitudinal
        return np.asarray(1.0 - w * (1.0 - self.kinesis), dtype=F)

    def thickness(self, theta: Float, xi: Float) -> Float:
        if self.asymmetric:
            sept = _window(theta, 15.0, 80.0)
            t: Float | float = self.t_lateral + (self.t_septal - self.t_lateral) * sept
        else:
            t = self.t_septal
        taper = 1.0 - 0.3 * xi**2  # thinner toward the apex
        if self.aneurysm_radius > 0:
            taper = taper * (1.0 - 0.75 * np.clip((xi - 0.55) / 0.25, 0.0, 1.0))
        return np.asarray(t * taper, dtype=F)

    def thickening(self, e: Float) -> float:
        """How much farther the epicardium moves at the apex than the wall is thick,
        averaged over the phases ``e`` (shape (phases, 1)) and a fixed sample of the wall,
        so that it does not depend on which pixels are being rendered."""
        k = self.kinesis_factor(_WALL_THETA, _WALL_XI)
        t = self.thickness(_WALL_THETA, _WALL_XI)
        r_eq = self.radius * (1.0 - self.contraction * k * e)
        r_eq_epi = np.sqrt(r_eq**2 + t * (2 * self.radius + t))
        return float(np.mean(r_eq_epi - r_eq)) / float(np.mean(t) + 1e-6)

    def lv_radii(
        self, s: Float, theta: Float, e: Float, thickening: float | None = None
    ) -> tuple[Float, Float, Float, Float]:
        """(endocardial radius, epicardial radius, xi, base) at (s, theta); 0 outside."""
        base = np.asarray((self.long_shortening * self.length) * e, dtype=F)
        cav_len = self.length - base
        semi = cav_len * (1 - EQUATOR)
        centre = base + EQUATOR * cav_len
        xi = np.clip((s - base) / cav_len, 0.0, 1.2)
        k = self.kinesis_factor(theta, xi)
        r_eq = self.radius * (1.0 - self.contraction * k * e)
        t = self.thickness(theta, xi)
        r_eq_epi = np.sqrt(r_eq**2 + t * (2 * self.radius + t))
        if thickening is None:
            thickening = self.thickening(e)
        semi_epi = semi + self.t_apex * thickening
        above_base = s >= base
        rel = s - centre
        r_endo = _cap(rel, semi)
        r_endo *= r_eq
        r_endo *= above_base
        r_epi = _cap(rel, semi_epi)
        r_epi *= r_eq_epi
        r_epi *= above_base
        return r_endo, r_epi, np.asarray(xi, dtype=F), base

    def aneurysm(self, s: Float, r: Float, e: Float) -> tuple[Float, Float]:
        """Signed margins (mm, > 0 inside) of the aneurysm cavity and its thin wall."""
        if self.aneurysm_radius <= 0:
            none = np.full(np.broadcast(s, r, e).shape, -1e3, dtype=F)
            return none, none
        radius = self.aneurysm_radius * (1.0 + 0.07 * e)  # dyskinetic: bulges in systole
        centre = self.length - 0.35 * self.aneurysm_radius
        dist = np.sqrt((s - centre) ** 2 + r**2)
        return radius - dist, (radius + 2.0) - dist

    # ---- where the heart can be -------------------------------------------------------
    def support(self, s: Float, u: Float, v: Float, taus: Float, pixel: float) -> NDArray[np.bool_]:
        """Points the heart (with its fat, fluid and pericardium) covers at some phase of
        ``taus``; elsewhere ``evaluate`` gives region 0, so the thorax shows alone."""
        return self.cover(s, u, v, taus, pixel)[0]

    def cover(
        self, s: Float, u: Float, v: Float, taus: Float, pixel: float
    ) -> tuple[NDArray[np.bool_], Float | None]:
        """``support``, and the chamber surface distances on the points it keeps (stacked
        (4 * phases, kept points)), which ``evaluate`` takes instead of computing them.

        Cheap static bounds first, then the chamber surface distances of every phase on
        what is left (two matrix products), so the full model runs on few points."""
        cycle = self.cycle(taus)
        inside = self._loose_support(s, u, v, cycle, pixel)
        idx = np.flatnonzero(inside)
        if not len(idx):
            return inside, None
        w = max(pixel, 0.8)
        s, u, v = (np.asarray(x[idx], dtype=F)[None, :] for x in (s, u, v))
        r = np.sqrt(u * u + v * v)
        base = np.asarray((self.long_shortening * self.length) * cycle.e, dtype=F)
        stacked = _distances(_basis(s, u, v), cycle.w_rho, cycle.w_grad)
        surface = self._surface(s, r, base, np.split(stacked, 4))
        # Fat, fluid and pericardium reach at most this far outside the surface.
        layers = 4.6 * self.epi_fat + max(self.effusion - 1.5, 0.0) + 1.2 + 0.5 * w + 0.5
        keep = (surface < layers).any(axis=0)
        # The LV wall itself (and an aneurysm's) may stand outside that surface.
        bulge = 1.0 + max(0.0, -self.kinesis) * self.contraction if self.territory else 1.0
        wall = self.radius * bulge + max(self.t_septal, self.t_lateral) + 0.5 * w
        apex = self.length + self.t_apex * cycle.thick + 0.5 * w
        keep |= ((s >= 0) & (s <= apex) & (r < wall))[0]
        for vessel in self.vessels():  # vessel walls are 1.5 mm
            keep |= (self._vessel_distance(s, u, v, *vessel) < 1.5 + 0.5 * w + 0.5)[0]
        if self.aneurysm_radius > 0:
            centre = self.length - 0.35 * self.aneurysm_radius
            reach = 1.07 * self.aneurysm_radius + 2.0 + 0.5 * w
            keep |= ((s - centre) ** 2 + r * r < reach**2)[0]
        inside[idx] = keep
        return inside, stacked[:, keep]

    def _shapes(self, e: Float, atr: Float) -> list[Shape]:
        """Per phase: the LV epicardial spheroid, the RV and the two atria."""
        base = (self.long_shortening * self.length) * e
        cav_len = self.length - base
        rim = self.radius + self.t_lateral
        lv: Shape = (
            (base + EQUATOR * cav_len, 0.0, 0.0),
            (rim, rim, cav_len * (1 - EQUATOR) + self.t_apex),
        )
        rv_e = 1.0 - self.rv_contraction * e
        rs = self.rv_semi
        rv: Shape = ((0.8 * rs[2], self.rv_offset, 0.0), (rs[0] * rv_e, rs[1] * rv_e, rs[2]))
        scale = 0.88 + 0.24 * atr  # the atria fill as the ventricles empty
        la = self.la_semi
        la_c = (-la[2] * 0.85 + base, -0.15 * self.radius, -0.35 * la[1])
        ra = self.ra_semi
        rv_base = (1.25 * self.long_shortening * rs[2]) * e
        ra_c = (-ra[2] * 0.8 + rv_base, self.rv_offset + 0.45 * rs[0], -0.1 * ra[1])
        return [
            lv,
            rv,
            (la_c, (la[0] * scale, la[1] * scale, la[2] * scale)),
            (ra_c, (ra[0] * scale, ra[1] * scale, ra[2] * scale)),
        ]

    def _surface(self, s: Float, r: Float, base: Float, distances: list[Float]) -> Float:
        """Distance to the outer heart surface (LV epicardium and its top disc, RV wall,
        atrial walls), per phase."""
        lv_ell, d_rv, d_la, d_ra = distances
        rim = self.radius + self.t_lateral
        below_base = s - base
        top = np.sqrt(below_base**2 + np.maximum(r - rim, 0.0) ** 2)  # the disc above the base
        lv_epi_d = np.where(below_base >= 0, lv_ell, top)
        return np.minimum(np.minimum(lv_epi_d, d_rv - 3.5), np.minimum(d_la, d_ra) - 2.0)

    def _loose_support(
        self, s: Float, u: Float, v: Float, cycle: Cycle, pixel: float
    ) -> NDArray[np.bool_]:
        """A cover of ``support`` from each shape's largest extent over the cycle."""
        w = max(pixel, 0.8)
        # Farthest outside a chamber surface that the fat/fluid/pericardium layers reach.
        margin = 4.6 * self.epi_fat + max(self.effusion - 1.5, 0.0) + 1.2 + 0.5 * w + 3.0
        big_r, length = self.radius, self.length
        shortening = self.long_shortening * length
        # LV wall, epicardial surface, aneurysm and the disc above the base: a cylinder.
        rim = big_r + self.t_lateral
        stretch = 1.0 + margin / min(rim, (length - shortening) * (1 - EQUATOR) + self.t_apex)
        bulge = 1.0 + max(0.0, -self.kinesis) * self.contraction if self.territory else 1.0
        reach = max(
            big_r * bulge + max(self.t_septal, self.t_lateral) + margin,
            rim * stretch,  # the stretch already holds the margin
            1.07 * self.aneurysm_radius + 2.0 + margin,
        )
        end = max(
            length + self.t_apex * cycle.thick + margin,
            shortening + (length * (1 - EQUATOR) + self.t_apex) * stretch,
            length + 0.72 * self.aneurysm_radius + 2.0 + margin,
        )
        inside = (s > -margin) & (s < end) & (u * u + v * v < reach**2)
        rs, c_rv = self.rv_semi, 1.0 - self.rv_contraction
        inside |= _near_ellipsoid(
            s, u, v, (0.8 * rs[2], self.rv_offset, 0.0), rs, (rs[0] * c_rv, rs[1] * c_rv, rs[2]),
            margin + 3.5,
        )  # fmt: skip
        la, ra = self.la_semi, self.ra_semi
        la_c = (-0.85 * la[2], -0.15 * big_r, -0.35 * la[1])
        ra_c = (-0.8 * ra[2], self.rv_offset + 0.45 * rs[0], -0.1 * ra[1])
        for centre, semi, shift in (
            (la_c, la, shortening),
            (ra_c, ra, 1.25 * self.long_shortening * rs[2]),
        ):
            largest = (semi[0] * 1.12, semi[1] * 1.12, semi[2] * 1.12)
            smallest = (semi[0] * 0.88, semi[1] * 0.88, semi[2] * 0.88)
            inside |= _near_ellipsoid(s, u, v, centre, largest, smallest, margin + 2.0, shift)
        for vessel in self.vessels():
            inside |= self._vessel_distance(s, u, v, *vessel) < margin
        return inside

    # ---- whole heart ----------------------------------------------------------------
    def evaluate(
        self,
        s: Float,
        u: Float,
        v: Float,
        taus: Float,
        contrast: str,
        pixel: float,
        distances: Float | None = None,
    ) -> tuple[Float, Float]:
        """Signal and heart-region membership, shape (phases, points); ``distances`` as
        returned by ``cover`` for these points, else computed here.

        Per-point quantities that do not move (angles, vessels, thrombus, fat spread) are
        computed once as (1, points); only what moves is computed per phase."""
        table = CINE if contrast == "cine" else LGE
        s, u, v = (np.asarray(x, dtype=F)[None, :] for x in (s, u, v))
        cycle = self.cycle(taus)
        e = cycle.e
        r2 = u * u + v * v
        r = np.sqrt(r2)
        theta = np.arctan2(v, u)
        w = max(pixel, 0.8)

        thick = cycle.thick
        r_endo, r_epi, xi, base = self.lv_radii(s, theta, e, thick)
        apex, apex_epi = self.length + 0.5 * w, self.length + self.t_apex * thick + 0.5 * w
        an_cav, an_wall = self.aneurysm(s, r, e)
        # Within the spheroid's length only: beyond the apex r_endo = 0 would otherwise
        # leave a half-membership line along the axis.
        lv_cav = np.maximum(_ramp(r_endo - r, w) * ((s >= base) & (s <= apex)), _ramp(an_cav, w))
        lv_all = np.maximum(
            _ramp(r_epi - r, w) * ((s >= base) & (s <= apex_epi)), _ramp(an_wall, w)
        )

        # Chamber surfaces (LV epicardium, RV, atria) for every phase at once.
        if distances is None:
            distances = _distances(_basis(s, u, v), cycle.w_rho, cycle.w_grad)
        _, d_rv, d_la, d_ra = chambers = np.split(distances, 4)

        # RV: ellipsoid around the septum, minus the LV (crescent); free wall 3.5 mm.
        rv_base = (1.25 * self.long_shortening * self.rv_semi[2]) * e
        rv_above = s >= rv_base
        rv_cav = _ramp(-d_rv, w)
        rv_cav *= rv_above
        rv_cav *= 1.0 - lv_all
        rv_cav *= _ramp(r - r_epi - 1.0, w)  # a 1 mm gap: the septum is LV wall
        rv_all = np.maximum(_ramp(3.5 - d_rv, w) * rv_above, rv_cav)

        # Atria above the mitral/tricuspid planes; they fill as the ventricles empty.
        la_cav, ra_cav = _ramp(-d_la, w), _ramp(-d_ra, w)
        atria_all = np.maximum(_ramp(2.0 - d_la, w), _ramp(2.0 - d_ra, w))

        ao_d, pa_d = (self._vessel_distance(s, u, v, *vessel) for vessel in self.vessels())
        great_vessels = np.maximum(_ramp(-ao_d, w), _ramp(-pa_d, w))
        vessels_all = np.maximum(_ramp(1.5 - ao_d, w), _ramp(1.5 - pa_d, w))

        # Distance to the heart surface, for fat, effusion and pericardium layers.
        surface = self._surface(s, r, base, chambers)
        below_base = s - base
        groove = np.exp(-((below_base * F(1 / 12.0)) ** 2))  # fat collects in the AV groove
        fat_in = self.epi_fat * (0.1 + 2.5 * groove)
        gravity = 0.55 + 0.45 * np.clip(-np.sin(theta), 0.0, 1.0)  # posterior-inferior
        # Physiological pericardial fluid (< 2 mm) is not visible on cine.
        eff = max(self.effusion - 1.5, 0.0) * gravity * (s > -10)
        peri_in = fat_in + eff
        # Paracardial fat outside the pericardium: in front only (lungs lie behind).
        para = 2.0 * self.epi_fat * np.clip(np.sin(theta), 0.0, 1.0)
        region = _ramp(peri_in + (para + 1.2) - surface, w)

        sig = np.full(np.broadcast(s, e).shape, table["fat"], dtype=F)
        pericardium = _ramp(surface - peri_in, w)
        pericardium *= _ramp(peri_in + 1.2 - surface, w)
        self._paint(sig, pericardium, self._pericardium_signal(table))
        fluid = _ramp(surface - fat_in, w)
        fluid *= _ramp(peri_in - surface, w)
        self._paint(sig, fluid, table["fluid"])
        self._paint(sig, np.maximum(atria_all, vessels_all), table["wall"])
        self._paint(sig, np.maximum(la_cav, ra_cav), table["blood"])
        self._paint(sig, great_vessels, table["blood"])
        self._paint(sig, rv_all, table["myo"])
        self._paint(sig, rv_cav, table["blood"])
        myo_signal = self._myocardium_signal(table, s, theta, r, r_endo, r_epi, xi, contrast)
        self._paint(sig, lv_all, myo_signal)
        self._paint(sig, lv_cav, self._blood_signal(table, contrast))
        papillary = self._papillary(s, u, v, r2, r_endo, base, w)
        papillary *= lv_cav
        self._paint(sig, papillary, table["myo"] if contrast == "cine" else table["myo"] * 2)
        self._paint(sig, self._thrombus(s, r, w), table["thrombus"])
        # Closed mitral valve during systole: a thin dark line across the base.
        closed = (np.mod(taus, 1.0) < end_systole(self.heart_rate))[:, None]
        valve = _ramp(0.8 - np.abs(below_base), w)
        valve *= (r < self.radius) & closed
        self._paint(sig, valve, table["valve"])
        np.maximum(region, lv_all, out=region)
        np.maximum(region, rv_all, out=region)
        np.maximum(region, vessels_all, out=region)  # the root reaches beyond the heart
        return sig, region

    # ---- helpers --------------------------------------------------------------------
    @staticmethod
    def _paint(sig: Float, membership: Float, value: float | Float) -> None:
        """sig <- sig * (1 - m) + value * m, in place."""
        step = np.subtract(value, sig, dtype=F)
        step *= membership
        sig += step

    def vessels(self) -> tuple[Vessel, Vessel]:
        """The aortic root, from the anteroseptal LV base up and to the right in the
        three-chamber plane (see geometry.long_axis_directions), and the pulmonary
        trunk: (start, direction, radius, length) in (s, u, v) mm."""
        cos_o, sin_o = math.cos(LVOT_ANGLE), math.sin(LVOT_ANGLE)
        aorta: Vessel = (
            (0.0, 0.54 * self.radius * cos_o, 0.54 * self.radius * sin_o),
            (-0.8, 0.38 * cos_o, 0.38 * sin_o),
            self.root_diameter / 2,
            75.0,
        )
        trunk: Vessel = (
            (-2.0, self.rv_offset + 0.2 * self.rv_semi[0], 0.9 * self.rv_semi[1]),
            (-0.75, -0.45, -0.15),
            13.0,
            60.0,
        )
        return aorta, trunk

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
        d = np.array(direction, dtype=np.float64)
        d /= np.linalg.norm(d)
        ps, pu, pv = s - F(start[0]), u - F(start[1]), v - F(start[2])
        along = ps * F(d[0]) + pu * F(d[1]) + pv * F(d[2])
        perp = np.sqrt(np.maximum(ps**2 + pu**2 + pv**2 - along**2, 0.0))
        # Sinuses of Valsalva: widest 12 mm above the annulus.
        profile = radius * (0.82 + 0.18 * np.exp(-(((along - 12.0) / 10.0) ** 2)))
        out = np.maximum(perp - profile, np.maximum(-along, along - length))
        return np.asarray(out, dtype=F)

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
    ) -> float | Float:
        if contrast == "cine":
            return table["myo"]
        depth = np.clip((r - r_endo) / np.maximum(r_epi - r_endo, 1.0), 0.0, 1.0)
        scar = self.scar_fraction(theta, xi, depth)
        return np.asarray(table["myo"] * (1 - scar) + table["scar"] * scar, dtype=F)

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
        self, s: Float, u: Float, v: Float, r2: Float, r_endo: Float, base: Float, w: float
    ) -> Float:
        rc = 0.55 * r_endo  # the muscles' distance from the axis follows the cavity
        out: Float | None = None
        for angle in (140.0, -115.0):
            a = math.radians(angle)
            along = u * F(math.cos(a)) + v * F(math.sin(a))
            d2 = rc * (rc - 2.0 * along)  # |p - rc * direction|^2 - r^2
            d2 += r2
            d = np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
            m = _ramp(3.5 - d, w)
            out = m if out is None else np.maximum(out, m, out=out)
        assert out is not None
        out *= (s > base + 0.3 * self.length) & (s < 0.78 * self.length)
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
        r_endo, _, _, _ = self.lv_radii(ss, tt, np.full((1, 1), e, dtype=F))
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
        rv_e = 1.0 - self.rv_contraction * e
        rv_base = 1.25 * self.long_shortening * self.rv_semi[2] * e
        rv: Shape = (
            (0.8 * self.rv_semi[2], self.rv_offset, 0.0),
            (self.rv_semi[0] * rv_e, self.rv_semi[1] * rv_e, self.rv_semi[2]),
        )
        basis = _basis(ss[None, :], uu[None, :], vv[None, :])
        d = _ellipsoid_distances(basis, [rv], 1)[0][0]
        # Only voxels inside the RV ellipsoid need the (costlier) LV wall test.
        keep = (d < 0) & (ss >= rv_base)
        ss, uu, vv = ss[keep][None, :], uu[keep][None, :], vv[keep][None, :]
        _, r_epi, _, base = self.lv_radii(ss, np.arctan2(vv, uu), np.full((1, 1), e, dtype=F))
        lv_d = np.where(ss >= base, np.sqrt(uu**2 + vv**2) - r_epi, 1e3)
        return float((lv_d > 1.0).sum() * grid**3 / 1000.0)


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
