"""Print Görmüş's (2023, microstructure VAE) parameter counts (Table 3.1 and the layer sweep): ours vs the report's.

Usage: ``python scripts/param_counts.py``. Counts include batchnorm running statistics, as the
report's Keras "Total params" do; the last column is the torch parameter count.
"""

from __future__ import annotations

import torch

from gentwin.domains.microstructure.nets import microstructure_vae_nets
from gentwin.nets.conv import (
    ConvDecoder,
    ConvEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    count_params,
)

TABLE_3_1 = {2: 98_087, 4: 103_723, 8: 114_995, 16: 137_539, 32: 182_627}  # Görmüş 2023, Table 3.1
# Layer sweep at latent 16 (Görmüş 2023 §2.2): the report prints no counts; the author's notebooks
# (github.com/MuhammedBurakGormus/VariationalAutoEncoders) print these Keras totals.
NOTEBOOKS = {2: 244_931, 3: 132_675, 4: 137_539}


def _row(latent: int, layers: int, reference: int | None, mark: str = "") -> str:
    with torch.device("meta"):
        nets = microstructure_vae_nets(latent, layers)
    ours, torch_params = count_params(*nets, bn_stats=True), count_params(*nets)
    ref = f"{reference:,}{mark}" if reference is not None else "-"
    diff = f"{ours - reference:+,}" if reference is not None else "-"
    return f"{latent:>6} | {layers:>6} | {ours:>9,} | {ref:>10} | {diff:>10} | {torch_params:>12,}"


def main() -> None:
    print("Görmüş 2023 conv VAE, 64x64x3 (microstructure_vae_nets)")
    print(f"{'latent':>6} | {'layers':>6} | {'ours':>9} | {'report':>10} | {'difference':>10} | {'torch params':>12}")
    print("-" * 70)
    for latent, reported in TABLE_3_1.items():
        print(_row(latent, 4, reported))
    for layers in (2, 3, 4):
        print(_row(16, layers, NOTEBOOKS[layers], "*"))
    print("* layer sweep: the report gives no counts; these are the author's notebook totals.")

    with torch.device("meta"):
        enc = ConvEncoder((3, 64, 64), 32, kernel_size=3)
        dec = ConvDecoder(16, (3, 64, 64), kernel_size=3)
        as_written = count_params(enc, dec, bn_stats=True)
    gen = DCGANGenerator(50, (2, 64, 64), base_filters=32, num_layers=8)
    disc = DCGANDiscriminator((2, 64, 64), base_filters=16, num_layers=8)
    print(f"\nGörmüş 2023 as written with 3x3 convs (Linear to 4x4x128), latent 16: {as_written:,}")
    print("van Beek 2023 (leaf digital twin) leaf DCGAN, 8 conv layers each:")
    print(f"  generator     ours {count_params(gen):>10,}  report 46,375,872  ({count_params(gen) - 46_375_872:+,})")
    print(f"  discriminator ours {count_params(disc):>10,}  report 11,227,584  ({count_params(disc) - 11_227_584:+,})")


if __name__ == "__main__":
    main()
