import pytest
import torch
from torch import nn

from gentwin.nets.conv import (
    ConvDecoder,
    ConvEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    count_params,
)

SHAPES = [(1, 8, 8), (1, 28, 28), (2, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_conv_encoder_decoder_shapes(shape, depth):
    torch.manual_seed(0)
    filters = (8, 16, 32)[:depth]
    enc = ConvEncoder(shape, out_features=6, cond_dim=3, filters=filters, batchnorm=True)
    dec = ConvDecoder(5, shape, filters=filters[::-1], out_activation="sigmoid")
    x, c = torch.rand(4, *shape), torch.rand(4, 3)
    out = enc(x, c)
    assert out.shape == (4, 6)
    assert not torch.allclose(out, enc(x, c + 1.0))  # sees the condition
    y = dec(torch.randn(4, 5))
    assert y.shape == (4, *shape)
    assert ((y > 0) & (y < 1)).all()
    (out.sum() + y.sum()).backward()
    assert all(p.grad is not None for p in [*enc.parameters(), *dec.parameters()])


def test_conv_decoder_crops_non_power_of_two_sides():
    dec = ConvDecoder(4, (1, 28, 28), filters=(32, 16, 8), upsample="bilinear", out_activation="tanh")
    assert dec.start_shape == (32, 4, 4)  # ceil(28 / 8); 32x32 cropped to the centre 28x28
    assert dec(torch.randn(2, 4)).shape == (2, 1, 28, 28)
    rect = ConvDecoder(4, (3, 16, 24), filters=(8, 8))
    assert rect(torch.randn(2, 4)).shape == (2, 3, 16, 24)


def test_conv_encoder_defaults_and_errors():
    enc = ConvEncoder((3, 64, 64), out_features=32)  # 16-32-64-128, 3x3 same: 4x4x128 features
    assert enc.flat_features == 2048
    assert count_params(enc) == 97_440 + 2048 * 32 + 32
    with pytest.raises(ValueError, match="too small"):
        ConvEncoder((1, 8, 8), 2, filters=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="paddings"):
        ConvEncoder((1, 8, 8), 2, filters=(8, 8), padding=("same",))
    with pytest.raises(ValueError, match="upsample"):
        ConvDecoder(2, (1, 8, 8), upsample="cubic")


def test_even_kernel_same_padding_pads_right_like_keras():
    enc = ConvEncoder((1, 5, 5), 1, filters=(1,), kernel_size=2, pool=1, activation="identity")
    conv = enc.features[0][1]
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, -1, -1] = 1.0
    y = enc.features(x)
    assert y.shape == (1, 1, 5, 5)
    assert y[0, 0, -1, -1] == 1.0 and y[0, 0, -2, -2] == 1.0 and y.sum() == 4.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("num_layers", [2, 3, 5])
def test_dcgan_shapes(shape, num_layers):
    torch.manual_seed(0)
    gen = DCGANGenerator(10, shape, base_filters=8, num_layers=num_layers)
    disc = DCGANDiscriminator(shape, base_filters=8, num_layers=num_layers)
    x = gen(torch.randn(3, 10))
    assert x.shape == (3, *shape)
    assert x.abs().max() <= 1.0  # tanh
    logits = disc(x)
    assert logits.shape == (3, 1)
    assert DCGANDiscriminator(shape, out_features=4, base_filters=8, num_layers=num_layers)(x).shape == (3, 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in gen.parameters())


def test_dcgan_radford_64x64_layout():
    gen = DCGANGenerator(100, (3, 64, 64))  # 100 -> 512@4 -> 256@8 -> 128@16 -> 64@32 -> 3@64
    disc = DCGANDiscriminator((3, 64, 64))
    convs_g = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs_g] == [512, 256, 128, 64, 3]
    assert [m.stride for m in convs_g] == [(1, 1)] + [(2, 2)] * 4
    # PyTorch's DCGAN example (ngf = ndf = 64, nc = 3, nz = 100).
    assert count_params(gen) == 3_576_704
    assert count_params(disc) == 2_765_568
    assert sum(isinstance(m, nn.BatchNorm2d) for m in disc.modules()) == 3  # not after the first conv
    assert not any(isinstance(m, nn.Sigmoid) for m in disc.modules())  # logits


def test_dcgan_of_the_leaf_digital_twin_eight_layers():
    gen = DCGANGenerator(50, (2, 64, 64), base_filters=32, num_layers=8)  # meta's normal_ loads slower
    disc = DCGANDiscriminator((2, 64, 64), base_filters=16, num_layers=8)
    convs = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs(gen)) == len(convs(disc)) == 8
    assert count_params(gen) == 46_375_872  # van Beek 2023 (leaf digital twin) §4.1, exactly
    assert count_params(disc) == 11_227_584 - 24_576  # van Beek 2023 reports 11,227,584
    small_g = DCGANGenerator(8, (2, 64, 64), base_filters=2, num_layers=8)
    small_d = DCGANDiscriminator((2, 64, 64), base_filters=2, num_layers=8)
    x = small_g(torch.randn(2, 8))
    assert x.shape == (2, 2, 64, 64) and small_d(x).shape == (2, 1)


def test_dcgan_errors():
    with pytest.raises(ValueError, match="unconditional"):
        DCGANDiscriminator((1, 8, 8), cond_dim=2)
    with pytest.raises(ValueError, match="num_layers"):
        DCGANGenerator(4, (1, 8, 8), num_layers=0)
