"""One GAN module; ``gan``, ``lsgan``, ``wgan_gp`` and ``cramer_gan`` differ only in the loss."""

from __future__ import annotations

import inspect

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gentwin.models.base import GenerativeModel, Sampler, concat


class GAN(GenerativeModel):
    """Generator and critic trained adversarially, ``critic_steps`` critic updates per generator step.

    Args:
        generator: Partial ``(in_features, out_shape) -> nn.Module``, ``(B, L + C) -> (B, *shape)``.
        critic: Partial ``(in_shape, cond_dim, out_features) -> nn.Module``, ``(x, c) -> (B, K)``.
        loss: An adversarial loss from ``gentwin.losses.adversarial``.
        latent_dim: Width of the Gaussian noise ``z``.
        critic_steps: Critic updates per generator update (``n_critic``).
        critic_lr: Learning rate of the critic; ``None`` uses the optimizer's.
        ema: Decay of an exponential moving average of the generator weights, used for sampling
            outside training and in the export module (Yazici et al., "The Unusual Effectiveness of
            Averaging in GAN Training", 2019); ``None`` samples with the trained weights.
        **kwargs: ``GenerativeModel`` arguments.
    """

    def __init__(self, generator, critic, loss, latent_dim: int = 32, critic_steps: int = 1,
                 critic_lr: float | None = None, ema: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.critic_steps, self.critic_lr = latent_dim, critic_steps, critic_lr
        self.loss = loss
        self.generator = generator(in_features=latent_dim + self.cond_dim, out_shape=self.shape)
        self.critic = critic(in_shape=self.shape, cond_dim=self.cond_dim, out_features=loss.critic_out)
        # Real and generated batches in one critic call unless batch statistics would mix them.
        self.loss.joint = not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.critic.modules())
        if ema is not None and not 0 < ema < 1:
            raise ValueError(f"model.ema must be in (0, 1) or null, got {ema}")
        self.generator_ema = None if ema is None else AveragedModel(
            self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)

    @classmethod
    def batches_per_step(cls, config) -> int:
        """``critic_steps``: each critic update takes its own batch."""
        default = inspect.signature(cls.__init__).parameters["critic_steps"].default
        return int(config.get("critic_steps", default) or default)

    def export_module(self) -> GeneratorSampler:
        """The averaged generator when ``model.ema`` is set, else the trained one."""
        return GeneratorSampler(self, self.generator if self.generator_ema is None else self.generator_ema.module)

    def generate(self, n, c=None):
        if not self.training:
            return super().generate(n, c)  # the export module
        # Training samples from the generator it updates (inline: a sampler per call costs ~20 us).
        return self.generator(concat(torch.randn(n, self.latent_dim, device=self.device), c))

    def critic_fn(self, x, c):
        out = self.critic(x, c)
        return out.squeeze(1) if out.shape[-1] == 1 else out

    def param_groups(self):
        return [("generator", list(self.generator.parameters()), None),
                ("critic", list(self.critic.parameters()), self.critic_lr)]

    def training_step(self, batch, batch_idx):
        xs, cs = batch
        n = xs.shape[1]
        self.critic.requires_grad_(True)
        for i in range(self.critic_steps):
            x, c = xs[i], None if cs is None else cs[i]
            with torch.no_grad():
                fakes = [self.generate(n, c) for _ in range(self.loss.n_fake)]
            loss_d, logs = self.loss.critic_loss(self.critic_fn, x, fakes, c)
            self.step(1, loss_d, "loss_d", last=False)
        # The critic's gradients are not needed for the generator update.
        self.critic.requires_grad_(False)
        fakes = [self.generate(n, c) for _ in range(self.loss.n_fake)]
        loss_g, _ = self.loss.generator_loss(self.critic_fn, x, fakes, c)
        self.step(0, loss_g, "loss_g")
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.log_step({"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                       **{k: v.detach() for k, v in logs.items()}})


class GeneratorSampler(Sampler):
    """``(z[, c]) -> x``: a GAN generator on the noise ``z`` with the conditions appended.

    Args:
        model: The GAN.
        generator: The generator network to run (the trained or the averaged one).
    """

    family = "gan"

    def __init__(self, model: GAN, generator: torch.nn.Module):
        super().__init__(model, model.latent_dim)
        self.generator = generator

    def to_model_space(self, z, c=None, eps=None):
        return self.generator(concat(z, c))
