"""Leaf beta-VAE and DCGAN for a fixed CPU budget: W1 and KS per key property, post-processing success.

Usage::

    python scripts/leaf_benchmark.py                     # 10 minutes of training per model
    python scripts/leaf_benchmark.py --minutes 1 --threads 2 --figures bench_figs
    python scripts/leaf_benchmark.py --models dcgan -- dataset.n=1000 model.latent_dim=100

Each model is van Beek's (2023, leaf digital twin) preset (``experiment=leaf_beta_vae`` / ``experiment=leaf_dcgan``: 160
training half-leaves of 2 x 64 x 64, batch 8, the report's learning rates and beta schedule) with
CPU-sized nets (5 conv layers of at most 256 filters instead of 8 of up to 2048; ``CPU_SIZE``).
It trains for ``--minutes`` of wall time without validation, then generates ``--n`` half-leaves,
post-processes them and compares the eight key properties with those of all the data (the training
and held-out half-leaves): van Beek 2023 Figures 9 and 13 (160 data vs 2000 generated). It prints per
property the W1 divided by the data's std and the KS statistic over the generated images that
post-processed into a leaf, and the share that did. Extra arguments after ``--`` are Hydra overrides.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CPU_SIZE = {
    "dcgan": ["model.generator.num_layers=5", "model.generator.max_filters=256",
              "model.critic.num_layers=5", "model.critic.max_filters=256"],
    "beta_vae": ["model.encoder.num_layers=5", "model.encoder.max_filters=256", "model.decoder.max_filters=256"],
}


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from gentwin.training.configs import CONFIGS

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose(config_name="run", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def benchmark(model_name: str, minutes: float, n: int, threads: int, extra: list[str], figures: Path | None):
    import lightning as L
    import torch

    from gentwin.metrics.properties import property_scores, property_table
    from gentwin.training.fit import _quiet, build
    from gentwin.training.launch import set_threads
    from gentwin.training.validation import validate

    cfg = compose([f"experiment=leaf_{model_name}", f"threads={threads}", "dataset.grid_every_n_steps=null",
                   *CPU_SIZE[model_name], *extra])
    validate(cfg)
    _quiet()
    set_threads(threads)
    L.seed_everything(cfg.seed, verbose=False)
    t0 = time.perf_counter()
    dm, model = build(cfg)
    t_data = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n== {model_name}: {type(model).__name__} {n_params:,} parameters; {dm.describe()} "
          f"(simulated in {t_data:.0f} s)", flush=True)
    trainer = L.Trainer(max_time={"seconds": round(60 * minutes)}, max_epochs=-1, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    wall = time.perf_counter() - t0
    steps = trainer.global_step
    print(f"trained {wall:.0f} s: {steps} steps, {trainer.current_epoch} epochs, "
          f"{steps / max(wall, 1e-9):.2f} steps/s", flush=True)

    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    fake = model.sample(n).numpy()
    t_sample = time.perf_counter() - t0
    with torch.no_grad():
        real = np.concatenate([model.transform.inverse(dm.x_train).numpy(), dm.x_raw_val])
    t0 = time.perf_counter()
    real_props, fake_props = dm.image_properties(real), dm.image_properties(fake)
    t_post = time.perf_counter() - t0
    scores = property_scores(real_props, fake_props)
    print(f"generated {n} in {t_sample:.1f} s; post-processed {len(real)} data + {n} generated in {t_post:.0f} s")
    print(property_table(real_props, fake_props, f"key properties, all {len(real)} data vs {n} generated:"))
    print(f"mean W1/std {scores['mean_w1']:.3f}, mean KS {scores['mean_ks']:.3f}, "
          f"post-processing success {100 * scores['valid_rate']:.1f} %", flush=True)
    if figures is not None:
        from gentwin.plots.images import property_histograms, sample_comparison

        figures.mkdir(parents=True, exist_ok=True)
        property_histograms(real_props, fake_props, title=f"{model_name}, {minutes:g} min").savefig(
            figures / f"{model_name}_properties.png", dpi=100)
        sample_comparison(real, fake, title=model_name, rgb=dm.to_rgb).savefig(
            figures / f"{model_name}_samples.png", dpi=100)
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time per model")
    parser.add_argument("--n", type=int, default=2000, help="generated half-leaves compared")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["beta_vae", "dcgan"], choices=sorted(CPU_SIZE))
    parser.add_argument("--figures", type=Path, default=None, help="folder for histogram and sample PNGs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both models (after --)")
    args = parser.parse_args(argv)
    for name in args.models:
        benchmark(name, args.minutes, args.n, args.threads, args.overrides, args.figures)


if __name__ == "__main__":
    main()
