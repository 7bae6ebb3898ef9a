"""Leaves: simulator, half-leaves, rasteriser, post-processing, properties, GeoJSON/WKT, metric."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from gentwin.domains.leaves.geometry import LEAF_PROPERTIES, Leaf, half_leaves
from gentwin.domains.leaves.io import read_geometry, to_geojson, to_wkt
from gentwin.domains.leaves.postprocess import postprocess
from gentwin.domains.leaves.properties import image_properties, leaf_properties
from gentwin.domains.leaves.raster import pixel_size, rasterize
from gentwin.domains.leaves.simulator import simulate_leaves
from gentwin.metrics.properties import property_metric


@pytest.fixture(scope="module")
def leaves():
    return simulate_leaves(20, np.random.default_rng(0))


@pytest.fixture(scope="module")
def halves(leaves):
    return half_leaves(leaves)


@pytest.fixture(scope="module")
def images(halves):
    return rasterize(halves, size=64)


def _square_leaf() -> Leaf:
    """A 4 x 6 cm rectangle with one 1 x 1 cm hole, a main vein and one secondary vein."""
    return Leaf(
        outline=box(0.0, 0.0, 4.0, 6.0),
        main_vein=LineString([(0.0, 0.0), (0.0, 5.5)]),
        veins=(LineString([(0.0, 1.0), (3.0, 4.0)]),),
        holes=(box(2.5, 0.5, 3.5, 1.5),),
    )


def test_simulated_leaves_are_valid_and_deterministic(leaves):
    again = simulate_leaves(20, np.random.default_rng(0))
    assert all(a.outline.equals_exact(b.outline, 0.0) for a, b in zip(leaves, again, strict=True))
    for leaf in leaves:
        assert leaf.outline.is_valid and leaf.tissue.is_valid and not leaf.outline.interiors
        assert len(leaf.veins) >= 2 and leaf.main_vein is not None
        grown = leaf.outline.buffer(1e-9)
        assert all(grown.contains(v) for v in leaf.all_veins)
        for i, h in enumerate(leaf.holes):
            assert h.is_valid and leaf.outline.contains(h)
            assert all(h.distance(g) > 0.4 for g in leaf.holes[i + 1 :])
            # veins are cut by the holes they cross
            assert all(h.intersection(v).length < 1e-9 for v in leaf.all_veins)


def test_simulator_follows_its_parameters():
    rng = np.random.default_rng(1)
    short = simulate_leaves(20, rng, length=(6.0, 0.2), width=(5.0, 0.2), holes=0.0, branch_prob=0.0)
    long = simulate_leaves(20, rng, length=(8.5, 0.2), width=(7.5, 0.2), holes=2.0)
    h_short = np.array([leaf.outline.bounds[3] for leaf in short])
    h_long = np.array([leaf.outline.bounds[3] for leaf in long])
    assert abs(h_short.mean() - 6.0) < 0.15 and abs(h_long.mean() - 8.5) < 0.15
    w_long = np.array([leaf.outline.bounds[2] - leaf.outline.bounds[0] for leaf in long])
    assert 6.5 < w_long.mean() < 8.5  # width = 7.5 times the random margin modulation
    assert sum(len(leaf.holes) for leaf in short) == 0
    n_holes = np.array([len(leaf.holes) for leaf in long])
    assert 1.2 < n_holes.mean() <= 2.5 and (n_holes == 0).any()  # most of Poisson(2) is placed
    # 6 secondary veins per side fit on 8.5 cm leaves, 3 on 6 cm ones (no branches, no holes there)
    assert np.mean([len(x.veins) for x in short]) < np.mean([len(x.veins) for x in long]) - 2


def test_half_leaves_split_and_mirror(leaves, halves):
    assert len(halves) == 2 * len(leaves)
    for leaf, right, left in zip(leaves, halves[::2], halves[1::2], strict=True):
        for half in (right, left):
            assert half.outline.is_valid and half.outline.bounds[0] > -1e-9
            assert half.main_vein is not None and max(abs(x) for x, _ in half.main_vein.coords) < 1e-12
        assert right.outline.area + left.outline.area == pytest.approx(leaf.outline.area, rel=1e-9)
        assert len(right.holes) + len(left.holes) == len(leaf.holes)
        assert len(right.veins) + len(left.veins) == len(leaf.veins)
    # a leaf given in any position and orientation is cut along its own main vein
    leaf = leaves[0]
    moved = Leaf(
        *(
            shapely.affinity.rotate(shapely.affinity.translate(g, 3.0, -2.0), 40.0, origin=(0, 0))
            for g in (leaf.outline, leaf.main_vein)
        ),
    )
    a, b = half_leaves([moved])
    assert a.outline.equals_exact(halves[0].outline, 1e-9) and b.outline.equals_exact(halves[1].outline, 1e-9)


def test_rasterize_scale_and_range():
    leaf = _square_leaf()
    img = rasterize([leaf], size=64)
    assert img.shape == (1, 2, 64, 64) and img.dtype == np.float32
    assert set(np.unique(img)) <= {0.0, 1.0}
    p = pixel_size(64)
    assert p == pytest.approx(10.0 / 64)
    # edges on pixel boundaries (x = 0, 4 = 25.6 p is not): k pixels are k p^2 cm^2
    aligned = Leaf(box(0.0, 9.5 - 40 * p, 24 * p, 9.5 - 2 * p))
    assert rasterize([aligned])[0, 0].sum() * p**2 == pytest.approx(aligned.outline.area, rel=1e-6)
    # a smooth edge off the lattice's symmetry points: errors of a fraction of the boundary pixels
    disk = Leaf(shapely.Point(2.53, 4.47).buffer(2.0, quad_segs=64))
    assert rasterize([disk])[0, 0].sum() * p**2 == pytest.approx(disk.outline.area, rel=0.015)
    assert (img[0, 1] <= img[0, 0]).all() and img[0, 1].sum() > 0  # veins only on the tissue
    # main vein (y = 0 .. 5.5) on the left border column: rows (9.5 - y) / p = 60.8 .. 25.6
    assert img[0, 1, 26:60, 0].all() and not img[0, 1, :25, 0].any()
    soft = rasterize([leaf], size=32, supersample=4)
    assert soft.min() >= 0 and soft.max() <= 1 and ((soft > 0) & (soft < 1)).any()
    assert soft[0, 0].sum() * pixel_size(32) ** 2 == pytest.approx(leaf.tissue.area, rel=0.01)
    assert rasterize([leaf], size=128).shape == (1, 2, 128, 128)


def test_rasterize_then_postprocess_recovers_properties(halves, images):
    real = leaf_properties(halves)
    rec = image_properties(images)
    assert rec["valid"].all()
    area_ok = np.abs(rec["area"] / real["area"] - 1) < 0.03
    holes_ok = rec["n_holes"] == real["n_holes"]
    veins_ok = np.abs(rec["n_veins"] - real["n_veins"]) <= 1
    assert area_ok.mean() >= 0.95 and holes_ok.mean() >= 0.95 and veins_ok.mean() >= 0.95
    assert real["n_holes"].sum() >= 5  # the set exercises holes
    assert np.nanmean(np.abs(rec["height"] - real["height"])) < 2 * pixel_size(64)
    assert np.nanmean(np.abs(rec["vein_length"] / real["vein_length"] - 1)) < 0.1
    assert abs(np.mean(rec["perimeter"] / real["perimeter"]) - 1) < 0.04  # the staircase adds ~1.6 %


def test_postprocess_returns_geometry_in_cm(halves, images):
    leaf = postprocess(images[0])
    assert isinstance(leaf, Leaf) and leaf.outline.is_valid and leaf.tissue.is_valid
    assert leaf.outline.symmetric_difference(halves[0].outline).area < 0.05 * halves[0].outline.area
    assert leaf.main_vein is not None and abs(leaf.main_vein.centroid.x) < 2 * pixel_size(64)


def test_postprocess_is_robust_to_noise(halves, images):
    rng = np.random.default_rng(3)
    noisy = np.clip(images + rng.normal(0.0, 0.2, images.shape), 0.0, 1.0).astype(np.float32)
    real, rec = leaf_properties(halves), image_properties(noisy)
    assert rec["valid"].all()
    assert (np.abs(rec["area"] / real["area"] - 1) < 0.03).mean() >= 0.95
    assert (rec["n_holes"] == real["n_holes"]).mean() >= 0.9
    assert (np.abs(rec["n_veins"] - real["n_veins"]) <= 1).mean() >= 0.9



def test_postprocess_all_reports_its_images_with_an_eta_when_there_are_many(images, monkeypatch, capsys):
    from gentwin import progress
    from gentwin.domains.leaves import postprocess as pp

    told = []
    few = pp.postprocess_all(images[:3], progress=lambda f, detail: told.append((f, detail)))
    assert all(isinstance(leaf, Leaf) for leaf in few) and told == []  # fewer than PROGRESS_IMAGES: silent
    monkeypatch.setattr(pp, "PROGRESS_IMAGES", 3)
    out = []
    leaves = pp.postprocess_all(images[:4], return_reason=True, progress=progress.Lines("leaves", every=0.0,
                                                                                         write=out.append))
    assert [reason for _, reason in leaves] == [None] * 4 and leaves[0][0].outline.equals(few[0].outline)
    assert len(out) == 4 and out[0].startswith("leaves  25%  1/4 images  ") and re.search(r", ETA \d+s$", out[0])
    assert out[-1].startswith("leaves 100%  4/4 images  ") and out[-1].endswith(", done")
    monkeypatch.setattr(progress, "AFTER", 0.0)  # inside a command's progress: lines on stdout
    with progress.shown():
        image_properties(images[:4])
    assert re.search(r"^leaf post-processing  25%  1/4 images  \d+s, ETA \d+s$", capsys.readouterr().out, re.M)

def test_postprocess_failures_are_none_not_errors():
    assert postprocess(np.zeros((2, 64, 64), np.float32)) is None
    assert postprocess(np.full((2, 64, 64), np.nan, np.float32)) is None
    rng = np.random.default_rng(0)
    for _ in range(3):  # pure noise: any outcome but an exception
        out = postprocess(rng.random((2, 64, 64)).astype(np.float32))
        assert out is None or out.outline.is_valid
    props = image_properties(np.zeros((3, 2, 32, 32), np.float32))
    assert (props["valid"] == 0).all() and np.isnan(props["area"]).all()
    with pytest.raises(ValueError, match="shape"):
        postprocess(np.zeros((3, 64, 64)))


# --------------------------------------------------------------------------------------------
# Validity: only usable half-leaves count (``valid_rate`` of van Beek's (2023, leaf digital twin) metric)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def more_images():
    """80 further simulated half-leaves at 64 px."""
    return rasterize(half_leaves(simulate_leaves(40, np.random.default_rng(11))), size=64)


def _reason(image, **kw):
    return postprocess(image, return_reason=True, **kw)[1]


def test_simulated_half_leaves_stay_valid(more_images):
    assert np.mean([_reason(im) is None for im in more_images]) >= 0.97
    rng = np.random.default_rng(12)
    noisy = np.clip(more_images + rng.normal(0.0, 0.2, more_images.shape), 0.0, 1.0).astype(np.float32)
    assert image_properties(noisy)["valid"].mean() >= 0.95


def test_uniform_noise_is_invalid():
    noise = np.random.default_rng(0).random((100, 2, 64, 64)).astype(np.float32)
    assert image_properties(noise)["valid"].mean() <= 0.02
    # the criteria reject it: the geometry alone would pass it as a leaf
    assert all(postprocess(im, validate=False) is not None for im in noise[:5])


def _off_edge_shapes(rng: np.random.Generator, n: int, size: int = 64) -> np.ndarray:
    """Gaussian blobs and rectangles of leaf size, clear of the cut edge (column 0) and the frame.

    The vein channel holds a horizontal and a vertical line through the shape's centre.
    """
    r, c = np.mgrid[:size, :size].astype(float)
    out = np.zeros((n, 2, size, size), np.float32)
    for k in range(n):
        if k % 2 == 0:  # exp(-d^2 / 2 s^2) > 0.5 is a disk of radius 1.18 s
            s = rng.uniform(6.0, 12.0)
            rad = 1.18 * s
            cy, cx = rng.uniform(rad + 2, size - rad - 2), rng.uniform(rad + 2, size - rad - 2)
            out[k, 0] = np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * s**2))
        else:
            h, w = rng.integers(12, 50), rng.integers(10, 40)
            top, left = rng.integers(2, size - h - 1), rng.integers(2, size - w - 1)
            out[k, 0, top : top + h, left : left + w] = 1.0
            cy, cx = top + h / 2, left + w / 2
        out[k, 1] = (out[k, 0] > 0.5) & ((np.abs(r - cy) < 1) | (np.abs(c - cx) < 1))
    return out


def test_shapes_off_the_cut_edge_are_invalid():
    shapes = _off_edge_shapes(np.random.default_rng(1), 100)
    assert shapes[:, 0, :, :2].max() < 0.5  # clear of the cut edge
    reasons = [_reason(im) for im in shapes]
    assert np.mean([x is not None for x in reasons]) >= 0.95
    # they are leaf-sized and compact, so it is the cut edge that rejects them
    assert np.mean([_reason(im, min_cut_edge=0.0) is None for im in shapes]) >= 0.8


def test_blank_and_full_images_are_invalid():
    for value in (0.0, 1.0):
        assert postprocess(np.full((2, 64, 64), value, np.float32)) is None
    leaf_only = np.zeros((2, 64, 64), np.float32)
    leaf_only[0] = 1.0
    assert _reason(leaf_only) == "area"


def _shifted(leaf: Leaf, dx: float, dy: float) -> Leaf:
    def f(g):
        return shapely.affinity.translate(g, dx, dy)

    return Leaf(f(leaf.outline), f(leaf.main_vein), tuple(map(f, leaf.veins)), tuple(map(f, leaf.holes)))


def _defect(kind: str, leaf: Leaf, image: np.ndarray) -> np.ndarray:
    """An image of ``leaf`` (or a leaf-like shape) with one defect."""
    axis = LineString([(0.0, 0.0), (0.0, 8.0)])
    if kind == "fragmented":  # a detached piece of 2.8 cm^2 (17 % of the leaf) right of it
        r, c = np.mgrid[:64, :64]
        out = image.copy()
        out[0][(r - 32) ** 2 + (c - 52) ** 2 <= 36] = 1.0
        return out
    if kind == "area":  # 2 cm^2
        return rasterize([Leaf(box(0.0, 0.0, 1.0, 2.0), LineString([(0.0, 0.0), (0.0, 2.0)]))])[0]
    if kind == "frame":  # moved up 3 cm: the top 1.1 cm leaves the window
        return rasterize([_shifted(leaf, 0.0, 3.0)])[0]
    if kind == "cut_edge":  # moved 1 cm off the main-vein axis
        return rasterize([_shifted(leaf, 1.0, 0.0)])[0]
    if kind == "compactness":  # a comb: spine on the cut edge, ten 0.3 cm teeth
        teeth = [box(0.0, 0.5 + 0.8 * k, 6.0, 0.8 + 0.8 * k) for k in range(10)]
        return rasterize([Leaf(shapely.union_all([box(0.0, 0.0, 0.6, 8.2), *teeth]), axis)])[0]
    if kind == "holes":  # 24 square holes, 57 % of the outline
        corners = [(0.3 + 1.3 * i, 0.3 + 1.3 * j) for i in range(4) for j in range(6)]
        holes = tuple(box(x, y, x + 1.05, y + 1.05) for x, y in corners)
        return rasterize([Leaf(box(0.0, 0.0, 5.55, 8.1), axis, (), holes)])[0]
    if kind == "veins":  # the vein channel left empty
        out = image.copy()
        out[1] = 0.0
        return out
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["fragmented", "area", "frame", "cut_edge", "compactness", "holes", "veins"])
def test_each_validity_criterion_rejects_its_defect(kind, halves, images):
    assert _reason(images[0]) is None
    bad = _defect(kind, halves[0], images[0])
    assert _reason(bad) == kind
    assert postprocess(bad, validate=False) is not None  # the geometry exists; the criterion rejects it


def test_leaf_properties_exact_values():
    props = leaf_properties([_square_leaf(), None])
    assert set(props) == {*LEAF_PROPERTIES, "valid"}
    expected = dict(area=24.0, height=6.0, width=4.0, n_holes=1, hole_area=1.0, n_veins=2, perimeter=20.0)
    for k, v in expected.items():
        assert props[k][0] == pytest.approx(v), k
    assert props["vein_length"][0] == pytest.approx(5.5 + 3 * np.sqrt(2))
    assert props["valid"].tolist() == [1.0, 0.0]
    assert all(np.isnan(props[k][1]) for k in LEAF_PROPERTIES)


def _same(a: Leaf, b: Leaf) -> bool:
    parts = lambda x: [x.outline, x.main_vein, *x.veins, *x.holes]  # noqa: E731
    return len(parts(a)) == len(parts(b)) and all(
        p.equals_exact(q, 1e-9) for p, q in zip(parts(a), parts(b), strict=True)
    )


def test_geojson_and_wkt_round_trip(halves, tmp_path):
    leaves = halves[:6]
    path = tmp_path / "leaves.geojson"
    path.write_text(json.dumps(to_geojson(leaves)))
    back = read_geometry(path)
    assert len(back) == len(leaves) and all(_same(a, b) for a, b in zip(leaves, back, strict=True))
    wkt = tmp_path / "leaves.wkt"
    wkt.write_text(to_wkt(leaves))
    back = read_geometry(wkt)
    assert all(_same(a, b) for a, b in zip(leaves, back, strict=True))


_LINE = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
_SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
_FAR = {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 5]]]}
_BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
_HUGE = {"type": "LineString", "coordinates": [[0, 0], [1e300, 1e300]]}


def test_read_geometry_user_forms(tmp_path):
    # a bare polygon with an interior ring: the ring becomes a hole, an unlabelled line a vein
    outline = Polygon([(0, 0), (3, 0), (3, 5), (0, 5)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(outline)},
            {"type": "Feature", "properties": None, "geometry": _LINE},
        ],
    }
    path = tmp_path / "user.json"
    path.write_text(json.dumps(fc))
    (leaf,) = read_geometry(path)
    assert len(leaf.holes) == 1 and not leaf.outline.interiors and len(leaf.veins) == 1


@pytest.mark.parametrize(
    ("features", "match"),
    [
        ([({"leaf": "a", "part": "vein"}, _LINE)], r"bad\.geojson: leaf 'a' \(first feature 0\): no outline"),
        (
            [({"leaf": 7, "part": "outline"}, _SQUARE), ({"leaf": 8, "part": "outline"}, _BOWTIE)],
            r"bad\.geojson: feature 1 \(leaf 8\): invalid outline",
        ),
        ([({"leaf": 0, "part": "outline"}, None)], r"bad\.geojson: feature 0 \(leaf 0\): missing geometry"),
        (
            [({"part": "outline"}, _LINE)],
            r"bad\.geojson: feature 0 \(leaf 0\): outline must be a non-empty Polygon",
        ),
        ([({"leaf": 0, "part": "stem"}, _LINE)], r"bad\.geojson: feature 0 \(leaf 0\): unknown part 'stem'"),
        (
            [({"leaf": 0, "part": "outline"}, _SQUARE), ({"leaf": 0, "part": "hole"}, _FAR)],
            r"bad\.geojson: feature 1 \(leaf 0\): hole not inside the outline",
        ),
        (
            [({"leaf": 0, "part": "outline"}, _SQUARE), ({"leaf": 0, "part": "main_vein"}, _HUGE)],
            r"bad\.geojson: feature 1 \(leaf 0\): coordinate \(1e\+300, 1e\+300\) is not within ±1e\+06 cm$",
        ),
    ],
)
def test_read_geometry_errors_name_file_and_feature(tmp_path, features, match):
    path = tmp_path / "bad.geojson"
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
    }
    path.write_text(json.dumps(fc))
    with pytest.raises(ValueError, match=match):
        read_geometry(path)


def test_a_binary_or_huge_geometry_file_is_refused_in_one_line_naming_it(tmp_path):
    from conftest import cli, run_dirs

    for name in ("binary.geojson", "binary.wkt"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
        with pytest.raises(ValueError, match=rf"^\S*{name}: not a text file \(byte 0x89 at offset 0 "):
            read_geometry(tmp_path / name)
    (tmp_path / "huge.wkt").write_text("POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))\nGEOMETRYCOLLECTION (POLYGON ((0 0, 2 0, "
                                       "2 2, 0 2, 0 0)), LINESTRING (0 0, 1e300 1))\n")
    with pytest.raises(ValueError, match=r"huge\.wkt: line 2: coordinate \(1e\+300, 1\) is not within"):
        read_geometry(tmp_path / "huge.wkt")
    leaves = [{"type": "Feature", "properties": {"leaf": i, "part": part}, "geometry": geometry}
              for i in range(4) for part, geometry in (("outline", _SQUARE), ("main_vein", _HUGE))]
    (tmp_path / "huge.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": leaves}))
    r = cli("run", "dataset=leaves", "dataset.geometry=huge.geojson", "dataset.batch_size=2", "threads=1",
            cwd=tmp_path)
    assert r.returncode == 3, r.stderr[-3000:]
    assert r.stderr.strip().splitlines() == ["error: huge.geojson: feature 1 (leaf 0): coordinate (1e+300, 1e+300) "
                                             "is not within ±1e+06 cm"]
    assert run_dirs(tmp_path) == [] and not (tmp_path / "outputs").exists()


def test_read_wkt_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.wkt"
    path.write_text("POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))\nLINESTRING (0 0, 1 1)\n")
    with pytest.raises(ValueError, match=r"bad\.wkt: line 2: no outline"):
        read_geometry(path)
    path.write_text("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))\n")
    with pytest.raises(ValueError, match=r"bad\.wkt: line 1: invalid outline"):
        read_geometry(path)


def test_leaf_property_metric(halves, images):
    real = leaf_properties(halves)
    same = property_metric(real, real)
    assert same["valid_rate"] == 1.0
    assert all(same[f"{p}_w1"] == 0.0 and same[f"{p}_ks"] == 0.0 for p in LEAF_PROPERTIES)
    fake = leaf_properties(halves[:10] + [None] * 10)
    fake["area"][:10] *= 1.5
    out = property_metric(real, fake)
    assert out["valid_rate"] == 0.5
    assert out["area_w1"] > 0.5 and out["area_ks"] > 0.3
    assert np.isfinite(out["n_veins_w1"])


def test_leaf_images_are_drawn_in_the_leaf_palette_by_the_datamodule_and_generically_elsewhere():
    import matplotlib.pyplot as plt

    from gentwin.domains.leaves.datamodule import LeafDataModule
    from gentwin.plots.images import to_rgb

    leaf_only = np.zeros((1, 2, 32, 32), np.float32)
    leaf_only[0, 0] = 1.0
    white, green = [1.0, 1.0, 1.0], [0.35, 0.65, 0.25]
    # generic 2-channel images: channel 0 red, channel 1 green, on black
    np.testing.assert_allclose(to_rgb(leaf_only)[0, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(to_rgb(np.zeros_like(leaf_only))[0, 0, 0], [0.0, 0.0, 0.0])
    dm = LeafDataModule(n=6, size=32, val_fraction=0.34, batch_size=2, grid_size=4)
    (progress,) = dm.callbacks()  # the TensorBoard grids use the datamodule's palette
    np.testing.assert_allclose(progress.rgb(leaf_only)[0, 0, 0], green)
    dm.setup()
    figs = dm.figures(dm.x_raw_val, leaf_only, None)
    real_grid, fake_grid = (ax.images[0].get_array() for ax in figs["samples"].axes)
    np.testing.assert_allclose(fake_grid[1, 1], green)  # pad 1: the first image's corner pixel
    np.testing.assert_allclose(real_grid[1, 1], white)  # a half-leaf's window corner: background
    for fig in figs.values():
        plt.close(fig)
