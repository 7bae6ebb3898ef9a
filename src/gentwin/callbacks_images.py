"""TensorBoard progress for image datasets: grids from fixed noise, VAE reconstructions, the beta curve.

``ImageDataModule.callbacks()`` returns ``ImageProgress``; ``run`` appends a datamodule's callbacks
to the trainer's.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from gentwin.callbacks import tensorboard
from gentwin.plots_images import beta_curve, reconstruction_grid, tile


@torch.no_grad()
def reconstruct(model, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
    """A VAE's reconstruction of ``x`` (model space) from the posterior mean, in model space."""
    mean, _ = model.encoder(x, c).chunk(2, dim=1)
    x_hat = model.decoder(model._cat(mean, c))
    return torch.sigmoid(x_hat) if getattr(model, "reconstruction", None) == "bce" else x_hat


def _is_vae(model) -> bool:
    return all(hasattr(model, k) for k in ("encoder", "decoder", "beta"))


class ImageProgress(L.Callback):
    """Logs ``train/samples_fixed_noise`` every ``every_n_steps`` steps (and at step 0).

    The grid is sampled with the same noise each time (a fixed seed in a forked RNG, so training's
    own random stream is untouched): the latent vectors are fixed and the grids show how the map
    from them changes. For VAEs it also logs ``train/reconstructions`` of fixed held-out images
    (rows of originals over reconstructions from the posterior mean) and, once, the figure
    ``train/beta_schedule`` of the KL weight over the planned epochs (its value per step is the
    scalar ``train/beta``).

    Args:
        every_n_steps: Steps between grids.
        n: Images per grid.
        seed: Seed of the fixed noise.
    """

    def __init__(self, every_n_steps: int = 200, n: int = 64, seed: int = 0):
        if every_n_steps < 1 or n < 1:
            raise ValueError(f"every_n_steps and n must be >= 1, got {every_n_steps} and {n}")
        self.every_n_steps, self.n, self.seed = every_n_steps, n, seed
        self.nrow = max(1, int(np.ceil(np.sqrt(n))))

    def on_train_start(self, trainer, pl_module):
        writer = tensorboard(trainer)
        if writer is None or not trainer.is_global_zero:
            return
        if _is_vae(pl_module) and trainer.max_epochs and trainer.max_epochs > 0:
            import matplotlib.pyplot as plt

            fig = beta_curve(pl_module.beta, trainer.max_epochs)
            writer.add_figure("train/beta_schedule", fig, global_step=trainer.global_step)
            plt.close(fig)
        self._log(trainer, pl_module, writer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every_n_steps == 0 and trainer.is_global_zero:
            writer = tensorboard(trainer)
            if writer is not None:
                self._log(trainer, pl_module, writer)

    def _log(self, trainer, pl_module, writer) -> None:
        device = pl_module.device
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            fake = pl_module.sample(self.n).float().cpu().numpy()
        step = trainer.global_step
        writer.add_image("train/samples_fixed_noise", tile(fake, nrow=self.nrow), step, dataformats="HWC")
        dm = trainer.datamodule
        if not _is_vae(pl_module) or dm is None or getattr(dm, "x_val", None) is None:
            return
        k = min(self.n // 2, len(dm.x_val))
        x = dm.x_val[:k].to(device)
        c = None if dm.c_val is None else dm.c_val[:k].to(device)
        was_training = pl_module.training
        pl_module.eval()
        x_hat = reconstruct(pl_module, x, c)
        pl_module.train(was_training)
        to_data = pl_module.transform.inverse
        with torch.no_grad():
            grid = reconstruction_grid(to_data(x).cpu().numpy(), to_data(x_hat).float().cpu().numpy(), self.nrow)
        writer.add_image("train/reconstructions", grid, step, dataformats="HWC")
