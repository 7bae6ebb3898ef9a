"""The networks of Görmüş 2023 (microstructure VAE), from the generic conv blocks of ``gentwin.nets.conv``.

``microstructure_vae_nets`` builds encoder and decoder with exactly the parameter counts of its
Table 3.1 (``count_params(..., bn_stats=True)``, as Keras counts); ``microstructure_encoder`` and
``microstructure_decoder`` are the same nets with the network contract (``configs/model/conv_vae.yaml``).
"""

from __future__ import annotations

from collections.abc import Sequence

from gentwin.nets.conv import ConvDecoder, ConvEncoder


def microstructure_vae_nets(latent_dim: int = 16, num_layers: int = 4,
                     in_shape: Sequence[int] = (3, 64, 64)) -> tuple[ConvEncoder, ConvDecoder]:
    """Encoder and decoder of Görmüş's (2023) microstructure VAE, with its exact parameter counts.

    The report (§2) names only the filters (16-32-64-128, 2x2 max-pooling; decoder 128-64-32-16
    with batchnorm and LeakyReLU); read with 3x3 convs and a decoder ``Linear`` to the 4x4x128
    map it has ~443,000 parameters at latent 16 against Table 3.1's 137,539. The table's steps
    (+2,818 per latent dimension) and its latent-free part (92,451) fix the narrower reading: the
    only one among kernel sides 2-5, same/valid paddings and decoder start maps that gives all five
    counts (up to which encoder convs pad), and the one in the author's code
    (github.com/MuhammedBurakGormus/VariationalAutoEncoders):

    * all convs 2x2; encoder convs ``"same"`` then ``"valid"``, ReLU, no batchnorm, so 64x64 ends at
      3x3x128 = 1,152 flat features (2 x 1,153 parameters per latent dimension: mean and log-variance);
    * decoder ``Linear`` to an 8x8x8 map (512 parameters per latent dimension), conv blocks with
      batchnorm, LeakyReLU(0.3) (Keras' default slope), nearest 2x upsampling 8 -> 64, and a final
      2x2 conv to 3 channels;
    * "Total params" counts batchnorm running statistics: ``count_params(enc, dec, bn_stats=True)``.

    Latents 2, 4, 8, 16, 32 give 98,087 / 103,723 / 114,995 / 137,539 / 182,627 (Table 3.1); the
    layer sweep at latent 16 gives 244,931 (2 layers), 132,675 (3), 137,539 (4), the counts in the
    author's notebooks (the report gives none). Not reproduced, as they do not change the count:
    the author's ReLU inside each decoder conv before batchnorm, and a linear output read through a
    clipping BCE; the decoder here gives logits for ``VAE(reconstruction="bce")``.

    Args:
        latent_dim: Latent width ``L``; the encoder gives ``2 L`` outputs.
        num_layers: Conv blocks in encoder and decoder, 1 to 4.
        in_shape: Image ``(C, H, W)``.

    Returns:
        ``(encoder, decoder)``: ``(B, C, H, W) -> (B, 2 L)`` and ``(B, L) -> (B, C, H, W)`` logits.
    """
    return (microstructure_encoder(in_shape, 2 * latent_dim, num_layers=num_layers),
            microstructure_decoder(latent_dim, in_shape, num_layers=num_layers))


def _microstructure_filters(num_layers: int) -> tuple[int, ...]:
    if not 1 <= num_layers <= 4:
        raise ValueError(f"num_layers must be 1 to 4, got {num_layers}")
    return (16, 32, 64, 128)[:num_layers]


def microstructure_encoder(in_shape: Sequence[int], out_features: int, cond_dim: int = 0,
                    num_layers: int = 4) -> ConvEncoder:
    """The encoder of ``microstructure_vae_nets`` with the encoder contract (``VAE(encoder=...)`` partials)."""
    return ConvEncoder(in_shape, out_features, cond_dim, filters=_microstructure_filters(num_layers), kernel_size=2,
                       padding=("same",) + ("valid",) * (num_layers - 1), activation="relu")


def microstructure_decoder(in_features: int, out_shape: Sequence[int], num_layers: int = 4) -> ConvDecoder:
    """The decoder of ``microstructure_vae_nets`` with the decoder contract (logits; start map 8 x H/8 x W/8)."""
    return ConvDecoder(in_features, out_shape, filters=_microstructure_filters(num_layers)[::-1], kernel_size=2,
                       negative_slope=0.3, start_shape=(8, max(1, out_shape[1] // 8), max(1, out_shape[2] // 8)))
