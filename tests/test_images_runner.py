"""Image datasets in the runner: conv models train on leaves, microstructures and digits; MNIST IDX
files; user leaf geometry; Görmüş's (2023, microstructure VAE) parameter counts through its preset; TensorBoard
content."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from conftest import assert_rounding_close, cli, compose, fit, run_dirs
from gentwin.data.images import Affine
from gentwin.domains.digits.datamodule import DigitsDataModule, MNISTDataModule
from gentwin.domains.digits.properties import digit_properties
from gentwin.domains.digits.reader import read_idx
from gentwin.domains.leaves.datamodule import LeafDataModule
from gentwin.errors import ConfigError, DataError
from gentwin.metrics.properties import property_scores
from gentwin.training.fit import build

TINY_DATA = {
    "leaves": ["dataset.n=12", "dataset.size=32"],
    "microstructure": ["dataset.n=12", "dataset.size=32"],
    "digits": ["dataset.n=40"],
}
TINY_MODEL = {
    "dcgan": ["model.generator.num_layers=3", "model.generator.base_filters=8", "model.critic.base_filters=8",
              "model.latent_dim=8"],
    "conv_vae": ["model.latent_dim=4"],
    "beta_vae": ["model.encoder.num_layers=3", "model.encoder.base_filters=8", "model.decoder.base_filters=8",
                 "model.latent_dim=4"],
}


@pytest.mark.parametrize("dataset", list(TINY_DATA))
@pytest.mark.parametrize("model", list(TINY_MODEL))
def test_conv_models_train_on_image_datasets(model, dataset, tmp_path):
    cfg = compose([f"model={model}", f"dataset={dataset}", "threads=1", "dataset.batch_size=4",
                   *TINY_DATA[dataset], *TINY_MODEL[model]])
    dm, net = fit(cfg, root_dir=tmp_path)
    x = net.sample(6)
    assert x.shape == (6, *dm.shape) and torch.isfinite(x).all()
    assert x.min() >= 0 and x.max() <= 1, "samples must come back in the data's [0, 1]"
    props = dm.properties(x.numpy())
    assert all(len(v) == 6 for v in props.values())


def test_dcgan_sees_minus_one_to_one_and_vae_zero_to_one():
    gan = compose(["model=dcgan", "dataset=digits"])
    vae = compose(["model=conv_vae", "dataset=digits"])
    assert gan.dataset.transform._target_.endswith("Affine") and vae.dataset.transform is None
    t = Affine(2.0, -1.0)
    x = torch.rand(5, 1, 8, 8)
    y = t(x)
    assert y.min() >= -1 and y.max() <= 1
    # 2x - 1 and back round twice at magnitudes up to 2: under an eps at x's scale, 1 (not x's own size,
    # which allclose's rtol took for near-zero pixels).
    assert_rounding_close(t.inverse(y), x, k=2, scale=1.0)
    assert torch.allclose(t.log_abs_det_jacobian(x), torch.full((5,), 64 * np.log(2.0)))


def test_datasets_pick_their_metric_and_the_command_line_wins():
    assert compose(["dataset=leaves"]).metric.monitor == "prop/mean_w1"
    assert compose(["dataset=microstructure"]).metric.entries.prop._target_.endswith("property_scores")
    assert compose(["dataset=leaves", "metric=toy"]).metric.monitor == "multivariate/energy"
    assert compose(["model=beta_vae"]).schedule.beta._target_.endswith("Cyclical")
    assert compose(["dataset=digits", "model=conv_vae"]).model.decoder.num_layers == 2


def _write_idx(path, array: np.ndarray, code: int, compress: bool) -> None:
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def test_read_idx_reads_tiny_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08, compress=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5, dtype=np.uint8), 0x08, compress=False)
    floats = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    _write_idx(tmp_path / "f.idx", floats, 0x0D, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), floats)
    (tmp_path / "bad").write_bytes(b"\x00\x01\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="bad: not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + np.asarray([9], ">u4").tobytes() + b"abc")
    with pytest.raises(ValueError, match=r"short: IDX header says shape \(9,\)"):
        read_idx(tmp_path / "short")
    dm = MNISTDataModule(path=str(tmp_path), batch_size=2)
    dm.setup()
    assert dm.shape == (1, 28, 28) and dm.n_train + len(dm.x_val) == 5
    assert np.allclose(np.sort(np.concatenate([dm.x_train.numpy().ravel(), dm.x_raw_val.ravel()])),
                       np.sort(images.ravel() / 255.0), atol=1e-6)


def test_mnist_path_without_files_says_what_it_expected(tmp_path):
    cfg = compose(["dataset=mnist", "model=dcgan", f"dataset.path={tmp_path}", "threads=1"])
    with pytest.raises(DataError, match=r"holds no train-images-idx3-ubyte\[\.gz\].*dataset\.download=true"):
        build(cfg)
    with pytest.raises(DataError, match="does not exist"):
        build(compose(["dataset=mnist", f"dataset.path={tmp_path / 'nowhere'}"]))
    with pytest.raises(ConfigError, match="dataset.path is not set"):
        build(compose(["dataset=mnist"]))


def test_user_geometry_bad_file_exits_3_without_a_folder(tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    bad = tmp_path / "leaves.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"leaf": 7, "part": "outline"}, "geometry": bowtie}]}))
    out = cli("run", "dataset=leaves", f"dataset.geometry={bad}", "threads=1", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "feature 0" in lines[0] and "invalid outline" in lines[0]
    assert not run_dirs(tmp_path)


def test_user_geometry_is_rasterised(tmp_path):
    from gentwin.domains.leaves.io import to_geojson
    from gentwin.domains.leaves.simulator import simulate_leaves

    path = tmp_path / "mine.geojson"
    path.write_text(json.dumps(to_geojson(simulate_leaves(3, np.random.default_rng(1)))))
    dm = LeafDataModule(geometry=str(path), size=32, batch_size=2, val_fraction=0.34)
    dm.setup()
    assert dm.shape == (2, 32, 32) and dm.n_train + len(dm.x_val) == 6  # three leaves, two halves each
    props = dm.properties(dm.x_raw_val)
    assert props["valid"].all() and (props["area"] > 5).all()


# Görmüş 2023: Table 3.1 (latent sweep, 4 layers) and the author's notebooks (layer sweep, latent 16).
TABLE_3_1_COUNTS = [(2, 4, 98_087), (4, 4, 103_723), (8, 4, 114_995), (16, 4, 137_539), (32, 4, 182_627),
           (16, 2, 244_931), (16, 3, 132_675)]


def test_microstructure_preset_parameter_counts():
    for latent, layers, expected in TABLE_3_1_COUNTS:
        cfg = compose(["experiment=microstructure_vae", f"model.latent_dim={latent}",
                       f"model.encoder.num_layers={layers}", "dataset.n=8", "dataset.batch_size=2"])
        _, model = build(cfg)
        assert model.shape == (3, 64, 64)
        counts = model.parameter_counts()  # Keras' "Total params": batchnorm statistics included
        assert counts["trainable"] + counts["batchnorm_statistics"] == expected, (latent, layers)
        assert counts["exported"] == sum(p.numel() for p in model.decoder.parameters())


def test_failed_post_processing_is_counted_not_fatal():
    dm = LeafDataModule(n=4, size=32)
    blank = np.zeros((3, 2, 32, 32), np.float32)
    fake = dm.properties(blank)
    assert (fake["valid"] == 0).all()
    real = {k: np.array([1.0, 2.0, 3.0]) for k in fake}
    scores = property_scores(real, fake)
    assert scores["valid_rate"] == 0.0 and np.isnan(scores["mean_w1"]) and np.isnan(scores["area_w1"])
    half = {k: np.where(np.arange(3) < 2, v, np.nan) for k, v in real.items()}
    half["valid"] = np.array([1.0, 1.0, 0.0])
    scores = property_scores(real, half)
    assert np.isclose(scores["valid_rate"], 2 / 3) and np.isfinite(scores["mean_w1"])


def test_digit_properties_of_known_shapes():
    zero = np.zeros((8, 8))
    zero[1:7, 2:6] = 1.0
    zero[2:6, 3:5] = 0.0  # a ring: one stroke, one loop
    eight = np.zeros((8, 8))
    eight[0:7, 2:5] = 1.0
    eight[1, 3] = eight[5, 3] = 0.0  # two loops
    bar = np.zeros((8, 8))
    bar[:, 3] = 1.0
    bar[2, 6] = 1.0  # a second stroke, no loop
    p = digit_properties(np.stack([zero, eight, bar])[:, None])
    np.testing.assert_array_equal(p["loops"], [1, 2, 0])
    np.testing.assert_array_equal(p["strokes"], [1, 1, 2])
    assert np.isclose(p["centroid_x"][0], 0.5) and np.isclose(p["centroid_y"][0], 0.5)
    assert np.isclose(p["ink"][2], 9 / 64)
    assert np.isnan(digit_properties(np.zeros((1, 1, 8, 8)))["centroid_x"][0])


def test_embedded_digits_need_no_download():
    dm = DigitsDataModule(batch_size=8)
    x, labels = dm.read()
    assert x.shape == (1797, 1, 8, 8) and 0 <= x.min() and x.max() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))


def test_tensorboard_holds_grids_reconstructions_and_histograms(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gentwin.training.fit import run

    cfg = compose(["dataset=digits", "model=conv_vae", "threads=1", "dataset.n=48", "dataset.batch_size=8",
                   "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1", "trainer.log_every_n_steps=1",
                   "dataset.grid_every_n_steps=2", "dataset.grid_size=16"])
    metrics = run(cfg, tmp_path)
    assert "with batchnorm statistics, as Keras counts" in capsys.readouterr().out
    assert np.isfinite(metrics["prop/mean_w1"]) and metrics["prop/valid_rate"] == 1.0
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    images, scalars = set(acc.Tags()["images"]), set(acc.Tags()["scalars"])
    assert {"train/samples_fixed_noise", "train/reconstructions", "train/beta_schedule", "val/samples",
            "val/properties", "final/samples", "final/properties"} <= images
    assert len(acc.Images("train/samples_fixed_noise")) >= 3  # step 0 and every 2 steps
    assert {"train/beta", "val/prop/mean_w1", "val/prop/ink_ks", "val/prop/valid_rate"} <= scalars


def test_gan_scores_real_and_generated_in_one_critic_call_only_without_batch_norm():
    # DCGAN's discriminator normalises over its batch: a joint call would mix real and generated
    # statistics, so it keeps one call per batch; the TPC critic (dropout, no batch norm) joins them.
    dcgan = ["model=dcgan", "dataset=digits", "dataset.n=40", "dataset.batch_size=4", "threads=1", *TINY_MODEL["dcgan"]]
    _, gan = build(compose(dcgan))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in gan.critic.modules()) and not gan.loss.joint
    assert build(compose([*dcgan, "model.critic.batchnorm=false"]))[1].loss.joint
    assert build(compose(["experiment=tpc_baseline", "dataset.n=400", "threads=1"]))[1].loss.joint
