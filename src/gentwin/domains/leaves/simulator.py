"""The seeded leaf simulator (``simulate_leaves``); its resolution limits are in docs/leaves.md."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from shapely import affinity, ops
from shapely.geometry import (
    LineString,
    Point,
    Polygon,
)

from gentwin.domains.leaves.geometry import Leaf, lines_of, polygons_of


def _clipped_normal(rng: np.random.Generator, mean_std: Sequence[float], lo: float, hi: float) -> float:
    mean, std = mean_std
    return float(np.clip(rng.normal(mean, std), lo, hi))


def _half_widths(rng, n_pts, half_width, widest, serration, teeth, asymmetry):
    """Right and left half-width profiles w(s), s in [0, 1] along the main vein."""
    s = np.linspace(0.0, 1.0, n_pts)
    a = rng.uniform(0.6, 1.0)  # < 1: rounded base, infinite slope at s = 0
    b = a * (1.0 - widest) / widest  # puts the widest point at s = widest
    base = s**a * (1.0 - s) ** b
    base /= base.max()
    sides = []
    for _ in range(2):
        k = rng.integers(teeth[0], teeth[1] + 1)
        wave = serration * np.sin(2 * np.pi * k * s + rng.uniform(0, 2 * np.pi))
        low = sum(rng.normal(0.0, asymmetry / j) * np.sin(np.pi * j * s + rng.uniform(0, np.pi)) for j in (1, 2, 3))
        sides.append(half_width * base * np.clip(1.0 + wave + low, 0.5, 1.5))
    return s, sides[0], sides[1]


def _curve(start, heading_deg, bend_deg, length, step=0.1) -> LineString:
    """A vein-like arc: starts at ``start`` with ``heading`` (degrees from +y towards +x)."""
    n = max(int(length / step), 2)
    t = np.linspace(0.0, 1.0, n + 1)
    h = np.radians(heading_deg - bend_deg * t)
    dx, dy = np.sin(h) * length / n, np.cos(h) * length / n
    x = start[0] + np.concatenate([[0.0], np.cumsum(dx[:-1])])
    y = start[1] + np.concatenate([[0.0], np.cumsum(dy[:-1])])
    return LineString(np.column_stack([x, y]))


def _reach(curve: LineString, outline: Polygon) -> LineString | None:
    """The part of ``curve`` from its start up to where it first leaves ``outline``."""
    inside = curve.intersection(outline)
    start = Point(curve.coords[0])
    for piece in lines_of(inside):
        if piece.distance(start) < 1e-9:
            return piece
    return None




def _hole_shape(rng, center, radius) -> Polygon:
    """A roundish hole: a rotated ellipse (aspect 0.7-1) with a few small radial harmonics."""
    phi = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
    r = radius * (1.0 + sum(rng.uniform(0.0, 0.06) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)))
    x, y = r * np.cos(phi), rng.uniform(0.7, 1.0) * r * np.sin(phi)
    t = rng.uniform(0, np.pi)
    c, s = np.cos(t), np.sin(t)
    return Polygon(np.column_stack([center[0] + c * x - s * y, center[1] + s * x + c * y]))


def _sample_in(rng, region, k: int) -> np.ndarray:
    """Up to ``k`` uniform points in ``region`` (rejection from its bounding box), shape (M, 2)."""
    if region.is_empty:
        return np.empty((0, 2))
    xmin, ymin, xmax, ymax = region.bounds
    pts = rng.uniform((xmin, ymin), (xmax, ymax), size=(4 * k, 2))
    return pts[shapely.contains_xy(region, pts[:, 0], pts[:, 1])][:k]


def _n_pieces(line: LineString, cut) -> int:
    return len(lines_of(line.difference(cut)))


def _hole_fits(hole, outline, main_vein, veins, junctions, holes) -> bool:
    """Whether ``hole`` respects the resolution limits of the module docstring."""
    if hole.distance(outline.exterior) < 0.45 or not outline.contains(hole) or hole.distance(main_vein) < 0.45:
        return False
    if (shapely.distance(hole, holes) < 0.45).any() or (shapely.distance(hole, junctions) < 0.45).any():
        return False
    dist = shapely.distance(hole, veins)
    if ((dist > 0) & (dist < 0.3)).any():  # a near miss: an image could show a cut or not
        return False
    near = veins[dist == 0]
    if not len(near):
        return True
    grown, shrunk = hole.buffer(0.25, quad_segs=4), hole.buffer(-0.25, quad_segs=4)
    for v in near:
        if shrunk.is_empty or _n_pieces(v, grown) != _n_pieces(v, shrunk):
            return False
        start = Point(v.coords[0])
        for piece in lines_of(v.difference(hole)):
            # the piece still joined to the parent vein loses ~0.5 cm to the junction in an image
            if piece.length < (1.5 if piece.distance(start) < 1e-9 else 1.0):
                return False
    return True


def _side_veins(rng, outline, length, count, angle, reach, branch_prob, sign):
    """Secondary veins (with branches) of one side; ``sign`` +1 right, -1 left."""
    mirror = (lambda g: g) if sign > 0 else (lambda g: affinity.scale(g, -1.0, 1.0, origin=(0, 0)))
    half = mirror(outline)  # work on the right side; mirror the result back
    lo, hi = 0.12 * length, 0.8 * length
    n = int(min(count, math.floor((hi - lo) / 0.8) + 1))
    if n <= 0:
        return [], []
    # attachment points: evenly spaced with jitter, at least 0.8 cm apart
    gap = (hi - lo) / max(n - 1, 1)
    ys = lo + gap * np.arange(n) + rng.uniform(-0.2, 0.2, n) * (gap - 0.8)
    if n == 1:
        ys = np.array([rng.uniform(lo, hi)])
    reach_max = 3.0 * half.bounds[2] + 0.5  # longer than any path from the main vein to the margin
    veins, junctions, parents = [], [], []
    for y0 in np.sort(ys):
        heading = rng.uniform(*angle)
        arc = _reach(_curve((0.0, y0), heading, rng.uniform(0.0, 20.0), reach_max), half)
        if arc is None:
            continue
        vein = ops.substring(arc, 0.0, rng.uniform(*reach) * arc.length)
        if vein.length < 1.5 or any(vein.distance(v) < 0.5 for v in veins):
            continue
        veins.append(vein)
        junctions.append(Point(0.0, y0))
        parents.append(vein)
    for parent in list(parents):
        if rng.random() >= branch_prob:
            continue
        at = parent.interpolate(rng.uniform(0.35, 0.6), normalized=True)
        ahead = parent.interpolate(parent.project(at) + 0.2)
        local = math.degrees(math.atan2(ahead.x - at.x, ahead.y - at.y))
        heading = min(local + rng.uniform(35.0, 50.0), 95.0)
        arc = _reach(_curve((at.x, at.y), heading, rng.uniform(0.0, 15.0), reach_max), half)
        if arc is None:
            continue
        branch = ops.substring(arc, 0.0, rng.uniform(0.6, 0.8) * arc.length)
        others = [v for v in veins if v is not parent]
        if branch.length < 1.5 or any(branch.distance(v) < 0.5 for v in others):
            continue
        veins.append(branch)
        junctions.append(at)
    return [mirror(v) for v in veins], [mirror(j) for j in junctions]


def simulate_leaves(
    n: int,
    rng: np.random.Generator,
    length: Sequence[float] = (7.5, 0.8),
    width: Sequence[float] = (6.5, 0.8),
    widest: Sequence[float] = (0.35, 0.55),
    serration: float = 0.03,
    teeth: Sequence[int] = (6, 16),
    asymmetry: float = 0.06,
    secondary: Sequence[float] = (5.0, 1.0),
    secondary_angle: Sequence[float] = (40.0, 60.0),
    vein_reach: Sequence[float] = (0.65, 0.85),
    branch_prob: float = 0.3,
    holes: float = 1.2,
    hole_radius: Sequence[float] = (0.35, 0.7),
    max_holes: int = 6,
) -> list[Leaf]:
    """Simulate whole leaves in the canonical frame (base at the origin, tip up the +y axis).

    Outline: half-width profile ``s^a (1-s)^b`` along the main vein (widest point at ``widest``),
    times, per side, a serrated margin (``teeth`` waves of relative amplitude ``serration``) and a
    smooth random asymmetry. Main vein: straight, base to 96 % of the length. Secondary veins per
    side: curved arcs bending towards the tip, leaving the main vein at ``secondary_angle`` degrees
    and ending at ``vein_reach`` of the way to the margin; each may carry one branch. Holes: a
    Poisson number, roundish, placed by rejection to respect the resolution limits of the module
    docstring (so fewer than drawn may be placed on crowded leaves); veins crossing a hole are cut.

    Args:
        n: number of leaves.
        rng: random generator (the only source of randomness).
        length: (mean, std) of the length in cm, clipped to [5.5, 9].
        width: (mean, std) of the full width in cm, clipped to [4.5, 8].
        widest: uniform range of the relative position of the widest point.
        serration: relative amplitude of the margin teeth.
        teeth: uniform integer range of the number of teeth per side.
        asymmetry: std of the low-frequency relative difference between the sides.
        secondary: (mean, std) of the number of secondary veins per side, clipped to [2, 8].
        secondary_angle: uniform range of the angle between secondary veins and main vein (deg).
        vein_reach: uniform range of the fraction of the way to the margin a vein covers.
        branch_prob: probability that a secondary vein has a branch.
        holes: mean number of holes drawn per leaf (Poisson); 0 for none. Holes that cannot be placed
            within the limits are dropped: about 80-90 % of them are placed at the defaults.
        hole_radius: uniform range of hole radii in cm (at least 0.35 for 64-px images).
        max_holes: cap on the drawn number of holes.

    Returns:
        ``n`` leaves.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= branch_prob <= 1.0 or holes < 0:
        raise ValueError("branch_prob must be in [0, 1] and holes >= 0")
    out = []
    for _ in range(n):
        L = _clipped_normal(rng, length, 5.5, 9.0)
        half_width = _clipped_normal(rng, width, 4.5, 8.0) / 2
        s, wr, wl = _half_widths(rng, 160, half_width, rng.uniform(*widest), serration, teeth, asymmetry)
        y = s * L
        ring = np.concatenate([np.column_stack([wr, y]), np.column_stack([-wl, y])[-2:0:-1]])
        outline = Polygon(ring)
        if not outline.is_valid:
            outline = polygons_of(outline.buffer(0))[0]
        main = LineString([(0.0, 0.0), (0.0, 0.96 * L)])
        veins, junctions = [], []
        for sign in (1, -1):
            count = round(float(np.clip(rng.normal(*secondary), 2, 8)))
            v, j = _side_veins(rng, outline, L, count, secondary_angle, vein_reach, branch_prob, sign)
            veins += v
            junctions += j
        placed: list[Polygon] = []
        vein_arr, junction_arr = np.array(veins, dtype=object), np.array(junctions, dtype=object)
        coarse = outline.simplify(0.05)  # for the candidate regions only; _hole_fits is exact
        coarse_veins = shapely.simplify(vein_arr, 0.05)
        for _ in range(min(int(rng.poisson(holes)), max_holes)):
            for _radius in range(5):
                radius = rng.uniform(*hole_radius)
                # centres keeping the hole off the margin and the main vein, half of them also off the
                # other veins (holes crossing a vein rarely cut it cleanly); _hole_fits checks the rest
                reach = 0.45 + 1.2 * radius  # 1.2: the largest radius of _hole_shape
                region = coarse.buffer(-reach, quad_segs=2).difference(main.buffer(reach, quad_segs=2))
                if placed:
                    region = region.difference(shapely.union_all(placed).buffer(reach, quad_segs=2))
                clear = region.difference(
                    shapely.union_all(shapely.buffer(coarse_veins, 0.3 + 1.2 * radius, quad_segs=2))
                )
                centres = np.concatenate([_sample_in(rng, clear, 15), _sample_in(rng, region, 15)])
                hole = next(
                    (
                        h
                        for h in (_hole_shape(rng, c, radius) for c in centres)
                        if _hole_fits(h, outline, main, vein_arr, junction_arr, placed)
                    ),
                    None,
                )
                if hole is not None:
                    placed.append(hole)
                    break
        if placed:
            cut = shapely.union_all(placed)
            veins = [p for v in veins for p in lines_of(v.difference(cut))]
        out.append(Leaf(outline, main, tuple(veins), tuple(placed)))
    return out


# --------------------------------------------------------------------------------------------
# Half-leaves
# --------------------------------------------------------------------------------------------
