"""Leaves to and from GeoJSON and WKT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import (
    GeometryCollection,
    MultiPolygon,
    Polygon,
    mapping,
    shape,
)

from gentwin.domains.leaves.geometry import PARTS, Leaf, lines_of


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


#: Coordinates are cm; beyond this (10 km) the geometry operations overflow or lose all precision.
MAX_COORDINATE = 1e6


def _check_coordinates(geom, path, where) -> None:
    """Refuses a geometry holding a coordinate that is not finite or beyond ``MAX_COORDINATE``."""
    xy = shapely.get_coordinates(geom)
    bad = ~(np.abs(xy) <= MAX_COORDINATE).all(axis=1)
    if bad.any():
        x, y = xy[np.argmax(bad)]
        raise ValueError(f"{path}: {where}: coordinate ({x:g}, {y:g}) is not within ±{MAX_COORDINATE:g} cm")


def _read_text(path: Path, expected: str) -> str:
    from gentwin.errors import not_text

    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(not_text(path, e, expected)) from None


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
        data = json.loads(_read_text(path, "a GeoJSON file of leaves"))
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
        _check_coordinates(geom, path, where)
        part = props.get("part") or ("outline" if geom.geom_type in ("Polygon", "MultiPolygon") else "vein")
        if part not in PARTS:
            raise ValueError(f"{path}: {where}: unknown part {part!r}, expected one of {PARTS}")
        g = groups.setdefault(leaf_id, {"outline": None, "main": None, "veins": [], "holes": [], "first": k})
        if part == "outline":
            if g["outline"] is not None:
                raise ValueError(f"{path}: {where}: second outline for the same leaf")
            g["outline"] = (geom, where)
        elif part == "hole":
            g["holes"] += [(h, where) for h in (geom.geoms if isinstance(geom, MultiPolygon) else [geom])]
        else:
            lines = lines_of(geom)
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
    for k, text in enumerate(_read_text(path, "a WKT file of leaves, one a line").splitlines()):
        if not text.strip():
            continue
        where = f"line {k + 1}"
        try:
            geom = shapely.from_wkt(text)
        except shapely.errors.GEOSException as err:
            raise ValueError(f"{path}: {where}: unreadable WKT ({err})") from err
        _check_coordinates(geom, path, where)
        parts = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
        polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
        lines = [line for p in parts if p.geom_type in ("LineString", "MultiLineString") for line in lines_of(p)]
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
            is missing or invalid, a part is unknown, a geometry unreadable or a coordinate not finite or
            beyond ``MAX_COORDINATE``; naming the file when it is not text.
    """
    path = Path(path)
    if path.suffix.lower() in (".geojson", ".json"):
        return _read_geojson(path)
    return _read_wkt(path)
