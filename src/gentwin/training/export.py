"""A trained generator as a standalone data-space sampler, ONNX or TorchScript (``export-model``).

The exported module is the model's ``export_module()`` (``gentwin.models.base.Sampler``), the map
``sample`` runs: noise (and conditions) to samples in data units, the generator (a GAN's averaged
one when ``model.ema`` is set), then the inverse of the data transform fitted in training. Its
inputs, batch-first with a free batch size:

* ``z`` ``(B, latent_dim)``: standard normal noise (GAN, VAE: the latent; flows: the base noise,
  mapped through the inverse flow);
* ``c`` ``(B, cond_dim)``: the conditions in data units (the fitted condition transform is inside),
  only for conditional models; the sidecar gives each column's unit and training range. Where the
  dataset derives its condition vectors from other variables (TPC: fractional parts, the baseline's
  scaling; ``ArrayDataModule.condition_inputs``), ``c`` holds those variables, as a digits file's
  ``params:`` line and ``sample conditions=`` name them, and the derivation is inside the graph too;
* ``eps`` ``(B, *shape)``: standard normal decoder noise, only for a VAE that samples with its
  learned per-feature sigma (``decoder_noise: true``).

Output ``x`` ``(B, *shape)``. Beside the file, ``<file>.json`` records the shapes, input names,
``cond_names`` and where the model came from. Unless ``--no-check``, the file is run (onnxruntime or
``torch.jit.load``) on a random batch and compared with the torch module (max abs diff printed;
an error above 1e-4 fails the export). Needs ``pip install gentwin[export]`` for ONNX.

Every family exports to both formats: no op of the GANs, VAEs or flows (NICE, RealNVP and MAF
inverses, the data transforms' inverses) fails. One limit is time: MAF inverts feature by feature,
``features`` sequential passes per transform that the export unrolls (TPC: 6 x 128 = 768 MADE
passes). torch's ONNX exporter's time grows about linearly with them (measured: docs/benchmarks.md),
while the TorchScript trace stays quick. Above ``MAX_ONNX_PASSES``
sequential passes the ONNX export is refused with that advice (``--format torchscript``). torch's
old TorchScript-based ONNX exporter (``dynamo=False``) is no way out: it has no ``expm1`` (the TPC
transform's inverse).

An existing file is replaced only with ``--force``, the checkpoint itself never.

"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from gentwin.errors import ExportError, UsageError

if TYPE_CHECKING:
    from gentwin.models.base import Sampler

# The check: max |exported - torch| over a batch, relative to the batch's largest |torch| output (at
# least 1). An exporter reorders float32 sums, so an element's error scales with the largest terms it
# was computed from, not with its own size: relative to each element, a small amplitude beside large
# ones (TPC responses span 0 to 1e4) would fail on one CPU and pass on another. 64 float32 roundings;
# the largest measured was 7.9 (RealNVP on TPC, ONNX).
TOLERANCE = 64 * float(torch.finfo(torch.float32).eps)
MAX_ONNX_PASSES = 128


def load(path: str | Path):
    """The model of a gentwin checkpoint (``gentwin.training.checkpoint.load_model``) on the CPU."""
    from gentwin.training.checkpoint import load_model

    return load_model(path, device="cpu")


def condition_inputs(model, checkpoint: str | Path) -> nn.Module | None:
    """The dataset's map from the variables a chain has to its condition vectors
    (``ArrayDataModule.condition_inputs``), from the dataset config saved with ``model``; ``None`` when
    unconditional, without a saved dataset config, or when the condition vectors are those variables."""
    dataset = (getattr(model, "build_info", None) or {}).get("dataset")
    if not model.cond_dim or not dataset:
        return None
    from gentwin.training.checkpoint import safe_instantiate

    return safe_instantiate(dataset, checkpoint, "dataset").condition_inputs()


def export_onnx(sampler: Sampler, out: Path) -> None:
    """Writes ``sampler`` as ONNX (torch's dynamo exporter, batch size free)."""
    import warnings

    if sampler.sequential_passes > MAX_ONNX_PASSES:
        raise ExportError(
            f"this flow's inverse runs {sampler.sequential_passes} sequential network passes (MAF: one per "
            f"feature and transform), which torch's ONNX exporter unrolls and does not finish in minutes "
            f"(limit {MAX_ONNX_PASSES}); export it with --format torchscript")
    import logging

    # The exporter logs a line per torchvision operator it cannot register when torchvision is absent
    # (it is not needed: the samplers use none of them).
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    args = sampler.example_inputs(4)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        dynamic = ({0: batch}, *([tuple({0: batch} for _ in args[1:])] if len(args) > 1 else []))  # (z, *rest)
        program = torch.onnx.export(sampler, args, dynamo=True, input_names=sampler.input_names, output_names=["x"],
                                    dynamic_shapes=dynamic, external_data=False, verbose=False, report=False)
    program.save(str(out))


def export_torchscript(sampler: Sampler, out: Path) -> None:
    """Writes ``sampler`` traced to TorchScript (the flows' Python objects do not script)."""
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(sampler, sampler.example_inputs(4), check_trace=False)
    traced.save(str(out))


def run_exported(path: Path, fmt: str, inputs: tuple[torch.Tensor, ...], names: list[str]) -> torch.Tensor:
    """The output of the exported file on ``inputs`` (onnxruntime or ``torch.jit.load``)."""
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        (x,) = session.run(["x"], {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
        return torch.from_numpy(x)
    with torch.no_grad():
        return torch.jit.load(str(path)).eval()(*inputs)


def check(sampler: Sampler, path: Path, fmt: str, n: int = 64) -> tuple[float, float]:
    """``(max abs, max relative)`` difference of the exported file from the torch module on a random
    batch of ``n``; relative to the batch's largest ``|torch|`` (at least 1)."""
    inputs = sampler.example_inputs(n, torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = sampler(*inputs)
    return difference(run_exported(path, fmt, inputs, sampler.input_names), want)


def difference(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float]:
    """``(max |got - want|, that / max(max |want|, 1))``: the measure ``TOLERANCE`` bounds."""
    diff = float((got - want).abs().max())
    return diff, diff / max(float(want.abs().max()), 1.0)


def sidecar(sampler: Sampler, fmt: str, out: Path, checkpoint: str | Path, info: dict) -> dict:
    """The JSON description written beside the exported file."""
    from gentwin.data.interface import sidecar_interface

    return {
        "format": fmt,
        "file": out.name,
        "checkpoint": str(checkpoint),
        "family": sampler.family,
        "model": (info.get("model") or {}).get("_target_"),
        "shape": list(sampler.shape),
        "cond_dim": sampler.input_shapes().get("c", [0, 0])[1],  # the width of c as the export takes it
        "cond_names": list(info.get("cond_names") or []) if sampler.cond_input is None else sampler.cond_input.names,
        "latent_dim": sampler.latent_dim,
        **sidecar_interface(sampler, info),  # inputs and outputs: shapes, dtypes, units, ranges, noise
        "transform": info.get("transform"),
        "cond_transform": info.get("cond_transform"),
    }


def output(checkpoint: str | Path, fmt: str, out: str | Path | None, force: bool = False) -> Path:
    """The file to write (default: beside the checkpoint); refuses the checkpoint itself, and an existing
    file (or its ``.json``) unless ``force``."""
    out = Path(out) if out else Path(checkpoint).with_suffix(".onnx" if fmt == "onnx" else ".pt")
    same = out.exists() and Path(checkpoint).exists() and out.samefile(checkpoint)
    if same or out.resolve() == Path(checkpoint).resolve():
        raise UsageError(f"--out {out} is the checkpoint being exported: give another file")
    existing = [p for p in (out, Path(f"{out}.json")) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise UsageError(f"{existing[0]} exists: give another --out, or --force to replace it")
    return out


def export(checkpoint: str | Path, fmt: str = "onnx", out: str | Path | None = None, verify: bool = True,
           model: nn.Module | None = None, force: bool = False) -> tuple[Path, tuple[float, float] | None]:
    """Exports the sampler of ``checkpoint`` (or of ``model``) to ``out``; writes ``<out>.json``.

    Both files are written whole through a temporary file beside them (``gentwin.atomic``), over an
    existing file only with ``force``.

    Returns:
        The written path and the check's ``(max abs, max relative)`` difference (``None`` without ``verify``).

    Raises:
        UsageError: ``out`` is the checkpoint, or exists and ``force`` is not given.
        ExportError: the model cannot be exported in ``fmt``.
    """
    from gentwin.atomic import write_text, write_with

    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"--format must be onnx or torchscript, got {fmt!r}")
    out = output(checkpoint, fmt, out, force)
    model = model if model is not None else load(checkpoint)
    sampler = model.eval().export_module().with_inputs(condition_inputs(model, checkpoint))
    if getattr(sampler, "adaptive", False):
        raise ExportError(f"{checkpoint}: its solver {sampler.solver!r} chooses its steps per input, which an "
                          f"exported graph cannot; export a fixed-step one (train or sample with model.solver=rk4 "
                          f"and model.steps=N)")
    out.parent.mkdir(parents=True, exist_ok=True)
    write = export_onnx if fmt == "onnx" else export_torchscript
    try:
        write_with(out, lambda tmp: write(sampler, tmp), new=not force)
        diff = check(sampler, out, fmt) if verify else None
        meta = sidecar(sampler, fmt, out, checkpoint, getattr(model, "build_info", {}) or {})
        if diff is not None:
            meta["check"] = {"max_abs_diff": diff[0], "max_rel_diff": diff[1]}
        write_text(f"{out}.json", json.dumps(meta, indent=2), new=not force)
    except FileExistsError as e:  # written there by someone else during the export
        raise UsageError(f"{e.filename} appeared during the export: give another --out, or --force") from None
    return out, diff
