"""Generated images back to leaf geometry: contours, skeleton veins, validity (docs/leaves.md)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from shapely.geometry import (
    LineString,
    Polygon,
)
from skimage.measure import find_contours
from skimage.morphology import skeletonize

from gentwin.domains.leaves.geometry import HALF_LEAF_EXTENT, Extent, Leaf, polygons_of
from gentwin.domains.leaves.raster import pixel_size

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
        parts = polygons_of(poly.buffer(0))
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
    """Convert a generated (leaf, vein) image back to a Leaf (van Beek 2023 (leaf digital twin) §4.2, Fig. 8), or
    reject it.

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



#: From this many images on, :func:`postprocess_all` reports its progress (a few seconds' work and more).
PROGRESS_IMAGES = 200


def postprocess_all(images, *args, progress=None, **kw) -> list:
    """:func:`postprocess` of each image of ``images`` (N, 2, H, W), in order; ``args`` and ``kw`` as there.

    ``progress`` is told ``(fraction, "<i>/<N> images")`` after each image, from ``PROGRESS_IMAGES``
    images on: a ``gentwin.progress.Lines`` (its ``update``) or any callable. Default:
    ``gentwin.progress.job("leaf post-processing")``, lines only inside a command's ``progress.shown()``.
    """
    from gentwin.progress import job

    images = np.asarray(images)
    if len(images) < PROGRESS_IMAGES:
        return [postprocess(im, *args, **kw) for im in images]
    if progress is None:
        progress = job("leaf post-processing")
    report = getattr(progress, "update", progress)  # a Lines, or any callable (fraction, detail)
    out = []
    for i, im in enumerate(images, 1):
        out.append(postprocess(im, *args, **kw))
        if report:
            report(i / len(images), f"{i}/{len(images)} images")
    return out

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
