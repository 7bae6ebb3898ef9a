#!/usr/bin/env bash
# Seed 001's two studies with experiment=seed001_vae (conv VAE on 64x64 grain micrographs):
#   * latent sweep 2, 4, 8, 16, 32 at 4 layers (Table 3.1, Figures 3.1-3.2);
#   * layer sweep 2, 3, 4 at latent 16 (Figures 3.3-3.4).
# Each run prints "VAE: <n> parameters (<m> with batchnorm statistics, as Keras counts)"; m is
# Table 3.1's count (98,087 / 103,723 / 114,995 / 137,539 / 182,627; layer sweep 244,931 / 132,675 /
# 137,539). `python scripts/param_counts.py` lists them all without training.
# The author's loss weighs KL against the per-pixel mean BCE as 0.012 / L (see the preset), so beta
# is set per latent: beta = 0.012 * 12288 / L. Runs of one study share a sweep folder for `report`.
#
# Usage: bash scripts/seed001_sweeps.sh [extra overrides]    e.g. seed=1,2,3 trainer=gpu
#        SEED001_DRY=1 bash scripts/seed001_sweeps.sh      # print the commands only
set -euo pipefail

stamp=$(date +%Y-%m-%d/%H-%M-%S)
latent_dir="outputs/multirun/${stamp}_seed001_latent"
layer_dir="outputs/multirun/${stamp}_seed001_layers"
go() { if [[ -n "${SEED001_DRY:-}" ]]; then echo "$*"; else "$@"; fi; }

for latent in 2 4 8 16 32; do
  beta=$(python3 -c "print(round(0.012 * 3 * 64 * 64 / $latent, 6))")
  go run -m experiment=seed001_vae "model.latent_dim=${latent}" "schedule.beta.value=${beta}" \
    "hydra.sweep.dir=${latent_dir}" "$@"
done

go run -m experiment=seed001_vae model.encoder.num_layers=2,3,4 "hydra.sweep.dir=${layer_dir}" "$@"
