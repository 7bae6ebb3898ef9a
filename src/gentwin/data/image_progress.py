"""TensorBoard progress for image datasets: grids from fixed noise, VAE reconstructions, the beta curve.

``ImageDataModule.callbacks()`` returns ``ImageProgress``; ``run`` appends a datamodule's callbacks
to the trainer's.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from gentwin.plots.common import tensorboard
from gentwin.plots.images import beta_curve, reconstruction_figure, tile, to_rgb


class ImageProgress(L.Callback):
    """Logs ``train/samples_fixed_noise`` every ``every_n_steps`` steps, at step 0 and at the end of training.

    The grid is sampled with the same noise each time (a fixed seed in a forked RNG, so training's
    own random stream is untouched): the latent vectors are fixed and the grids show how the map
    from them changes. For models that reconstruct (VAEs) it also logs ``train/reconstructions`` of
    fixed held-out images (rows of originals over reconstructions), and for models with a KL weight
    schedule ``beta``, once, the figure ``train/beta_schedule`` of it over the planned epochs (its
    value per step is the scalar ``train/beta``).

    Args:
        every_n_steps: Steps between grids.
        n: Images per grid.
        seed: Seed of the fixed noise.
        rgb: How images are drawn, ``(N, C, H, W) -> (N, H, W, 3)`` (the datamodule's ``to_rgb``).
    """

    def __init__(self, every_n_steps: int = 200, n: int = 64, seed: int = 0, rgb=to_rgb):
        if every_n_steps < 1 or n < 1:
            raise ValueError(f"every_n_steps and n must be >= 1, got {every_n_steps} and {n}")
        self.every_n_steps, self.n, self.seed, self.rgb = every_n_steps, n, seed, rgb
        self.nrow = max(1, int(np.ceil(np.sqrt(n))))
        self.logged_step = 0

    def on_train_start(self, trainer, pl_module):
        writer = tensorboard(trainer)
        if writer is None or not trainer.is_global_zero:
            return
        beta = pl_module.schedules().get("beta")
        if beta is not None and trainer.max_epochs and trainer.max_epochs > 0:
            import matplotlib.pyplot as plt

            fig = beta_curve(beta, trainer.max_epochs)
            writer.add_figure("train/beta_schedule", fig, global_step=trainer.global_step)
            plt.close(fig)
        self._log(trainer, pl_module, writer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every_n_steps == 0 and trainer.is_global_zero:
            writer = tensorboard(trainer)
            if writer is not None:
                self._log(trainer, pl_module, writer)
                self.logged_step = trainer.global_step

    def on_train_end(self, trainer, pl_module):
        # The trained model's grids too, whatever the interval (a short run would show only step 0).
        writer = tensorboard(trainer)
        if writer is not None and trainer.is_global_zero and self.logged_step != trainer.global_step:
            self._log(trainer, pl_module, writer)

    def _log(self, trainer, pl_module, writer) -> None:
        device = pl_module.device
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            fake = pl_module.sample(self.n).float().cpu().numpy()
        step = trainer.global_step
        writer.add_image("train/samples_fixed_noise", tile(fake, nrow=self.nrow, rgb=self.rgb), step, dataformats="HWC")
        dm = trainer.datamodule
        if not pl_module.can_reconstruct or dm is None or getattr(dm, "x_val", None) is None:
            return
        k = min(self.n // 2, len(dm.x_val))
        x = torch.as_tensor(dm.x_raw_val[:k], dtype=torch.float32, device=device)
        c = None if dm.c_raw_val is None else torch.as_tensor(dm.c_raw_val[:k], dtype=torch.float32, device=device)
        x_hat = pl_module.reconstruct(x, c)
        # A figure, not a bare grid: its rows are labelled input / reconstruction.
        writer.add_figure("train/reconstructions", reconstruction_figure(x.cpu().numpy(), x_hat.float().cpu().numpy(),
                                                                         self.nrow, self.rgb), step)
