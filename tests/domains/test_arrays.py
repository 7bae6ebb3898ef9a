"""dataset=arrays: HDF5, ROOT, npz/npy and CSV files by config; every family trains on them; bad input refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import uproot

from conftest import assert_rounding_close, cli, compose, fit, run_dirs
from gentwin.data.files import read_arrays
from gentwin.domains.arrays.datamodule import ArraysDataModule
from gentwin.errors import ConfigError, DataError

N = 320
SMALL = ["threads=1", "dataset.batch_size=16", "trainer.max_epochs=1"]


def showers(rng, n=N):
    """CaloChallenge's layout: incident energies (N, 1) and showers (N, voxels) growing with them."""
    energy = rng.uniform(1.0, 100.0, (n, 1))
    return energy, rng.gamma(2.0, 1.0, (n, 12)) * energy / 50


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    energy, shower = showers(rng)
    paths = {"h5": tmp_path / "calo.h5", "root": tmp_path / "events.root", "npz": tmp_path / "images.npz",
             "csv": tmp_path / "table.csv", "npy": tmp_path / "plain.npy"}
    with h5py.File(paths["h5"], "w") as f:
        f["incident_energies"], f["showers"] = energy, shower
    images = rng.random((N, 8, 8)).astype(np.float32)
    with uproot.recreate(paths["root"]) as f:
        f.mktree("events", {"px": np.float64, "py": np.float64, "e": np.float32, "image": (np.float32, (8, 8)),
                            "hits": "var * float32"})
        import awkward as ak

        f["events"].extend({"px": rng.normal(size=N), "py": rng.normal(size=N), "e": rng.gamma(2.0, size=N),
                            "image": images, "hits": ak.Array([[1.0] * (i % 3) for i in range(N)])})
        f.mktree("other", {"a": np.float64})
    np.savez(paths["npz"], x=images, c=rng.uniform(size=(N, 2)).astype(np.float32))
    table = np.column_stack([rng.normal(size=N), rng.normal(size=N) * 3 + 1, rng.uniform(size=N)])
    np.savetxt(paths["csv"], table, delimiter=",", header="a,b,t", comments="")
    np.save(paths["npy"], rng.normal(size=(N, 3)))
    return paths


@pytest.mark.parametrize("fmt,keys,model,shape,cond", [
    ("h5", ["dataset.x=showers", "dataset.c=incident_energies"], "wgan_gp", (12,), 1),
    ("h5", ["dataset.x=showers", "dataset.c=incident_energies", "dataset/transform=log1p_standardize"], "cvae",
     (12,), 1),
    ("h5", ["dataset.x=showers", "dataset.c=incident_energies", "dataset/transform=log1p"], "maf", (12,), 1),
    ("root", ["dataset.tree=events", "dataset.x=[px,py,e]", "dataset.c=null"], "gan", (3,), 0),
    ("root", ["dataset.tree=events", "dataset.x=image", "dataset.c=[px,py]"], "vae", (8, 8), 2),
    ("npz", ["dataset.x=x", "dataset.c=c"], "realnvp", (8, 8), 2),
    ("npz", ["dataset.x=x", "dataset.c=null", "dataset/transform=none"], "nice", (8, 8), 0),
    ("csv", ["dataset.x=[a,b]", "dataset.c=t"], "cramer_gan", (2,), 1),
    ("npy", ["dataset.c=null"], "lsgan", (3,), 0),
])
def test_every_family_trains_on_every_format(files, fmt, keys, model, shape, cond, tmp_path):
    cfg = compose(["dataset=arrays", f"dataset.path={files[fmt]}", *keys, f"model={model}", *SMALL])
    assert cfg.metric.monitor == "prop/mean_w1"
    dm, net = fit(cfg, limit_val_batches=1, root_dir=tmp_path)
    assert dm.shape == shape and dm.cond_dim == cond and len(dm.cond_names) == cond
    c = dm.c_val[:5] if cond else None
    x = net.sample(5, c)
    assert x.shape == (5, *shape) and torch.isfinite(x).all()
    props = dm.properties(dm.x_raw_val, dm.c_raw_val)
    assert all(len(v) == len(dm.x_raw_val) for v in props.values())


def test_the_transform_is_fitted_on_the_training_split_and_inverted(files):
    from gentwin.data.transforms import Standardize

    dm = ArraysDataModule(path=str(files["csv"]), x=["a", "b"], c=None, batch_size=16, seed=3, transform=Standardize())
    dm.setup()
    # Fitted mean and scale, the standardised values and their mean each round by an eps or so at the values'
    # size (measured: 0.06 eps x max |x|).
    assert_rounding_close(dm.x_train.mean(0), torch.zeros(2), k=8, scale=dm.x_train.abs().max())
    assert not torch.allclose(dm.x_val.mean(0), torch.zeros(2), atol=1e-3)  # the held-out split was not fitted
    back = dm.transform.inverse(dm.x_val).numpy()
    assert_rounding_close(back, dm.x_raw_val, k=8, scale=np.abs(dm.x_raw_val).max())  # there and back (measured 0.5)
    assert dm.x_names == ["a", "b"] and list(dm.properties(dm.x_raw_val)) == ["a", "b"]


def test_large_samples_are_compared_through_summaries(files):
    dm = ArraysDataModule(path=str(files["npz"]), x="x", c="c", batch_size=16)
    dm.setup()
    props = dm.properties(dm.x_raw_val)
    assert set(props) == {"sum", "max", "spread", "nonzero_fraction", "centroid1", "width1", "centroid2", "width2"}
    # 64 positive float32 pixels summed in another order: within 63 eps of the sum (measured: 0.75).
    want = dm.x_raw_val.reshape(len(dm.x_raw_val), -1).sum(1)
    assert_rounding_close(props["sum"], want, k=64, scale=want.max())


@pytest.mark.parametrize("fmt,kwargs,message", [
    ("h5", dict(x="shower"), r"no dataset 'shower' \(dataset.x\); the file has: incident_energies, showers"),
    ("h5", dict(x="showers", c="energy"), r"no dataset 'energy' \(dataset.c\); the file has"),
    ("root", dict(x="pz", tree="events"), r"no branch 'pz' \(dataset.x\); tree 'events' has: px, py, e, image"),
    ("root", dict(x="px"), r"name the tree with dataset.tree=<name>; the file has the trees events, other"),
    ("root", dict(x="px", tree="evts"), r"no tree 'evts' \(dataset.tree\); the file has the trees events, other"),
    ("root", dict(x="hits", tree="events"), r"branch 'hits' of tree 'events' is float\[\], not a number .* jagged"),
    ("root", dict(x=["px", "image"], tree="events"), r"branch 'image' has shape \(8, 8\) per row; a list"),
    ("npz", dict(x="images"), r"no array 'images' \(dataset.x\); the file has: c, x"),
    ("csv", dict(x=["a", "z"]), r"no column 'z' \(dataset.x\); the file has: a, b, t"),
    ("npy", dict(x="x", c="c"), r"a .npy file holds one unnamed array"),
    ("h5", dict(x="showers", max_bytes=14_400), r"320 rows of \(12,\) samples take 0.05 MB in memory .* more "
     r"than the 0.01 MB allowed .* 100 rows fit: dataset.n=100"),
])
def test_bad_names_list_what_the_file_has(files, fmt, kwargs, message):
    with pytest.raises(DataError, match=message):
        read_arrays(files[fmt], **kwargs)


def test_lengths_nonfinite_rows_and_unreadable_files_are_refused(tmp_path):
    bad = tmp_path / "bad.h5"
    x = np.random.default_rng(0).normal(size=(50, 3))
    x[[4, 9, 30], 1] = [np.nan, np.inf, -np.inf]
    with h5py.File(bad, "w") as f:
        f["x"], f["c"], f["short"] = x, np.ones((50, 1)), np.ones(49)
    with pytest.raises(DataError, match=r"x has 50 rows but c has 49"):
        read_arrays(bad, "x", "short")
    with pytest.raises(DataError, match=r"3 of 50 rows hold NaN or inf \(the first is row 4\); .*drop_nonfinite=true"):
        read_arrays(bad, "x", "c")
    kept = read_arrays(bad, "x", "c", drop_nonfinite=True)
    assert kept.dropped == 3 and kept.x.shape == (47, 3) and np.isfinite(kept.x).all()
    for name in ("junk.h5", "junk.root", "junk.npz"):
        (tmp_path / name).write_bytes(b"\x00\x01 not this format " * 20)
        with pytest.raises(DataError, match=rf"{name}: not a readable"):
            read_arrays(tmp_path / name, "x")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00a,b\n")
    with pytest.raises(DataError, match=r"binary.csv: not a text file"):
        read_arrays(tmp_path / "binary.csv", "a")
    (tmp_path / "text.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match=r"text.csv:3: column 'b': 'x' is not a number"):
        read_arrays(tmp_path / "text.csv", ["a", "b"])
    with pytest.raises(DataError, match=r"unknown format '.parquet'; readable: .h5, .hdf5, .root"):
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        read_arrays(tmp_path / "t.parquet", "x")
    with pytest.raises(DataError, match=r"missing.h5: no such file"):
        read_arrays(tmp_path / "missing.h5", "x")
    with pytest.raises(ConfigError, match=r"dataset.path is not set"):
        ArraysDataModule(x="x")


def test_csv_rows_are_read_exactly_skipping_blank_and_comment_lines(tmp_path):
    rows = np.arange(20.0).reshape(10, 2)
    last = tmp_path / "last.csv"  # no newline after the last row
    last.write_text("a,b\n" + "\n".join(f"{a:g},{b:g}" for a, b in rows))
    assert np.array_equal(read_arrays(last, ["a", "b"]).x, rows)
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("# written by hand\n\na,b\n0,1\n\n   \n# a comment\n  # another\n2,3 # a note\r\n4,5\r\n\n6,7")
    got = read_arrays(gaps, ["a", "b"])
    assert np.array_equal(got.x, np.arange(8.0).reshape(4, 2)) and got.rows_in_file == 4
    assert np.array_equal(read_arrays(gaps, "b", n=2).x, [[1.0], [3.0]])
    for name, row in (("short.csv", "3"), ("long.csv", "3,4,5")):
        (tmp_path / name).write_text(f"a,b\n1,2\n\n# c\n{row}\n")
        with pytest.raises(DataError, match=rf"^\S*{name}:5: {row.count(',') + 1} values for the 2 columns of the "
                                            rf"header$"):
            read_arrays(tmp_path / name, "a")


def test_a_csv_header_is_read_within_64_kib_and_messages_quote_200_characters(tmp_path):
    cases = {"nul.csv": (b"\0" * (4 << 20), r"nul.csv: not a text file \(a NUL byte at offset 0;"),
             "endless.csv": (b"a" * (4 << 20), r"endless.csv: no header line within the first 64 KiB$"),
             "long.csv": (b"a,b\n1," + b"9" * (1 << 20) + b"x\n", r"long.csv:2: column 'b': '9{200}\.\.\. \(1,048,577 "
                          r"characters\)' is not a number$"),
             "comments.csv": (b"# only\n\n# comments\n", r"comments.csv: no header row naming the columns")}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=message) as error:
            read_arrays(tmp_path / name, ["a", "b"])
        assert len(str(error.value)) < len(str(tmp_path)) + 320


def test_root_rntuples_are_read_as_ttrees_are(tmp_path):
    import awkward as ak

    rng = np.random.default_rng(1)
    px, image = rng.normal(size=30), rng.random((30, 2, 3)).astype(np.float32)
    hits = ak.Array([[1.0] * (i % 3) for i in range(30)])
    with uproot.recreate(tmp_path / "ntuple.root") as f:
        f["events"] = {"px": px, "image": image, "hits": hits}  # current uproot writes an RNTuple
    with uproot.recreate(tmp_path / "tree.root") as f:
        f.mktree("events", {"px": np.float64, "image": (np.float32, (2, 3)), "hits": "var * float64"})
        f["events"].extend({"px": px, "image": image, "hits": hits})
    assert uproot.open(tmp_path / "ntuple.root").classnames() == {"events;1": "ROOT::RNTuple"}
    for name in ("ntuple.root", "tree.root"):
        path = tmp_path / name
        got = read_arrays(path, "image", c="px", n=7)
        assert np.array_equal(got.x, image[:7]) and np.array_equal(got.c[:, 0], px[:7].astype(np.float32))
        assert got.rows_in_file == 30 and np.array_equal(read_arrays(path, ["px"]).x[:, 0], px.astype(np.float32))
        with pytest.raises(DataError, match=rf"{name}: no branch 'pz' \(dataset.x\); tree 'events' has: "):
            read_arrays(path, "pz")
        with pytest.raises(DataError, match=rf"{name}: branch 'hits' of tree 'events' is .*, not a number or a "
                                            rf"fixed-size array of numbers \(a jagged"):
            read_arrays(path, "hits")


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_dataset_n_reads_only_the_first_rows_of_an_npz(tmp_path, save):
    import tracemalloc

    x = np.arange(200_000 * 10, dtype=np.float32).reshape(200_000, 10)  # 8 MB
    save(tmp_path / "big.npz", x=x, c=x[:, :2].astype(np.float64))
    read_arrays(tmp_path / "big.npz", "x", n=5)  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        got = read_arrays(tmp_path / "big.npz", "x", "c", n=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got.x, x[:5]) and np.array_equal(got.c, x[:5, :2]) and got.rows_in_file == 200_000
    assert peak < 1_000_000, peak  # the whole array is 8 MB; five rows and the readers' buffers are far less
    assert np.array_equal(read_arrays(tmp_path / "big.npz", "x").x, x)


def test_run_refuses_bad_input_with_one_line_exit_3_and_no_folder(files, tmp_path):
    r = cli("run", "dataset=arrays", f"dataset.path={files['h5']}", "dataset.x=shower", "threads=1", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {files['h5']}: no dataset 'shower' (dataset.x); the file has: "
                                             f"incident_energies, showers"]
    assert run_dirs(tmp_path) == [] and not (tmp_path / "outputs").exists()
