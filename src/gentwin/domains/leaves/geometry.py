"""A leaf as geometry (outline, main vein, veins, holes) and half-leaves; conventions in docs/leaves.md."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import shapely
from shapely import affinity, ops
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPolygon,
    Polygon,
    box,
)

Extent = tuple[float, float, float, float]

HALF_LEAF_EXTENT: Extent = (0.0, -0.5, 10.0, 9.5)
"""Window (cm) of a half-leaf image: cut edge on the left border, base at y = 0."""

FULL_LEAF_EXTENT: Extent = (-5.0, -0.5, 5.0, 9.5)
"""Window (cm) of a whole-leaf image, main vein in the middle column boundary."""

LEAF_PROPERTIES = ("area", "height", "width", "n_holes", "hole_area", "n_veins", "vein_length", "perimeter")
"""The eight key properties of van Beek 2023 (leaf digital twin) (see the module docstring for the eighth)."""

PARTS = ("outline", "main_vein", "vein", "hole")


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




def lines_of(geom) -> list[LineString]:
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
        return [line for g in geom.geoms for line in lines_of(g)]
    return []


def polygons_of(geom) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom] if geom.area > 0 else []
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        return [p for g in geom.geoms for p in polygons_of(g)]
    return []




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
    outline = max(polygons_of(leaf.outline.intersection(side)), key=lambda p: p.area)
    main = lines_of(leaf.main_vein.intersection(side))
    main_vein = max(main, key=lambda v: v.length) if main else None
    veins = [p for v in leaf.veins for p in lines_of(v.intersection(side))]
    holes = [p for h in leaf.holes for p in polygons_of(h.intersection(side))]
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
    """Cut each leaf along its main-vein axis into right and mirrored left half (van Beek 2023 §3.2).

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
