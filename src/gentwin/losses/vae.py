"""Variational autoencoder terms (Kingma & Welling, 2014)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, exp(log_var)) || N(0, 1))`` summed over latent dims, per sample.

    Calvo Ordoñez 2022 (generative ML for particle physics) eq. (4.17): ``-1/2 sum(1 + log_var - exp(log_var) -
    mean^2)``.

    Args:
        mean, log_var: ``(B, L)``.

    Returns:
        ``(B,)``.
    """
    return -0.5 * (1 + log_var - log_var.exp() - mean**2).sum(dim=1)


def reconstruction_nll(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "gaussian", sigma: float = 1.0):
    """Negative log-likelihood of ``x`` under the decoder output, summed over features, per sample.

    Args:
        x_hat: Decoder output, ``(B, *S)``; logits when ``kind="bce"``.
        x: Targets, ``(B, *S)``; in [0, 1] when ``kind="bce"``.
        kind: ``"gaussian"`` (fixed ``sigma``, with its normalising constant so the ELBO is a bound on
            the log-likelihood) or ``"bce"`` (Bernoulli / continuous-target cross-entropy, Görmüş 2023 (microstructure
            VAE)).

    Returns:
        ``(B,)``.
    """
    if kind == "gaussian":
        sq = ((x_hat - x) / sigma) ** 2 + 2 * math.log(sigma) + math.log(2 * math.pi)
        return 0.5 * sq.flatten(1).sum(dim=1)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(x_hat, x, reduction="none").flatten(1).sum(dim=1)
    raise ValueError(f"unknown reconstruction {kind!r}; choose 'gaussian' or 'bce'")
