"""Judging generated samples against a reference, each metric beside its floor: two files
(:func:`evaluate_files`) or a checkpoint on its held-out split (:func:`evaluate_checkpoint`), the scorecard as
text (:func:`table`) and ``evaluation.json`` with its figures (:func:`write`). The ``evaluate`` console script
(``gentwin.commands.evaluate``) describes the options and metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gentwin.errors import CheckpointError, DataError, UsageError
from gentwin.metrics.floors import split_halves

# The rows a long table keeps of the nested metrics (the per-feature ones stay in evaluation.json).
SUMMARY_ROWS = {"mean", "mean_w1", "mean_ks", "max_abs_err", "auc", "kpd", "kpd_err", "chi2", "valid_rate"}


def evaluate_files(reference: str, generated: str, x: str | list[str] | None = "x", c: str | list[str] | None = None,
                   tree: str | None = None, layout: str | None = None, particle: str | None = None,
                   n: int | None = None, seed: int = 0, max_features: int = 32, drop_nonfinite: bool = False) -> dict:
    """The scorecard of a generated file against a reference file (read with ``read_arrays``): the first
    ``n`` reference rows, features from ``layout`` (calorimeter showers) or the samples themselves."""
    from gentwin.data.files import read_arrays
    from gentwin.metrics.features import named_features
    from gentwin.metrics.floors import scorecard

    ref = read_arrays(reference, x, c, tree, n, drop_nonfinite)
    gen = read_arrays(generated, x, c, tree, None, drop_nonfinite)
    if ref.x.shape[1:] != gen.x.shape[1:]:
        raise DataError(f"{generated}: samples of shape {gen.x.shape[1:]}, the reference {reference} has "
                        f"{ref.x.shape[1:]}")
    if len(ref.x) < 20:
        raise DataError(f"{reference}: {len(ref.x)} rows; the floor needs two halves of at least 10")
    if len(gen.x) < len(ref.x) - len(ref.x) // 2:
        raise DataError(f"{generated}: {len(gen.x):,} rows; compared with half the reference it needs at least "
                        f"{len(ref.x) - len(ref.x) // 2:,} (take fewer reference rows with n=<rows>)")
    gen_x = gen.x[np.random.default_rng(seed + 1).permutation(len(gen.x))]
    gen_c = None if gen.c is None else gen.c[np.random.default_rng(seed + 1).permutation(len(gen.x))]
    named = lambda a: None if a is None else {k: a[:, i] for i, k in enumerate(ref.c_names)}
    if layout is not None:
        from gentwin.domains.calorimeter.figures import shower_figures
        from gentwin.domains.calorimeter.layout import as_layout
        from gentwin.domains.calorimeter.observables import LOG_BINNED, incident_energy, observables

        layout = as_layout(layout, particle)
        layout.check_width(math.prod(ref.x.shape[1:]), f"{reference} ({x})")
        card, notes = scorecard(observables(ref.x, layout, incident_energy(ref.c)), ref.x,
                                observables(gen_x, layout, incident_energy(gen_c)), gen_x, named(ref.c), named(gen_c),
                                seed=seed, log_bins=LOG_BINNED)
        figures = shower_figures(ref.x, ref.c, gen_x, gen_c, layout, seed=seed)
    else:
        features = lambda a: named_features(a, ref.x_names, max_features)
        card, notes = scorecard(features(ref.x), ref.x, features(gen_x), gen_x, named(ref.c), named(gen_c),
                                seed=seed, classify_features=math.prod(ref.x.shape[1:]) > max_features)
        figures = {"marginals": (features(ref.x), features(gen_x), {"seed": seed})}  # the scorecard's halves
    dropped = {k: v.dropped for k, v in (("reference", ref), ("generated", gen)) if v.dropped}
    return {"reference": str(reference), "generated": str(generated), "x": x, "c": c,
            "n_reference": len(ref.x), "n_generated": len(gen.x), "rows_dropped_nonfinite": dropped,
            "scorecard": card, "warnings": notes, "_figures": figures}


def domain_rows(value: dict[str, float], floor: dict[str, float]) -> dict[str, dict]:
    """Scorecard rows ``domain/<k>`` of a metric group's values: the floor from ``floor`` (the group
    run on two reference halves), else the entry's own ``<k>_floor`` value, which is then no row of its own."""
    own = {k: value[f"{k}_floor"] for k in value if f"{k}_floor" in value}
    return {f"domain/{k}": {"value": v, "floor": floor.get(k, own.get(k))} for k, v in value.items()
            if not (k.endswith("_floor") and k[: -len("_floor")] in own)}


def _checkpoint_scorecard(dm, entries, real, c_raw, fake, ia, ib, seed, notes, figures) -> dict:
    """The scorecard of ``fake[ib]`` (generated at ``ib``'s conditions) against the held-out half ``ia``,
    with the domain's metric group (``domain/...``); appends to ``notes`` and adds the marginals figure."""
    from gentwin.metrics.floors import scorecard
    from gentwin.training.evaluate import per_sample_values, run_metrics

    ref_props = dm.properties(real, c_raw)
    fake_props = dm.properties(fake[ib], None if c_raw is None else c_raw[ib])
    a_props, b_props = ({k: np.asarray(v)[i] for k, v in ref_props.items()} for i in (ia, ib))
    gen_named = None if c_raw is None else dm.conditions(c_raw[ib])
    columns = real.reshape(len(real), -1)
    features = per_sample_values(ref_props)
    same = len(features) == columns.shape[1] and all(np.array_equal(v, columns[:, i])
                                                     for i, v in enumerate(features.values()))
    card, more = scorecard(features, real, per_sample_values(fake_props), fake[ib], dm.conditions(c_raw), gen_named,
                           seed=seed, classify_features=not same, halves=(ia, ib),
                           log_bins=getattr(dm, "log_bins", False))
    notes += more
    if entries:
        value = run_metrics(entries, b_props if c_raw is not None else a_props, fake_props, gen_named)
        # Conditional domain metrics pair rows by condition (real and generated at B's conditions): no
        # floor, unless an entry gives its own (``<key>_floor``, e.g. the TPC sparsity entry).
        floor = {} if c_raw is not None else run_metrics(entries, a_props, b_props, None)
        card.update(domain_rows(value, floor))
    figures["marginals"] = (per_sample_values(ref_props), per_sample_values(fake_props),
                            {"halves": (ia, ib), "log_bins": getattr(dm, "log_bins", False)})
    return card


def evaluate_checkpoint(checkpoint: str, n: int | None = None, seed: int | None = None, timing: bool = False,
                        timing_batches: tuple[int, ...] | None = None, timing_repeats: int = 5) -> dict:
    """A trained model's final evaluation, its scorecard on the held-out split, and its timing.

    ``metrics`` is :func:`gentwin.training.evaluate.final_evaluation`, the function a run's final evaluation
    calls: for the checkpoint its run ended with, the run's ``seed`` and all held-out events, the
    numbers of its ``metrics.json`` (``samples_per_second`` aside: a measurement, see ``timing=true``).
    ``n`` held-out events (default: all), ``seed`` the run's by default. ``scorecard`` compares the same
    generated samples with the held-out events in two halves
    (:func:`gentwin.metrics.floors.scorecard`): each metric beside its real-vs-real floor.
    """
    from gentwin.errors import ConfigError
    from gentwin.training.checkpoint import load_model, metric_entries, read_checkpoint, safe_instantiate
    from gentwin.training.evaluate import final_evaluation

    info = read_checkpoint(checkpoint)["gentwin"]
    if not info.get("dataset"):
        raise CheckpointError(f"{checkpoint}: no dataset config saved; evaluate the samples as files instead")
    model = load_model(checkpoint)
    entries = metric_entries(model.build_info, checkpoint)
    dm = safe_instantiate(info["dataset"], checkpoint, "dataset")
    try:
        dm.setup()
    except (ConfigError, DataError):
        raise
    except (OSError, ValueError) as e:
        raise DataError(str(e)) from e
    seed = (info.get("seed") or 0) if seed is None else seed  # default: the run's, as its final evaluation
    sl = dm.eval_slice()
    held_out = sl.stop - sl.start
    n = held_out if n is None else min(held_out, n)
    if n < 20:
        raise DataError(f"{checkpoint}: {n} held-out samples; the floor needs two halves of at least 10")
    metrics, figures, (fake, _) = final_evaluation(model, dm, entries, seed, n)
    metrics.pop("samples_per_second")
    for k in [k for k in metrics if k.startswith("speed/")]:
        metrics.pop(k)
    real = dm.x_raw_val[sl][:n]
    c_raw = None if dm.c_raw_val is None else dm.c_raw_val[sl][:n]
    # Halves A and B of the held-out events; the generated samples at B's conditions are compared with A,
    # beside B against A. Non-finite ones are left out with their B events (counted in finite_fraction).
    finite = np.isfinite(fake.reshape(len(fake), -1)).all(axis=1)
    ia, ib = split_halves(n, seed)
    ib = ib[finite[ib]]
    notes = [] if finite.all() else [f"{int((~finite).sum())} of {n} generated samples are not finite: left out "
                                     f"of the comparison (finite_fraction)"]
    result = {"checkpoint": str(checkpoint), "dataset": info["dataset"].get("_target_"), "seed": seed,
              "n_reference": n, "n_generated": len(fake), "metrics": metrics, "scorecard": {}, "warnings": notes,
              "_figures": figures}
    if len(ib) >= 10:
        result["scorecard"] = _checkpoint_scorecard(dm, entries, real, c_raw, fake, ia, ib, seed, notes, figures)
    else:
        notes.append(f"{len(ib)} finite generated samples in the second half; the scorecard needs 10")
    if timing:
        from gentwin.training.timing import BATCHES, generation_times

        result["timing"] = generation_times(model, checkpoint, timing_batches or BATCHES, timing_repeats,
                                            dm.c_raw_val)  # data units, as model.sample takes them
    return result


def table(result: dict, max_rows: int = 40) -> str:
    """The scorecard as text: value, floor and their ratio; per-feature and per-bin rows only when they are few."""
    card = result["scorecard"]
    names = list(card)
    if len(names) > max_rows:
        names = [k for k in names if "[" not in k and not k.startswith("by_")
                 and (k.count("/") <= 1 or k.rsplit("/", 1)[-1] in SUMMARY_ROWS
                      or (k.startswith("domain/") and card[k]["floor"] is not None))]
    width = max((len(k) for k in names), default=6) + 2
    lines = [f"{'metric':<{width}}{'value':>12}{'floor':>12}{'value/floor':>13}"]
    for k in names:
        v, f = card[k]["value"], card[k]["floor"]
        ratio = f"{v / f:.3g}" if f is not None and f > 0 and v == v else "-"
        floor = "-" if f is None else f"{f:.4g}"
        lines.append(f"{k:<{width}}{v:>12.4g}{floor:>12}{ratio:>13}")
    if len(names) < len(card):
        lines.append(f"({len(card) - len(names)} per-feature and per-bin rows in evaluation.json)")
    lines += [f"note: {w}" for w in result.get("warnings", [])]
    if "timing" in result:
        from gentwin.training.timing import timing_table

        lines.append(timing_table(result["timing"]))
    return "\n".join(lines)


def check_out(out: Path) -> None:
    """Refuses an output folder that holds anything: ``evaluate`` never replaces a file."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"out={out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"{out} exists and holds files, which evaluate does not replace: give out=<a new or "
                         f"empty folder>")


def write(result: dict, out: Path) -> list[Path]:
    """``evaluation.json`` and one PNG per figure into ``out``, each written whole and never over an
    existing file (``gentwin.atomic``); returns the written files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gentwin.atomic import write_text, write_with
    from gentwin.plots.marginals import marginals_figure

    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, fig in result.pop("_figures").items():
            if isinstance(fig, tuple):  # (reference, generated, options): drawn only when written
                fig = marginals_figure(*fig[:2], **(fig[2] if len(fig) > 2 else {}))
            path = out / f"{name}.png"
            write_with(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=90, format="png"), new=True)
            plt.close(fig)
            written.append(path)
        write_text(out / "evaluation.json", json.dumps(result, indent=2, default=float), new=True)
    except FileExistsError as e:  # written there since check_out looked
        raise UsageError(f"{e.filename} appeared while evaluating; evaluate does not replace files: give "
                         f"out=<a new or empty folder>") from None
    return [out / "evaluation.json", *written]
