"""Variational autoencoder (Kingma & Welling, 2014) with a scheduled KL weight beta."""

from __future__ import annotations

import math

import torch
from torch import nn

from gentwin.losses.vae import gaussian_kl, reconstruction_nll
from gentwin.models.base import GenerativeModel, Sampler, concat
from gentwin.schedules import Constant


class VAE(GenerativeModel):
    """Gaussian encoder, reparameterization, loss ``reconstruction + beta * KL``.

    Args:
        encoder: Partial ``(in_shape, cond_dim, out_features) -> nn.Module`` giving ``2 * latent_dim``
            outputs (mean and log-variance).
        decoder: Partial ``(in_features, out_shape) -> nn.Module``.
        latent_dim: Latent width.
        beta: Schedule ``epoch -> beta`` (schedule/beta group).
        reconstruction: ``"gaussian"`` (learned per-feature sigma) or ``"bce"`` (decoder gives logits;
            data in [0, 1], as Görmüş 2023 (microstructure VAE)).
        decoder_noise: With ``"gaussian"``, ``sample`` draws from ``N(decoder mean, sigma)`` (the
            model's density); otherwise it returns the decoder mean.
        **kwargs: ``GenerativeModel`` arguments.
    """

    has_likelihood = True
    can_reconstruct = True

    def __init__(self, encoder, decoder, latent_dim: int = 8, beta=None, reconstruction: str = "gaussian",
                 decoder_noise: bool = True, **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in ("gaussian", "bce"):
            raise ValueError(f"model.reconstruction must be 'gaussian' or 'bce', got {reconstruction!r}")
        self.latent_dim, self.reconstruction, self.decoder_noise = latent_dim, reconstruction, decoder_noise
        self.beta = beta if beta is not None else Constant(1.0)
        self.encoder = encoder(in_shape=self.shape, cond_dim=self.cond_dim, out_features=2 * latent_dim)
        self.decoder = decoder(in_features=latent_dim + self.cond_dim, out_shape=self.shape)
        self.log_sigma = nn.Parameter(torch.zeros(self.shape)) if reconstruction == "gaussian" else None

    def terms(self, x, c=None):
        """Per-sample reconstruction NLL and KL, ``(B,)`` each, for one reparameterized draw."""
        mean, log_var = self.encoder(x, c).chunk(2, dim=1)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        x_hat = self.decoder(concat(z, c))
        if self.reconstruction == "gaussian":
            sq = ((x_hat - x) * (-self.log_sigma).exp()) ** 2 + 2 * self.log_sigma + math.log(2 * math.pi)
            rec = 0.5 * sq.flatten(1).sum(1)
        else:
            rec = reconstruction_nll(x_hat, x, "bce")
        return rec, gaussian_kl(mean, log_var)

    def log_prob(self, x, c=None):
        """The ELBO (a lower bound of ``log p(x)``) in data space, one latent draw, ``(B,)``."""
        rec, kl = self.terms(self.transform(x), self.model_conditions(c))
        return -(rec + kl) + self.transform.log_abs_det_jacobian(x)

    @torch.no_grad()
    def diagnostics(self, x, c=None):
        """``kl``: the mean KL of the posterior to the prior on ``x`` (nats per sample)."""
        with self._evaluating():
            mean, log_var = self.encoder(self.transform(x), c).chunk(2, dim=1)
        return {"kl": float(gaussian_kl(mean, log_var).mean())}

    @torch.no_grad()
    def reconstruct(self, x, c=None):
        """``x`` (data space) decoded from its posterior mean, in data space, without decoder noise."""
        c = self.model_conditions(c)
        with self._evaluating():
            mean, _ = self.encoder(self.transform(x), c).chunk(2, dim=1)
            return self.transform.inverse(DecoderSampler(self, noise=False).to_model_space(mean, c))

    def export_module(self) -> DecoderSampler:
        return DecoderSampler(self, noise=self.reconstruction == "gaussian" and self.decoder_noise)

    def schedules(self):
        return {"beta": self.beta}

    def training_step(self, batch, batch_idx):
        xs, cs = batch
        x, c = xs[0], None if cs is None else cs[0]
        rec, kl = self.terms(x, c)
        beta = self.beta(self.epoch_float)
        loss = (rec + beta * kl).mean()
        self.step(0, loss, "loss")
        self.log_step({"loss": loss.detach(), "reconstruction": rec.mean().detach(),
                       "kl": kl.mean().detach(), "beta": beta})


class DecoderSampler(Sampler):
    """``(z[, c][, eps]) -> x``: a VAE decoder on the latent ``z`` with the conditions appended.

    BCE reconstruction gives the sigmoid of the decoder's logits; with ``noise``, ``eps`` scaled by
    the learned per-feature sigma is added to the decoder mean.

    Args:
        model: The VAE.
        noise: Whether to add decoder noise (the input ``eps``).
    """

    family = "vae"

    def __init__(self, model: VAE, noise: bool):
        super().__init__(model, model.latent_dim, eps=noise)
        self.decoder, self.bce = model.decoder, model.reconstruction == "bce"
        if noise:
            self.register_buffer("sigma", model.log_sigma.detach().exp())

    def to_model_space(self, z, c=None, eps=None):
        x = self.decoder(concat(z, c))
        if self.bce:
            return torch.sigmoid(x)
        return x if eps is None else x + eps * self.sigma
