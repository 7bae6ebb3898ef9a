"""Leaves as geometry and as 2-channel images (seed 000, §3.2 and §4.2).

The leaf use-case of seed 000: scanned leaves described as geometry (outline polygon, veins as
linear splines, holes as polygons), split along the main vein into half-leaves (left halves
mirrored, so 80 leaves give 160 half-leaves all facing right), rasterised to two channels (leaf,
vein) for convolutional models, and post-processed from generated images back to geometry, where
eight key properties are compared as distributions (seed 000 Fig. 9 and 13).

Geometry conventions
    Units are centimetres. A leaf lies in its *canonical frame*: the main vein runs from the base
    at the origin up the +y axis. ``Leaf.outline`` is the outer ring only (holes are **not**
    subtracted); ``Leaf.holes`` are separate polygons inside it; ``Leaf.tissue`` is the outline
    minus the holes. ``Leaf.veins`` are the secondary veins and their branches as the tissue shows
    them: the simulator cuts a vein crossed by a hole into its pieces, so every LineString is one
    visible vein segment (a user's file is taken as given).

Pixels
    ``rasterize`` maps a fixed window ``extent = (xmin, ymin, xmax, ymax)`` (cm) onto the image,
    row 0 at the top (``ymax``); pixel (i, j) is centred at ``x = xmin + (j + 1/2) p``,
    ``y = ymax - (i + 1/2) p`` with the pixel size ``p = (xmax - xmin) / size`` (``pixel_size``). The
    default window for half-leaves, ``HALF_LEAF_EXTENT``, is 10 cm wide with the cut edge (x = 0) on
    the left image border, so a pixel is 10/64 = 0.156 cm at 64 px and an area of k pixels is
    ``k p^2`` cm^2. ``postprocess`` maps contours and skeletons back with the same window, so the
    properties of generated images are in cm as well.

The eight key properties (``LEAF_PROPERTIES``)
    Seed 000 names "size, shape, the presence and size of holes, as well as the quantity and
    length of nerves" (§3.2) and, as examples of its eight features, "the size, the height of the
    leaves, and the amount of holes" (§6) and "width, total size and vein length" (§4.2). That
    gives seven: ``area`` (outline area, holes included: the leaf's size; the holes are measured
    apart), ``height`` and ``width`` (extent along and across the main vein), ``n_holes``,
    ``hole_area`` (total), ``n_veins`` (main vein + visible secondary segments) and
    ``vein_length`` (total). The eighth is the remaining item of the §3.2 list, *shape*, beyond
    height and width: we take the outline's **perimeter**. §5 names "the shape of the
    circumference" as the shape aspect of these leaves (of less weight for the machine than holes
    and veins, so one number suffices), and the perimeter adds what area, height and width miss:
    the length of margin the machine meets, longer for serrated or lobed outlines. Measured at
    64 px, the alternatives fare worse: solidity (area / convex hull area) varies across simulated
    half-leaves by only 0.007, less than its rasterisation bias (-0.009; correlation 0.58 between
    geometry and image), and the fill ratio area / (height x width) is a function of three of the
    other seven. The perimeter read back from a 64-px image is 1.6 % long (the staircase; 3 % with
    pixel noise of std 0.2) against a 7 % spread across leaves (correlation 0.986); the metric
    post-processes real and generated images alike, so that bias cancels there.

Resolution limits (tuned for 64 px, i.e. p = 0.156 cm; finer images are easier)
    Holes have a radius of at least 0.35 cm (about 16 pixels of area) and keep 0.45 cm (3 px) of
    tissue to the margin, the main vein, vein junctions and each other. A hole either clears every
    vein by 0.3 cm (2 px) or cuts it cleanly (the same number of pieces with the hole grown or
    shrunk by 0.25 cm), leaving a piece of at least 1.5 cm on the parent's side and 1 cm beyond.
    Veins keep 0.5 cm (3 px) apart except where they join; secondary veins leave the main vein at
    least 0.8 cm apart at 40-60 degrees, branches leave at 35-50 degrees, and both are at least
    1.5 cm long, since near a junction two 1.5-px lines stay merged for about 0.5 cm.
    ``postprocess`` prunes skeleton spurs below 4 px (0.6 cm), so these limits keep every simulated
    vein and hole while it removes noise. With them, rasterising 2000 simulated half-leaves at
    64 px and post-processing recovered the area within 1.5 %, the hole count exactly and the vein
    count within +-1 for all of them (exactly for 99.4 %); with Gaussian pixel noise of std 0.2
    added, the same except 99.9 % for veins within +-1.

Validity (what ``valid`` and seed 000's ``valid_rate`` count)
    A generated image counts only if it shows a half-leaf a digital twin can use; geometry alone
    is not enough (without the criteria 100 of 100 uniform-noise images gave a "leaf"). The leaf
    channel must hold one leaf, not pieces: other components above a speck of 0.25 cm^2 may add
    up to 10 % of the leaf's area. The leaf (holes filled) covers 3-60 % of the window: simulated
    half-leaves cover 9-26 % of the 10 x 10 cm window (1000 at 64 px, 300 each at 32 and 128),
    uniform noise 33-93 %. It is not clipped by the window: at most 0.5 cm of it lies on the
    image borders other than the cut edge (simulated: none). It runs along the cut edge, where
    the machine holds the main vein: at least 80 % of the rows from base to tip hold leaf pixels
    in the column at x = 0 (simulated: 100 %, >= 95 % with pixel noise of std 0.2 at 64 px and
    >= 87 % at 32 px; uniform noise 6-69 %). Its outline is a valid simple polygon, compact with
    an isoperimetric ratio perimeter^2 / (4 pi area) of at most 3.5 (simulated: 1.35-2.3, 2.9 with
    noise; uniform noise 4.3-48); every hole lies inside it and the holes take at most half of it
    (simulated: <= 13 %). A vein of at least 1.5 cm lies in it (simulated: >= 3.2 cm, the main
    vein). With these defaults all simulated half-leaves above stay valid, clean and with two
    noise draws of std 0.2, while all of 200 uniform-noise images at each of 32, 64 and 128 px,
    300 Gaussian-smoothed noise fields (sigma 1-4 px) at 32 and at 64 px, and 998 of 1000
    leaf-sized blobs and rectangles clear of the cut edge (the other 2: too small) are rejected.
    Alone, the cut-edge and compactness criteria each reject all uniform noise at 64 px, the area
    and frame criteria all at 64 px and 91-100 % at 32 px. ``postprocess(..., return_reason=True)``
    names the failed criterion; ``validate=False`` turns them off.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from scipy import ndimage
from shapely import affinity, ops
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
    mapping,
    shape,
)
from skimage.measure import find_contours
from skimage.morphology import skeletonize

Extent = tuple[float, float, float, float]

HALF_LEAF_EXTENT: Extent = (0.0, -0.5, 10.0, 9.5)
"""Window (cm) of a half-leaf image: cut edge on the left border, base at y = 0."""

FULL_LEAF_EXTENT: Extent = (-5.0, -0.5, 5.0, 9.5)
"""Window (cm) of a whole-leaf image, main vein in the middle column boundary."""

LEAF_PROPERTIES = ("area", "height", "width", "n_holes", "hole_area", "n_veins", "vein_length", "perimeter")
"""The eight key properties of seed 000 (see the module docstring for the eighth)."""

_PARTS = ("outline", "main_vein", "vein", "hole")


@dataclass(frozen=True)
class Leaf:
    """One leaf or half-leaf as geometry (cm, canonical frame).

    Attributes:
        outline: outer boundary, holes not subtracted.
        main_vein: the midrib from base towards the tip, or None when unknown.
        veins: secondary veins and branches, one LineString per visible segment.
        holes: hole polygons inside the outline.
    """

    outline: Polygon
    main_vein: LineString | None = None
    veins: tuple[LineString, ...] = field(default_factory=tuple)
    holes: tuple[Polygon, ...] = field(default_factory=tuple)

    @property
    def tissue(self) -> Polygon | MultiPolygon:
        """The outline minus the holes (what the leaf channel shows)."""
        if not self.holes:
            return self.outline
        return self.outline.difference(shapely.union_all(self.holes))

    @property
    def all_veins(self) -> list[LineString]:
        """Main vein (if any) followed by the other veins."""
        return ([self.main_vein] if self.main_vein is not None else []) + list(self.veins)


# --------------------------------------------------------------------------------------------
# Simulator
# --------------------------------------------------------------------------------------------


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
    for piece in _lines(inside):
        if piece.distance(start) < 1e-9:
            return piece
    return None


def _lines(geom) -> list[LineString]:
    """The non-degenerate LineStrings of any geometry; touching pieces of a multi-line are joined."""
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, LineString):
        return [geom] if geom.length > 1e-9 else []
    if isinstance(geom, MultiLineString):
        merged = ops.linemerge(geom)
        parts = [merged] if isinstance(merged, LineString) else list(merged.geoms)
        return [g for g in parts if g.length > 1e-9]
    if isinstance(geom, GeometryCollection):
        return [line for g in geom.geoms for line in _lines(g)]
    return []


def _polygons(geom) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom] if geom.area > 0 else []
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


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
    return len(_lines(line.difference(cut)))


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
        for piece in _lines(v.difference(hole)):
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
            outline = _polygons(outline.buffer(0))[0]
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
            veins = [p for v in veins for p in _lines(v.difference(cut))]
        out.append(Leaf(outline, main, tuple(veins), tuple(placed)))
    return out


# --------------------------------------------------------------------------------------------
# Half-leaves
# --------------------------------------------------------------------------------------------


def _to_canonical(leaf: Leaf) -> Leaf:
    """Move and rotate ``leaf`` so its main vein starts at the origin and points up +y."""
    if leaf.main_vein is None:
        raise ValueError("half_leaves needs a main vein to cut along")
    (x0, y0), (x1, y1) = leaf.main_vein.coords[0], leaf.main_vein.coords[-1]
    angle = math.degrees(math.atan2(x1 - x0, y1 - y0))  # clockwise angle of the vein from +y
    if x0 == 0 and y0 == 0 and angle == 0:
        return leaf

    def f(g):
        return affinity.rotate(affinity.translate(g, -x0, -y0), angle, origin=(0, 0))

    return Leaf(f(leaf.outline), f(leaf.main_vein), tuple(map(f, leaf.veins)), tuple(map(f, leaf.holes)))


def _cut(leaf: Leaf, right: bool) -> Leaf:
    big = 1e6
    side = box(0.0, -big, big, big) if right else box(-big, -big, 0.0, big)
    outline = max(_polygons(leaf.outline.intersection(side)), key=lambda p: p.area)
    main = _lines(leaf.main_vein.intersection(side))
    main_vein = max(main, key=lambda v: v.length) if main else None
    veins = [p for v in leaf.veins for p in _lines(v.intersection(side))]
    holes = [p for h in leaf.holes for p in _polygons(h.intersection(side))]
    half = Leaf(outline, main_vein, tuple(veins), tuple(holes))
    if right:
        return half

    def mirror(g):
        return affinity.scale(g, -1.0, 1.0, origin=(0, 0))

    return Leaf(
        mirror(outline),
        None if main_vein is None else mirror(main_vein),
        tuple(map(mirror, veins)),
        tuple(map(mirror, holes)),
    )


def half_leaves(leaves: Iterable[Leaf]) -> list[Leaf]:
    """Cut each leaf along its main-vein axis into right and mirrored left half (seed 000 §3.2).

    The leaf is first moved to the canonical frame (main vein from its first to its last point
    along +y), cut by the line x = 0, and the left half mirrored (x -> -x), so every half lies in
    x >= 0 with the main vein on its straight cut edge. Both halves keep the main vein.

    Args:
        leaves: whole leaves with a main vein.

    Returns:
        ``[right_0, left_0, right_1, left_1, ...]``, twice as many as ``leaves``.
    """
    out = []
    for leaf in leaves:
        c = _to_canonical(leaf)
        out += [_cut(c, right=True), _cut(c, right=False)]
    return out


# --------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------


def pixel_size(size: int, extent: Extent = HALF_LEAF_EXTENT) -> float:
    """Side of one pixel in cm for a ``size`` x ``size`` image of ``extent``."""
    xmin, ymin, xmax, ymax = extent
    if not np.isclose(xmax - xmin, ymax - ymin):
        raise ValueError(f"extent must be square, got {extent}")
    return (xmax - xmin) / size


def _pixel_centres(size: int, extent: Extent, supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    p = pixel_size(size, extent)
    k = size * supersample
    t = (np.arange(k) + 0.5) / supersample
    x = extent[0] + t * p
    y = extent[3] - t * p
    return np.meshgrid(x, y)  # (k, k) each, row 0 at the top


def rasterize(
    leaves: Sequence[Leaf],
    size: int = 64,
    extent: Extent = HALF_LEAF_EXTENT,
    vein_width: float = 1.5,
    supersample: int = 1,
) -> np.ndarray:
    """Rasterise leaves to 2-channel images (leaf, vein), seed 000 §3.2.

    A pixel is leaf when its centre lies in the tissue (outline minus holes), vein when its centre
    lies within ``vein_width / 2`` pixels of a vein and in the tissue. With ``supersample = s > 1``
    each pixel holds the covered fraction of its ``s x s`` sub-pixel centres instead of 0/1.

    Args:
        leaves: leaves in cm (half-leaves for the default ``extent``).
        size: image side in pixels (64 by default; 128 or 256 in GPU presets).
        extent: window ``(xmin, ymin, xmax, ymax)`` in cm mapped onto the image (square).
        vein_width: drawn vein width in pixels (independent of ``size``).
        supersample: sub-pixels per side for anti-aliasing; 1 gives the binary images of the seed.

    Returns:
        Array of shape (N, 2, size, size), float32 in [0, 1].
    """
    x, y = _pixel_centres(size, extent, supersample)
    half_w = vein_width / 2 * pixel_size(size, extent)
    out = np.zeros((len(leaves), 2, size, size), dtype=np.float32)
    for i, leaf in enumerate(leaves):
        tissue = leaf.tissue
        shapely.prepare(tissue)
        leaf_mask = shapely.contains_xy(tissue, x, y)
        vein_mask = np.zeros_like(leaf_mask)
        lines = leaf.all_veins
        if lines:
            band = shapely.union_all([v.buffer(half_w) for v in lines])
            shapely.prepare(band)
            vein_mask = shapely.contains_xy(band, x, y) & leaf_mask
        for c, m in enumerate((leaf_mask, vein_mask)):
            if supersample > 1:
                m = m.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
            out[i, c] = m
    return out


# --------------------------------------------------------------------------------------------
# Post-processing: image -> geometry
# --------------------------------------------------------------------------------------------

_EIGHT = np.ones((3, 3), dtype=bool)
_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _to_cm(rc: np.ndarray, size: int, extent: Extent) -> np.ndarray:
    """(K, 2) (row, col) array coordinates -> (K, 2) (x, y) in cm (pixel centres at integers)."""
    p = (extent[2] - extent[0]) / size
    return np.column_stack([extent[0] + (rc[:, 1] + 0.5) * p, extent[3] - (rc[:, 0] + 0.5) * p])


def _contour_polygon(
    mask: np.ndarray, size: int, extent: Extent, connected: str, repair: bool = True
) -> Polygon | None:
    """Polygon of the 0.5 iso-line around the single region of ``mask`` (marching squares).

    A self-touching ring is repaired to its largest valid part, or with ``repair=False`` gives None.
    """
    rows, cols = np.nonzero(mask)
    r0, c0 = rows.min() - 1, cols.min() - 1
    crop = np.pad(mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], 1).astype(float)
    contours = find_contours(crop, 0.5, fully_connected=connected)
    if not contours:
        return None
    ring = max(contours, key=len) + [r0, c0]
    if len(ring) < 4:
        return None
    poly = Polygon(_to_cm(ring, size, extent))
    if not poly.is_valid and not repair:
        return None
    if not poly.is_valid:
        parts = _polygons(poly.buffer(0))
        poly = max(parts, key=lambda q: q.area) if parts else None
    return poly


def _skeleton_graph(skel: np.ndarray):
    """Nodes, edges of a pixel skeleton.

    Pixels are linked 8-wise, except that a diagonal link is dropped where a two-step 4-path joins
    the same pixels (staircases would otherwise look like junctions). Node pixels are those with
    other than two links; adjacent junction pixels form one node. Returns ``(node_of, edges)`` with
    ``node_of`` mapping node pixels to node ids and ``edges`` a list of ``[n0, n1, path]`` (path a
    list of pixels from node n0 to node n1, n0 == n1 == -1 for a closed ring of non-node pixels).
    """
    pix = set(zip(*(a.tolist() for a in np.nonzero(skel)), strict=True))
    nbrs = {}
    for r, c in pix:
        out = []
        for dr, dc in _OFFSETS:
            q = (r + dr, c + dc)
            if q not in pix:
                continue
            if dr and dc and ((r + dr, c) in pix or (r, c + dc) in pix):
                continue
            out.append(q)
        nbrs[(r, c)] = out
    node_pix = [p for p in pix if len(nbrs[p]) != 2]
    # union adjacent junction pixels into one node
    parent = {p: p for p in node_pix}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for p in node_pix:
        if len(nbrs[p]) >= 3:
            for q in nbrs[p]:
                if q in parent and len(nbrs[q]) >= 3:
                    parent[find(p)] = find(q)
    ids: dict = {}
    node_of = {p: ids.setdefault(find(p), len(ids)) for p in sorted(node_pix)}
    edges, seen, visited = [], set(), set()
    for p in sorted(node_pix):
        for q in nbrs[p]:
            if (p, q) in seen or node_of.get(q, -2) == node_of[p]:
                continue
            path, prev, cur = [p, q], p, q
            while cur not in node_of:
                visited.add(cur)
                nxt = [s for s in nbrs[cur] if s != prev]
                if not nxt:
                    break
                prev, cur = cur, nxt[0]
                path.append(cur)
            if cur not in node_of:
                continue
            seen.add((p, q))
            seen.add((cur, path[-2]))
            edges.append([node_of[p], node_of[cur], path])
    for p in sorted(pix - visited - set(node_of)):
        if p in visited:
            continue
        path, prev, cur = [p], None, p
        while True:
            visited.add(cur)
            nxt = [s for s in nbrs[cur] if s != prev and s not in visited]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            path.append(cur)
        edges.append([-1, -1, path + [p]])
    return node_of, edges


def _path_length(path) -> float:
    a = np.asarray(path, dtype=float)
    return float(np.hypot(*np.diff(a, axis=0).T).sum()) if len(a) > 1 else 0.0


def _direction(path, k: int = 5) -> np.ndarray:
    a = np.asarray(path[: k + 1], dtype=float)
    d = a[-1] - a[0]
    n = np.hypot(*d)
    return d / n if n > 0 else d


def _skeleton_lines(
    skel: np.ndarray, spur: float, min_length: float, max_turn: float, max_gap: float
) -> list[np.ndarray]:
    """Skeleton -> graph -> pruned, merged pixel polylines (each (K, 2) row/col)."""
    _, edges = _skeleton_graph(skel)
    lengths = [_path_length(e[2]) for e in edges]

    deg: dict[int, int] = {}
    for a, b, _ in edges:
        if a >= 0:
            deg[a] = deg.get(a, 0) + 1
            deg[b] = deg.get(b, 0) + 1
    # prune spurs (terminal edges hanging off a junction), shortest first and one at a time, so of
    # two short forks at a vein's end one stays as its continuation; repeat while spurs appear
    alive = [True] * len(edges)
    changed = True
    while changed:
        changed = False
        for i in sorted((i for i in range(len(edges)) if alive[i] and lengths[i] < spur), key=lengths.__getitem__):
            a, b, _ = edges[i]
            if a >= 0 and ((deg[a] == 1 and deg[b] >= 3) or (deg[b] == 1 and deg[a] >= 3)):
                alive[i] = False
                deg[a] -= 1
                deg[b] -= 1
                changed = True
    edges = [e for e, keep in zip(edges, alive, strict=True) if keep]
    # at each node join the most nearly straight pair of ends, then further pairs turning < max_turn
    ends_at: dict[int, list[tuple[int, int]]] = {}
    for i, (a, b, _) in enumerate(edges):
        if a >= 0 and a != b:
            ends_at.setdefault(a, []).append((i, 0))
            ends_at.setdefault(b, []).append((i, 1))
    link: dict[tuple[int, int], tuple[int, int]] = {}
    chain = list(range(len(edges)))  # union-find over edges joined into one line

    def find(i):
        while chain[i] != i:
            chain[i] = chain[chain[i]]
            i = chain[i]
        return i

    def join(u, v):
        link[u], link[v] = v, u
        chain[find(u[0])] = find(v[0])

    def outward(end):
        path = edges[end[0]][2] if end[1] == 0 else edges[end[0]][2][::-1]
        return _direction(path)

    cos_max = math.cos(math.radians(max_turn))
    for ends in ends_at.values():
        dirs = [outward(e) for e in ends]
        pairs = sorted((float(dirs[u] @ dirs[v]), u, v) for u in range(len(ends)) for v in range(u + 1, len(ends)))
        used: set[int] = set()
        for rank, (dot, u, v) in enumerate(pairs):
            if u in used or v in used or (rank > 0 and -dot < cos_max):
                continue
            join(ends[u], ends[v])
            used |= {u, v}
    # bridge gaps (a vein broken by noise): free ends within max_gap pixels that face each other
    free = [e for ends in ends_at.values() if len(ends) == 1 for e in ends]
    tips = np.array([edges[i][2][0 if s == 0 else -1] for i, s in free], dtype=float).reshape(-1, 2)
    tip = dict(zip(free, tips, strict=True))
    dist = np.hypot(*(tips[:, None] - tips[None]).transpose(2, 0, 1))
    close = zip(*np.nonzero(np.triu(dist <= max_gap, k=1)), strict=True)
    gaps = sorted((float(dist[u, v]), free[u], free[v]) for u, v in close)
    cos_gap = math.cos(math.radians(45.0))
    for d, u, v in gaps:
        if u in link or v in link or find(u[0]) == find(v[0]):
            continue
        g = (tip[v] - tip[u]) / max(d, 1e-9)
        if -outward(u) @ g >= cos_gap and outward(v) @ g >= cos_gap:
            join(u, v)
    # walk the chains of joined edges; drop lines shorter than min_length
    lines, done = [], set()
    starts = [i for i in range(len(edges)) if (i, 0) not in link or (i, 1) not in link]
    for i in starts + list(range(len(edges))):
        if i in done:
            continue
        side = 0 if (i, 0) not in link else 1 if (i, 1) not in link else 0
        coords, cur = [], i
        while cur not in done:
            done.add(cur)
            coords += edges[cur][2] if side == 0 else edges[cur][2][::-1]
            nxt = link.get((cur, 1 - side))
            if nxt is None:
                break
            cur, side = nxt
        if _path_length(coords) >= min_length:
            lines.append(np.asarray(coords, dtype=float))
    return lines


def postprocess(
    image: np.ndarray,
    threshold: float = 0.5,
    extent: Extent = HALF_LEAF_EXTENT,
    min_hole_pixels: int = 4,
    spur_pixels: float = 4.0,
    min_vein_pixels: float = 4.0,
    max_turn: float = 30.0,
    max_gap: float = 3.0,
    *,
    validate: bool = True,
    speck_area: float = 0.25,
    max_fragments: float = 0.1,
    min_area: float = 0.03,
    max_area: float = 0.6,
    max_frame_contact: float = 0.5,
    min_cut_edge: float = 0.8,
    max_isoperimetric: float = 3.5,
    max_hole_fraction: float = 0.5,
    min_vein_length: float = 1.5,
    return_reason: bool = False,
):
    """Convert a generated (leaf, vein) image back to a Leaf (seed 000 §4.2, Fig. 8), or reject it.

    Leaf channel: threshold, keep the largest 8-connected region (stray blobs are noise), fill
    background regions smaller than ``min_hole_pixels``; the outline and each hole are the 0.5
    marching-squares contours of the region and of its enclosed background regions. Vein channel:
    threshold inside the leaf, drop specks, skeletonise, build the skeleton graph, prune spurs
    shorter than ``spur_pixels``, then join edges through junctions (the straightest pair always,
    other pairs turning less than ``max_turn`` degrees), so a vein keeps running through the
    junctions where others start, and bridge gaps of up to ``max_gap`` pixels between free ends
    facing each other (veins broken by noise); lines shorter than ``min_vein_pixels`` are dropped
    and the rest smoothed (Douglas-Peucker, 0.5 px). The longest line becomes the main vein.

    With ``validate`` (the default) the image must also show a half-leaf a digital twin can use
    (the criteria and their measurements: module docstring, "Validity"); areas and lengths are in
    cm of ``extent``, so the criteria do not depend on the image size. The checks run in the order
    of the arguments below, cheap mask checks first, and the first failure is the ``reason``.

    Args:
        image: shape (2, H, W) with H == W, values in [0, 1] (map a tanh output first).
        threshold: level separating foreground from background in both channels.
        extent: the window the image shows, as in ``rasterize``.
        min_hole_pixels: smaller enclosed background regions are filled as noise.
        spur_pixels: skeleton branches shorter than this (hanging off a junction) are removed.
        min_vein_pixels: vein lines shorter than this are removed.
        max_turn: largest turn (degrees) at which further pairs of veins join at a junction.
        max_gap: largest gap (pixels) bridged between two vein ends facing each other.
        validate: apply the validity criteria below; False accepts any geometry the image gives.
        speck_area: leaf-channel components other than the largest and smaller than this (cm^2)
            are specks and ignored (0.25 cm^2: 10 px at 64 px, below the smallest hole).
        max_fragments: ``"fragmented"`` when the other components of at least ``speck_area``
            together exceed this fraction of the leaf's area (one leaf, not pieces of one).
        min_area: ``"area"`` when the leaf (holes filled) covers less than this fraction of the
            window (0.03: a third of the smallest simulated half-leaf, 9 cm^2 of 100)...
        max_area: ...or more than this fraction (0.6: simulated half-leaves cover at most 0.26,
            whole leaves twice that; a leaf channel that is mostly foreground is no leaf).
        max_frame_contact: ``"frame"`` when the leaf runs along the image borders, other than the
            cut edge, for more than this length (cm): it is clipped by the window, so its outline
            is unknown (simulated half-leaves keep 0.5 cm off the top and bottom border).
        min_cut_edge: ``"cut_edge"`` when fewer than this fraction of the rows between the leaf's
            base and tip hold leaf pixels in the cut-edge column (the pixel column at x = 0, the
            main-vein axis; the border column nearest to it when the window misses x = 0): a
            half-leaf runs along its cut edge from base to tip.
        max_isoperimetric: ``"compactness"`` when the outline's isoperimetric ratio
            perimeter^2 / (4 pi area) exceeds this (1 for a disk, 1.34 for a half-disk, 1.35-2.4
            for simulated half-leaves; a ragged or branching region scores far higher). Checked
            after ``"outline"``: the marching-squares ring of the leaf is no valid simple polygon
            (with ``validate`` it is not repaired), or the tissue is invalid.
        max_hole_fraction: ``"holes"`` when a hole is not inside the outline or the holes take
            more than this fraction of the outline's area (the tissue must dominate).
        min_vein_length: ``"veins"`` when no vein line inside the leaf is at least this long (cm;
            1.5: the simulator's shortest vein; the main vein spans most of the leaf).
        return_reason: also return why the image was rejected.

    Returns:
        The Leaf in cm, or None when the image has no leaf, its geometry is invalid or (with
        ``validate``) it fails a criterion. With ``return_reason``, ``(leaf_or_None, reason)``:
        reason None for a leaf, else one of ``"shape"`` (non-finite values or no foreground),
        ``"fragmented"``, ``"area"``, ``"frame"``, ``"cut_edge"``, ``"outline"``,
        ``"compactness"``, ``"holes"``, ``"veins"``.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] != 2 or image.shape[1] != image.shape[2]:
        raise ValueError(f"expected an image of shape (2, H, H), got {image.shape}")

    def done(leaf, reason):
        return (leaf, reason) if return_reason else leaf

    size = image.shape[1]
    if not np.isfinite(image).all():
        return done(None, "shape")
    labels, n = ndimage.label(image[0] > threshold, structure=_EIGHT)
    if n == 0:
        return done(None, "shape")
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    biggest = int(counts.argmax())
    leaf = labels == biggest
    if leaf.sum() < 8:
        return done(None, "shape")
    filled = ndimage.binary_fill_holes(leaf)
    if validate:
        p2 = pixel_size(size, extent) ** 2
        rest = np.delete(counts, [0, biggest]) * p2
        if rest[rest >= speck_area].sum() > max_fragments * counts[biggest] * p2:
            return done(None, "fragmented")
        if not min_area <= filled.mean() <= max_area:
            return done(None, "area")
        cut = int(np.clip(math.floor(-extent[0] / pixel_size(size, extent)), 0, size - 1))
        border = np.zeros_like(filled)
        border[[0, -1], :] = border[:, [0, -1]] = True
        border[1:-1, cut] = False
        if (filled & border).sum() * pixel_size(size, extent) > max_frame_contact:
            return done(None, "frame")
        rows = np.flatnonzero(filled.any(axis=1))
        if filled[rows[0] : rows[-1] + 1, cut].mean() < min_cut_edge:
            return done(None, "cut_edge")
    hole_labels, n_holes = ndimage.label(filled & ~leaf)
    hole_sizes = np.bincount(hole_labels.ravel(), minlength=n_holes + 1)
    small = (hole_sizes < min_hole_pixels)[hole_labels] & (hole_labels > 0)
    leaf |= small
    outline = _contour_polygon(filled, size, extent, "high", repair=not validate)
    if outline is None or outline.is_empty or not outline.is_valid:
        return done(None, "outline")
    if validate and outline.exterior.length**2 / (4 * math.pi * outline.area) > max_isoperimetric:
        return done(None, "compactness")
    holes = []
    for k in range(1, n_holes + 1):
        if hole_sizes[k] < min_hole_pixels:
            continue
        h = _contour_polygon(hole_labels == k, size, extent, "low")
        if h is not None and outline.contains(h):
            holes.append(h)
        elif validate:
            return done(None, "holes")
    if validate and sum(h.area for h in holes) > max_hole_fraction * outline.area:
        return done(None, "holes")
    veins = _veins_from(image[1] > threshold, leaf, size, extent, spur_pixels, min_vein_pixels, max_turn, max_gap)
    if validate and max((v.length for v in veins), default=0.0) < min_vein_length:
        return done(None, "veins")
    main = None
    if veins:
        k = int(np.argmax([v.length for v in veins]))
        main = veins.pop(k)
    result = Leaf(outline, main, tuple(veins), tuple(holes))
    tissue = result.tissue
    if not tissue.is_valid or tissue.is_empty:
        return done(None, "outline")
    return done(result, None)


def _veins_from(mask, leaf, size, extent, spur, min_length, max_turn, max_gap) -> list[LineString]:
    v = mask & leaf
    if not v.any():
        return []
    # fill pin-holes in thick veins (they would make skeleton loops) and drop specks
    lab, _ = ndimage.label(~v)
    sizes = np.bincount(lab.ravel())
    v |= (sizes <= 2)[lab] & (lab > 0)
    lab, _ = ndimage.label(v, structure=_EIGHT)
    sizes = np.bincount(lab.ravel())
    v &= (sizes >= 3)[lab]
    skel = skeletonize(np.pad(v, 1))
    out = []
    for rc in _skeleton_lines(skel, spur, min_length, max_turn, max_gap):
        rc = rc - 1.0
        line = LineString(rc[:, ::-1]).simplify(0.5, preserve_topology=False) if len(rc) > 1 else None
        if line is None or line.length == 0:
            continue
        xy = _to_cm(np.asarray(line.coords)[:, ::-1], size, extent)
        out.append(LineString(xy))
    return out


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def leaf_properties(leaves: Sequence[Leaf | None]) -> dict[str, np.ndarray]:
    """The eight key properties of seed 000 (Fig. 9) per leaf, in cm and cm^2.

    Args:
        leaves: leaves or None (a failed post-processing), length N.

    Returns:
        ``LEAF_PROPERTIES`` -> (N,) float arrays (NaN where the entry is None), plus ``valid``:
        (N,) 1.0 for a leaf, 0.0 for None.
    """
    out = {k: np.full(len(leaves), np.nan) for k in LEAF_PROPERTIES}
    out["valid"] = np.zeros(len(leaves))
    for i, leaf in enumerate(leaves):
        if leaf is None:
            continue
        o = leaf.outline
        xmin, ymin, xmax, ymax = o.bounds
        hole_area = sum(h.intersection(o).area for h in leaf.holes)
        veins = leaf.all_veins
        values = {
            "area": o.area,
            "height": ymax - ymin,
            "width": xmax - xmin,
            "n_holes": len(leaf.holes),
            "hole_area": hole_area,
            "n_veins": len(veins),
            "vein_length": sum(v.length for v in veins),
            "perimeter": o.exterior.length,
        }
        for k, val in values.items():
            out[k][i] = val
        out["valid"][i] = 1.0
    return out


def image_properties(
    images: np.ndarray, threshold: float = 0.5, extent: Extent = HALF_LEAF_EXTENT, **kw
) -> dict[str, np.ndarray]:
    """``postprocess`` every image, then ``leaf_properties``.

    Args:
        images: shape (N, 2, H, H) in [0, 1].
        threshold: passed to ``postprocess``.
        extent: passed to ``postprocess``.
        **kw: further ``postprocess`` options.

    Returns:
        ``leaf_properties`` of the post-processed leaves, ``valid`` marking images that gave one
        (by default only images passing the validity criteria of ``postprocess`` do).
    """
    return leaf_properties([postprocess(im, threshold, extent, **kw) for im in np.asarray(images)])


# --------------------------------------------------------------------------------------------
# GeoJSON / WKT
# --------------------------------------------------------------------------------------------


def to_geojson(leaves: Sequence[Leaf]) -> dict:
    """Export leaves as a GeoJSON FeatureCollection, one Feature per part.

    Each feature has ``properties = {"leaf": i, "part": p}`` with ``p`` one of ``outline``
    (Polygon, exterior only), ``main_vein`` and ``vein`` (LineString) and ``hole`` (Polygon);
    coordinates are in cm in the canonical frame. ``read_geometry`` reads this back.

    Args:
        leaves: the leaves.

    Returns:
        A JSON-serialisable dict.
    """
    features = []

    def add(i, part, geom):
        features.append({"type": "Feature", "properties": {"leaf": i, "part": part}, "geometry": mapping(geom)})

    for i, leaf in enumerate(leaves):
        add(i, "outline", leaf.outline)
        if leaf.main_vein is not None:
            add(i, "main_vein", leaf.main_vein)
        for v in leaf.veins:
            add(i, "vein", v)
        for h in leaf.holes:
            add(i, "hole", h)
    return {"type": "FeatureCollection", "features": features}


def to_wkt(leaves: Sequence[Leaf]) -> str:
    """One line per leaf: ``GEOMETRYCOLLECTION(outline, holes..., main vein, veins...)``."""
    lines = []
    for leaf in leaves:
        parts = [leaf.outline, *leaf.holes, *leaf.all_veins]
        lines.append(GeometryCollection(parts).wkt)
    return "\n".join(lines) + "\n"


def _check_outline(geom, path, where) -> Polygon:
    if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if not isinstance(geom, Polygon) or geom.is_empty:
        raise ValueError(f"{path}: {where}: outline must be a non-empty Polygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise ValueError(f"{path}: {where}: invalid outline ({shapely.is_valid_reason(geom)})")
    return geom


def _assemble(path, where, outline, main, veins, holes) -> Leaf:
    """Leaf from checked parts; ``holes`` as (polygon, where) pairs; interior rings become holes."""
    if outline is None:
        raise ValueError(f"{path}: {where}: no outline")
    geom, at = outline
    outline = _check_outline(geom, path, at)
    holes = [(Polygon(r), at) for r in outline.interiors] + holes
    outline = Polygon(outline.exterior)
    for h, at in holes:
        if not isinstance(h, Polygon) or h.is_empty or not h.is_valid:
            raise ValueError(f"{path}: {at}: a hole must be a valid Polygon")
        if not outline.contains(h):
            raise ValueError(f"{path}: {at}: hole not inside the outline")
    return Leaf(outline, main, tuple(veins), tuple(h for h, _ in holes))


def _read_geojson(path: Path) -> list[Leaf]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{path}: expected a GeoJSON FeatureCollection or Feature")
    groups: dict = {}
    for k, feat in enumerate(data.get("features") or []):
        props = (feat.get("properties") if isinstance(feat, dict) else None) or {}
        leaf_id = props.get("leaf", 0)
        where = f"feature {k} (leaf {leaf_id!r})"
        if not isinstance(feat, dict) or not isinstance(leaf_id, (int, str)):
            raise ValueError(f"{path}: {where}: not a Feature with an integer or string 'leaf'")
        try:
            geom = shape(feat["geometry"]) if feat.get("geometry") else None
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as err:
            raise ValueError(f"{path}: {where}: unreadable geometry ({err})") from err
        if geom is None or geom.is_empty:
            raise ValueError(f"{path}: {where}: missing geometry")
        part = props.get("part") or ("outline" if geom.geom_type in ("Polygon", "MultiPolygon") else "vein")
        if part not in _PARTS:
            raise ValueError(f"{path}: {where}: unknown part {part!r}, expected one of {_PARTS}")
        g = groups.setdefault(leaf_id, {"outline": None, "main": None, "veins": [], "holes": [], "first": k})
        if part == "outline":
            if g["outline"] is not None:
                raise ValueError(f"{path}: {where}: second outline for the same leaf")
            g["outline"] = (geom, where)
        elif part == "hole":
            g["holes"] += [(h, where) for h in (geom.geoms if isinstance(geom, MultiPolygon) else [geom])]
        else:
            lines = _lines(geom)
            if not lines:
                raise ValueError(f"{path}: {where}: a {part} must be a LineString or MultiLineString")
            if part == "main_vein" and g["main"] is not None:
                raise ValueError(f"{path}: {where}: second main vein for the same leaf")
            if part == "main_vein":
                g["main"], lines = lines[0], lines[1:]
            g["veins"] += lines
    if not groups:
        raise ValueError(f"{path}: no features")
    return [
        _assemble(path, f"leaf {i!r} (first feature {g['first']})", g["outline"], g["main"], g["veins"], g["holes"])
        for i, g in groups.items()
    ]


def _read_wkt(path: Path) -> list[Leaf]:
    leaves = []
    for k, text in enumerate(path.read_text().splitlines()):
        if not text.strip():
            continue
        where = f"line {k + 1}"
        try:
            geom = shapely.from_wkt(text)
        except shapely.errors.GEOSException as err:
            raise ValueError(f"{path}: {where}: unreadable WKT ({err})") from err
        parts = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
        polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        lines = [line for p in parts if p.geom_type in ("LineString", "MultiLineString") for line in _lines(p)]
        outline = (polys[0], where) if polys else None
        holes = [(h, where) for p in polys[1:] for h in (p.geoms if isinstance(p, MultiPolygon) else [p])]
        leaves.append(_assemble(path, where, outline, lines[0] if lines else None, lines[1:], holes))
    return leaves


def read_geometry(path: str | Path) -> list[Leaf]:
    """Read user leaf geometry (e.g. real scanned leaves) from GeoJSON or WKT.

    GeoJSON (``.geojson``/``.json``): features grouped by ``properties.leaf`` (0 when absent), each
    naming its ``properties.part`` (``outline``, ``main_vein``, ``vein``, ``hole``; when absent a
    polygon is the outline and a line a vein); the layout written by ``to_geojson``. Interior rings
    of an outline become holes. WKT (any other suffix): one leaf per non-empty line, a geometry or
    ``GEOMETRYCOLLECTION`` whose first polygon is the outline, further polygons holes, first line
    the main vein and further lines veins (the layout of ``to_wkt``). Coordinates are taken as cm;
    ``half_leaves`` moves leaves to the canonical frame.

    Args:
        path: the file.

    Returns:
        The leaves, in file order.

    Raises:
        ValueError: naming the file and the feature (index and leaf id) or WKT line when an outline
            is missing or invalid, a part is unknown or a geometry unreadable.
    """
    path = Path(path)
    if path.suffix.lower() in (".geojson", ".json"):
        return _read_geojson(path)
    return _read_wkt(path)
