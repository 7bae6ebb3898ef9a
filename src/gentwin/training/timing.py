"""Generation time as the field reports it: seconds per sample at batch 1, 100 and 10,000.

CaloChallenge reports a surrogate's time per shower at several batch sizes, on CPU and GPU, beside
its parameter count. :func:`generation_times` measures it for the torch model (``model.sample``, the
inverse transform included) and for its ONNX export (onnxruntime, the file ``export-model``
writes), on the CPU and, when one is present, the GPU: one warm-up call, then ``repeats`` timed
calls per batch size, reported as mean ± std of the seconds per sample.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BATCHES = (1, 100, 10_000)


def _stats(call, batch: int, repeats: int, sync=lambda: None) -> dict[str, float]:
    call()
    sync()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        sync()
        seconds.append((time.perf_counter() - t0) / batch)
    return {"mean_s": statistics.fmean(seconds), "std_s": statistics.pstdev(seconds)}


def _conditions(cond: np.ndarray | None, cond_dim: int, batch: int) -> np.ndarray | None:
    """``batch`` model-visible condition rows, cycling through ``cond`` (zeros when not given)."""
    if not cond_dim:
        return None
    if cond is None or not len(cond):
        return np.zeros((batch, cond_dim), np.float32)
    return np.asarray(cond, np.float32)[np.arange(batch) % len(cond)]


def _centres(item: dict) -> np.ndarray:
    """One row of the sidecar's condition columns at their training ranges' centres (0 without a range):
    conditions for an export whose ``c`` is not the model's (TPC's track variables)."""
    return np.array([[0.0 if col.get("training_range") is None else sum(col["training_range"]) / 2
                      for col in item["columns"]]], np.float32)


def torch_times(model, batches=BATCHES, repeats: int = 5, cond: np.ndarray | None = None,
                device: str = "cpu") -> dict[str, dict[str, float]]:
    """``{batch: {"mean_s", "std_s"}}`` of ``model.sample`` on ``device``."""
    model = model.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    for b in batches:
        c = _conditions(cond, model.cond_dim, b)
        c = None if c is None else torch.as_tensor(c, device=device)
        with torch.no_grad():
            out[str(b)] = _stats(lambda b=b, c=c: model.sample(b, c), b, repeats, sync)
    model.to("cpu")
    return out


def speeds(model, cond: np.ndarray | None = None, batches=BATCHES, budget_s: float = 30.0,
           min_s: float = 0.2) -> dict[str, float]:
    """Samples per second of ``model.sample`` at each batch size, as a run's final evaluation records
    them (``speed/samples_per_s_batch<B>``): the trade-off table's columns
    (``report view=tradeoff``).

    A warm-up call at batch 1, then at each batch timed calls until ``min_s`` seconds or 5 calls. A batch
    whose one call would take more than ``budget_s`` seconds at the previous batch's rate is skipped (a
    slow sampler at batch 10,000), so no evaluation waits minutes for a speed figure.
    """
    out, per_sample = {}, 0.0
    with torch.no_grad():
        for i, b in enumerate(batches):
            if per_sample * b > budget_s:
                continue
            c = _conditions(cond, model.cond_dim, b)
            c = None if c is None else torch.as_tensor(c, device=model.device)
            if i == 0:
                model.sample(b, c)
            seconds, n = 0.0, 0
            while n == 0 or (n < 5 and seconds < min_s):
                t0 = time.perf_counter()
                model.sample(b, c)
                seconds += time.perf_counter() - t0
                n += 1
            per_sample = seconds / (n * b)
            out[f"speed/samples_per_s_batch{b}"] = 1.0 / max(per_sample, 1e-12)
    return out


def onnx_times(onnx_file: Path, batches=BATCHES, repeats: int = 5, cond: np.ndarray | None = None,
               provider: str = "CPUExecutionProvider") -> dict[str, dict[str, float]]:
    """``{batch: {"mean_s", "std_s"}}`` of the exported file under onnxruntime, inputs as its sidecar JSON names
    them (noise standard normal, conditions ``c`` from ``cond``)."""
    import onnxruntime as ort

    meta = json.loads(Path(f"{onnx_file}.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_file), opts, providers=[provider])
    rng = np.random.default_rng(0)
    out = {}
    for b in batches:
        feed = {}
        for item in meta["inputs"]:
            shape = [b if s == "B" else int(s) for s in item["shape"]]
            if item["name"] == "c":
                feed["c"] = _conditions(cond if cond is not None and np.shape(cond)[1] == shape[1]
                                        else _centres(item), shape[1], b)
            else:
                feed[item["name"]] = rng.standard_normal(shape).astype(np.float32)
        out[str(b)] = _stats(lambda feed=feed: session.run(None, feed), b, repeats)
    return out


def generation_times(model, checkpoint: str | Path, batches=BATCHES, repeats: int = 5,
                     cond: np.ndarray | None = None, onnx: bool = True) -> dict:
    """Times per sample of torch and ONNX on the CPU (and a GPU when present), with the parameter counts
    (``parameters``: trainable; ``parameters_exported``: the sampling networks').

    An ONNX export that fails (e.g. a MAF too deep for the exporter) is recorded as ``onnx_error``.
    """
    if cond is None and model.cond_dim:  # data units: the conditions' centre (zeros in model space)
        with torch.no_grad():
            cond = model.cond_transform.inverse(torch.zeros(1, model.cond_dim)).numpy()
    counts = model.parameter_counts()
    result = {"parameters": counts["trainable"], "parameters_exported": counts["exported"], "batches": list(batches),
              "repeats": repeats, "threads": torch.get_num_threads(),
              "torch_cpu": torch_times(model, batches, repeats, cond)}
    if torch.cuda.is_available():
        result["torch_gpu"] = torch_times(model, batches, repeats, cond, device="cuda")
    if not onnx:
        return result
    from gentwin.training.export import export

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path, _ = export(checkpoint, "onnx", Path(tmp) / "model.onnx", verify=False, model=model)
        except Exception as e:  # the exporter's failures are many (ExportError, torch.onnx errors)
            result["onnx_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            return result
        result["onnx_cpu"] = onnx_times(path, batches, repeats, cond)
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            result["onnx_gpu"] = onnx_times(path, batches, repeats, cond, provider="CUDAExecutionProvider")
    return result


def timing_table(result: dict) -> str:
    """The timing as text: one row per runtime, one column per batch size (ms per sample, mean ± std)."""
    batches = [str(b) for b in result["batches"]]
    lines = [f"generation time per sample (ms, mean ± std over {result['repeats']} repeats, "
             f"{result['threads']} thread(s)); {result['parameters']:,} parameters",
             f"{'runtime':<12}" + "".join(f"{'batch ' + b:>22}" for b in batches)]
    for key in ("torch_cpu", "onnx_cpu", "torch_gpu", "onnx_gpu"):
        if key in result:
            cells = [f"{1e3 * result[key][b]['mean_s']:.4g} ± {1e3 * result[key][b]['std_s']:.2g}" for b in batches]
            lines.append(f"{key:<12}" + "".join(f"{c:>22}" for c in cells))
    if "onnx_error" in result:
        lines.append(f"onnx: not exported ({result['onnx_error']})")
    return "\n".join(lines)
