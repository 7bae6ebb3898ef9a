"""Convolutional blocks for image data ``(B, C, H, W)``: VAE encoders/decoders and DCGAN stacks.

The constructors follow the family contracts of ``nets/mlp.py``, so a config swaps an MLP for a
conv net without other changes:

* decoders / generators: ``net(in_features=L + C, out_shape=(C, H, W))``, ``(B, L + C) -> (B, C, H, W)``;
* encoders / critics: ``net(in_shape=(C, H, W), cond_dim=C, out_features=K)``, ``(x, c) -> (B, K)``.

``count_params`` counts parameters, optionally the way Keras' ``model.summary()`` does (with batchnorm
statistics). The microstructure VAE of Görmüş 2023 built from these blocks is in its domain,
``gentwin.domains.microstructure.nets``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from gentwin.nets.mlp import activation as _named_activation

Padding = str | int


def _activation(name: str | None, negative_slope: float) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return _named_activation(name)


def _image_shape(shape: Sequence[int], what: str) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{what} must be (C, H, W) with positive sizes, got {tuple(shape)}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _conv(in_channels: int, out_channels: int, kernel_size: int, padding: Padding = "same",
          stride: int = 1, bias: bool = True) -> nn.Module:
    """A ``Conv2d``; ``"same"`` with an even kernel pads one more pixel right/bottom, as Keras does."""
    if padding == "same" and kernel_size % 2 == 0:
        # torch's own padding="same" does the same but warns about an extra copy on every call.
        before = (kernel_size - 1) // 2
        after = kernel_size - 1 - before
        return nn.Sequential(nn.ZeroPad2d((before, after, before, after)),
                             nn.Conv2d(in_channels, out_channels, kernel_size, stride, 0, bias=bias))
    if padding == "same":
        padding = kernel_size // 2
    elif padding == "valid":
        padding = 0
    elif not isinstance(padding, int):
        raise ValueError(f"padding must be 'same', 'valid' or an int, got {padding!r}")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)


def _conv_side(n: int, kernel_size: int, padding: Padding) -> int:
    if padding == "same":
        return n
    return n + 2 * (0 if padding == "valid" else padding) - kernel_size + 1


class ConvEncoder(nn.Module):
    """Conv blocks, each followed by max-pooling, then flatten and one ``Linear`` head.

    Block ``i``: ``Conv2d(filters[i], kernel_size, padding[i]) -> [BatchNorm] -> act -> MaxPool(pool)``.
    A VAE asks for ``out_features = 2 * latent_dim`` (mean and log-variance): one ``Linear`` to
    ``2L`` has as many parameters as two ``Linear`` layers to ``L``. Conditions ``c`` are
    concatenated to the flat features before the head.

    Args:
        in_shape: Input ``(C, H, W)``.
        out_features: Output width ``K``.
        cond_dim: Condition width (0: unconditional).
        filters: Output channels per block; depth is ``len(filters)``.
        kernel_size: Square kernel side.
        padding: ``"same"``, ``"valid"`` or an int, for all blocks or one per block.
        pool: Max-pooling window and stride (floor, like Keras); 1 disables pooling.
        batchnorm: Batch normalization after each conv.
        activation: Hidden activation name (``nets.mlp.ACTIVATIONS``).
        negative_slope: Slope of ``"leaky_relu"``.

    Shapes:
        ``x``: ``(B, C, H, W)``; ``c``: ``(B, cond_dim)`` or ``None``; output ``(B, K)``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int,
        cond_dim: int = 0,
        filters: Sequence[int] = (16, 32, 64, 128),
        kernel_size: int = 3,
        padding: Padding | Sequence[Padding] = "same",
        pool: int = 2,
        batchnorm: bool = False,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
    ):
        super().__init__()
        channels, h, w = _image_shape(in_shape, "in_shape")
        paddings = [padding] * len(filters) if isinstance(padding, str | int) else list(padding)
        if len(paddings) != len(filters):
            raise ValueError(f"got {len(paddings)} paddings for {len(filters)} conv blocks")
        layers: list[nn.Module] = []
        for f, p in zip(filters, paddings, strict=True):
            layers.append(_conv(channels, f, kernel_size, p))
            if batchnorm:
                layers.append(nn.BatchNorm2d(f))
            layers.append(_activation(activation, negative_slope))
            h, w = _conv_side(h, kernel_size, p), _conv_side(w, kernel_size, p)
            if pool > 1:
                layers.append(nn.MaxPool2d(pool))
                h, w = h // pool, w // pool
            if min(h, w) < 1:
                raise ValueError(f"in_shape {tuple(in_shape)} is too small for {len(filters)} conv blocks")
            channels = f
        self.features = nn.Sequential(*layers)
        self.flat_features = channels * h * w
        self.head = nn.Linear(self.flat_features + cond_dim, out_features)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x).flatten(1)
        if c is not None:
            h = torch.cat([h, c], dim=1)
        return self.head(h)


class ConvDecoder(nn.Module):
    """``Linear`` to a small feature map, conv blocks with upsampling, a final conv to the image.

    ``z -> Linear -> act -> reshape start_shape``, then per block
    ``Conv2d(filters[i], kernel_size, "same") -> [BatchNorm] -> act -> Upsample``, then
    ``Conv2d(out_channels, kernel_size, "same") -> out_activation``.

    The ``n`` doublings from ``start_shape`` to the output are spread over the blocks, earlier
    blocks first: block ``i`` upsamples by ``2 ** (n // depth + (i < n % depth))``. With the default
    ``start_shape`` (``n = depth``) every block doubles; Görmüş 2023 starts at 8x8 for 64x64 images
    (``n = 3``), so its 4-block decoder does not upsample after the last block and its 2-block
    decoder upsamples by 4 then 2, as in the report's code. Upsampling after the conv keeps the
    first convs at low resolution.

    Sides that are not ``start * 2 ** n`` (28x28 MNIST at depth 3: 4 -> 32) are cropped to
    ``out_shape`` at the centre after the final conv; the default start side is
    ``ceil(side / 2 ** depth)``.

    Args:
        in_features: Input width (latent plus condition).
        out_shape: Output ``(C, H, W)``.
        filters: Output channels per block; depth is ``len(filters)``.
        kernel_size: Square kernel side of every conv (``"same"`` padding).
        upsample: ``"nearest"`` or ``"bilinear"`` interpolation.
        batchnorm: Batch normalization after each block conv.
        activation: Hidden activation name, also applied after the ``Linear``.
        out_activation: ``None`` (logits / unbounded), ``"sigmoid"`` or ``"tanh"``.
        negative_slope: Slope of ``"leaky_relu"``.
        start_shape: ``(C0, H0, W0)`` of the map after the ``Linear``; default
            ``(filters[0], ceil(H / 2 ** depth), ceil(W / 2 ** depth))``.

    Shapes:
        ``z``: ``(B, in_features)``; output ``(B, C, H, W)``.
    """

    def __init__(
        self,
        in_features: int,
        out_shape: Sequence[int],
        filters: Sequence[int] = (128, 64, 32, 16),
        kernel_size: int = 3,
        upsample: str = "nearest",
        batchnorm: bool = True,
        activation: str = "leaky_relu",
        out_activation: str | None = None,
        negative_slope: float = 0.2,
        start_shape: Sequence[int] | None = None,
    ):
        super().__init__()
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {upsample!r}")
        if not filters:
            raise ValueError("ConvDecoder needs at least one conv block")
        self.out_shape = _image_shape(out_shape, "out_shape")
        out_channels, height, width = self.out_shape
        depth = len(filters)
        if start_shape is None:
            start_shape = (filters[0], math.ceil(height / 2**depth), math.ceil(width / 2**depth))
        self.start_shape = _image_shape(start_shape, "start_shape")
        channels, h0, w0 = self.start_shape
        n_up = 0
        while h0 * 2**n_up < height or w0 * 2**n_up < width:
            n_up += 1
        self.fc = nn.Sequential(nn.Linear(in_features, channels * h0 * w0), _activation(activation, negative_slope))
        layers: list[nn.Module] = []
        for i, f in enumerate(filters):
            layers.append(_conv(channels, f, kernel_size))
            if batchnorm:
                layers.append(nn.BatchNorm2d(f))
            layers.append(_activation(activation, negative_slope))
            doublings = n_up // depth + (i < n_up % depth)
            if doublings:
                align = False if upsample == "bilinear" else None
                layers.append(nn.Upsample(scale_factor=2**doublings, mode=upsample, align_corners=align))
            channels = f
        layers += [_conv(channels, out_channels, kernel_size), _activation(out_activation, negative_slope)]
        self.blocks = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.fc(z).view(-1, *self.start_shape))
        _, height, width = self.out_shape
        top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
        return x[..., top:top + height, left:left + width]


def _dcgan_plan(height: int, width: int, num_layers: int) -> tuple[int, int, int]:
    """Stride-2 layers ``n`` and the side ``(h, w)`` left after them: halve while even and > 4."""
    n = 0
    while n < num_layers - 1 and height % 2 == 0 and width % 2 == 0 and min(height, width) > 4:
        height, width, n = height // 2, width // 2, n + 1
    return n, height, width


def _dcgan_init(module: nn.Module) -> None:
    # Radford et al. (2016): all weights from N(0, 0.02); batchnorm scales from N(1, 0.02).
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al., 2016): transposed convs, batchnorm, ReLU, tanh output.

    Layer 0 is a ``ConvTranspose2d`` from the ``1x1`` code to the ``h0 x w0`` start map (kernel =
    start side; 4 for 64x64); the last ``n`` layers are stride-2 ``ConvTranspose2d`` doubling to the
    output, where ``n`` halves the output side while it is even and above 4 (64 -> 4: ``n = 4``,
    28 -> 7: ``n = 2``), at most ``num_layers - 1`` times. Layers beyond ``1 + n`` are stride-1
    convs at the start resolution (a stride-1 transposed conv is a conv; same parameter count).
    Layer ``i < num_layers - 1`` has ``min(base_filters * 2 ** (num_layers - 2 - i), max_filters)``
    channels, followed by batchnorm and ReLU; the last layer gives the image channels, no
    batchnorm, then ``out_activation``. Convs have no bias (batchnorm follows).

    van Beek's (2023, leaf digital twin) leaf generator ("eight layers of transpose 2D-convolutions", 46,375,872
    parameters) is ``num_layers=8, base_filters=32, kernel_size=4`` with ``in_features=50``
    (2048 -> 1024 -> ... -> 32 -> 2 channels): exactly 46,375,872 parameters. With all seven later
    layers stride-2 it would output 512x512; at 64x64 three of them run at stride 1 at 4x4.

    Args:
        in_features: Code width (latent plus condition).
        out_shape: Output ``(C, H, W)``.
        base_filters: Channels of the last hidden layer (``ngf``).
        num_layers: Number of conv layers, output layer included.
        kernel_size: Kernel side of all but the first layer.
        max_filters: Channel cap, or ``None``.
        batchnorm: Batch normalization after each hidden layer.
        out_activation: ``"tanh"`` (data scaled to [-1, 1]), ``"sigmoid"`` or ``None``.

    Shapes:
        ``z``: ``(B, in_features)``; output ``(B, C, H, W)``.
    """

    def __init__(
        self,
        in_features: int,
        out_shape: Sequence[int],
        base_filters: int = 64,
        num_layers: int = 5,
        kernel_size: int = 4,
        max_filters: int | None = None,
        batchnorm: bool = True,
        out_activation: str | None = "tanh",
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.out_shape = _image_shape(out_shape, "out_shape")
        out_channels, height, width = self.out_shape
        n_up, h0, w0 = _dcgan_plan(height, width, num_layers)
        cap = max_filters or math.inf
        widths = [min(base_filters * 2 ** (num_layers - 2 - i), cap) for i in range(num_layers - 1)]
        widths.append(out_channels)
        layers: list[nn.Module] = []
        channels = in_features
        for i, f in enumerate(widths):
            if i == 0:
                layers.append(nn.ConvTranspose2d(channels, f, (h0, w0), bias=False))
            elif i < num_layers - n_up:
                layers.append(_conv(channels, f, kernel_size, bias=False))
            else:
                pad = (kernel_size - 1) // 2
                layers.append(nn.ConvTranspose2d(channels, f, kernel_size, 2, pad, kernel_size % 2, bias=False))
            if i < num_layers - 1:
                layers += [nn.BatchNorm2d(f)] if batchnorm else []
                layers.append(nn.ReLU())
            channels = f
        layers.append(_named_activation(out_activation))
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al., 2016): strided convs, batchnorm, LeakyReLU, logits.

    The mirror of ``DCGANGenerator``: ``n`` stride-2 convs halve the input side while it is even
    and above 4, then ``num_layers - 1 - n`` stride-1 convs at that resolution, then a conv with
    the remaining side as kernel gives ``(B, out_features)``. Layer ``i`` has
    ``min(base_filters * 2 ** i, max_filters)`` channels; batchnorm on all but the first and last
    layer, LeakyReLU after all but the last. The output is a logit (no sigmoid: losses take
    logits). Convs have no bias.

    van Beek's (2023) leaf discriminator ("eight layers of 2D-convolutions", 11,227,584 parameters) is
    read as ``num_layers=8, base_filters=16, kernel_size=4`` (2 -> 16 -> ... -> 1024 -> 1):
    11,203,008 parameters, 24,576 (0.2 %) fewer than the report; no regular DCGAN variant we
    tried (kernel sizes, biases, batchnorm placement, widths, a dense head) gives the report's
    count exactly.

    Args:
        in_shape: Input ``(C, H, W)``.
        out_features: Output width (1 for a GAN critic).
        cond_dim: Must be 0 (conditional variants are not implemented).
        base_filters: Channels of the first layer (``ndf``).
        num_layers: Number of conv layers, output layer included.
        kernel_size: Kernel side of all but the last layer.
        max_filters: Channel cap, or ``None``.
        batchnorm: Batch normalization in the hidden layers after the first.
        negative_slope: LeakyReLU slope.

    Shapes:
        ``x``: ``(B, C, H, W)``; output ``(B, out_features)``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int = 1,
        cond_dim: int = 0,
        base_filters: int = 64,
        num_layers: int = 5,
        kernel_size: int = 4,
        max_filters: int | None = None,
        batchnorm: bool = True,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        if cond_dim:
            raise ValueError("DCGANDiscriminator is unconditional (cond_dim must be 0)")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        channels, height, width = _image_shape(in_shape, "in_shape")
        n_down, h, w = _dcgan_plan(height, width, num_layers)
        cap = max_filters or math.inf
        layers: list[nn.Module] = []
        for i in range(num_layers - 1):
            f = min(base_filters * 2**i, cap)
            if i < n_down:
                layers.append(nn.Conv2d(channels, f, kernel_size, 2, (kernel_size - 1) // 2, bias=False))
            else:
                layers.append(_conv(channels, f, kernel_size, bias=False))
            if batchnorm and i > 0:
                layers.append(nn.BatchNorm2d(f))
            layers.append(nn.LeakyReLU(negative_slope))
            channels = f
        layers += [nn.Conv2d(channels, out_features, (h, w), bias=False), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def count_params(*modules: nn.Module, bn_stats: bool = False) -> int:
    """Number of parameters of ``modules``.

    Args:
        *modules: Networks to count (shared parameters are counted once).
        bn_stats: Also count batchnorm running means and variances, as Keras' ``model.summary()``
            does in "Total params" (its "Non-trainable params").

    Returns:
        The count.
    """
    params = {id(p): p.numel() for m in modules for p in m.parameters()}
    n = sum(params.values())
    if bn_stats:
        n += sum(m.running_mean.numel() + m.running_var.numel()
                 for module in modules for m in module.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats)
    return n
