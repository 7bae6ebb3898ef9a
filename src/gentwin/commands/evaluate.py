"""``evaluate``: judge generated samples against a reference, each metric beside its floor.

Usage::

    evaluate <reference> <generated> [x=<name|[names]>] [c=<name|[names]>] [tree=<name>] [out=<folder>]
    evaluate <checkpoint.ckpt> [out=<folder>] [timing=true]
    files: [layout=<binning.xml|grid.yaml> [particle=<Bin name>]]: calorimeter showers by their high-level observables
    common: [n=<rows>] [seed=<the run's, else 0>] [threads=1] [max_features=32] [drop_nonfinite=false]
            [timing_batches=1,100,10000] [timing_repeats=5]

Files are read as ``dataset=arrays`` reads them (HDF5, ROOT, npz/npy, CSV; the same names in both;
``x`` defaults to ``x``, as in a run's ``samples.npz``). With ``layout=`` (CaloChallenge's binning XML, or
a YAML file of a grid, ``gentwin.domains.calorimeter``) the features are the showers' high-level observables (with one
condition, the incident energy, also the deposited-over-incident ratio), ``classifier/features_auc``
is CaloChallenge's high-level AUC and ``classifier/raw_auc`` its low-level one, and the figures are
the calorimeter's; a layout whose voxel count is not the samples' width is refused (exit 2).
A checkpoint is judged on the held-out split of the dataset it was trained on (rebuilt from the
config stored in it), with samples generated for those conditions, and with its dataset's key
properties and metric group.

``evaluation.json``'s ``scorecard`` holds every metric's ``value`` and its ``floor``: the same metric
between two disjoint halves of the reference (``gentwin.metrics.floors``). Metrics: per-feature
separation power and W1 / std, JetNet's FPD and KPD (``gentwin.metrics.physics_distances``), the
classifier AUC and JSD (``gentwin.metrics.classifier``) on the raw values and on the features, per
bin of each condition, the domain's metrics (``domain/...``), and with ``timing=true`` the generation
time per sample at batch 1, 100 and 10,000 (``gentwin.training.timing``). For a checkpoint, ``metrics`` is the
run's final evaluation (``gentwin.training.evaluate.final_evaluation``): with the default ``seed`` (the run's)
and ``n`` (all held-out events), the numbers of the run's ``metrics.json`` for the checkpoint it
ended with. Non-finite generated samples are counted (``finite_fraction``) and left out, as in a run.
Figures (PNG) go beside the JSON; the scorecard is printed. The output folder (``out=``; by default
``evaluation/`` beside a checkpoint's folder, or here for files) must be new or empty: ``evaluate``
never replaces a file.

Exit codes: 0 done, 2 usage, not a gentwin checkpoint or an invalid stored config, 3 a missing,
unreadable or inconsistent data file. Nothing is written unless everything could be read.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from gentwin.commands.common import flag, integer
from gentwin.errors import EXIT_CONFIG, EXIT_OK, CheckpointError, DataError, GentwinError, UsageError

# The rows a long table keeps of the nested metrics (the per-feature ones stay in evaluation.json).
SUMMARY_ROWS = {"mean", "mean_w1", "mean_ks", "max_abs_err", "auc", "kpd", "kpd_err", "chi2", "valid_rate"}
KEYS = ("x", "c", "tree", "layout", "particle", "out", "n", "seed", "threads", "max_features", "drop_nonfinite",
        "timing", "timing_batches", "timing_repeats")


def parse(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """``(positional paths, {key: value})``; a path holding ``=`` counts as a path when it exists."""
    split = [(a, *a.partition("=")) for a in argv]
    positional = [a for a, key, sep, _ in split if not sep or "/" in key or Path(a).exists()]
    args = {key: value for a, key, _, value in split if a not in positional}
    unknown = [key for key in args if key not in KEYS]
    if unknown:
        raise UsageError(f"unknown argument {unknown[0]!r}; arguments are {', '.join(KEYS)}")
    if len(positional) not in (1, 2):
        raise UsageError("give a reference and a generated file, or one checkpoint: evaluate <reference> "
                         "<generated> [x=...] [c=...] | evaluate <checkpoint.ckpt>")
    return positional, args


def _names(value: str | None):
    """``a`` -> ``"a"``; ``[a,b]`` -> ``["a", "b"]``; ``null`` -> ``None``."""
    if value is None or value.strip().lower() in ("null", "none", ""):
        return None
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        return [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
    return value


def _batches(args: dict) -> tuple[int, ...]:
    from gentwin.training.timing import BATCHES

    if "timing_batches" not in args:
        return BATCHES
    try:
        batches = tuple(int(b) for b in args["timing_batches"].strip("[]").split(","))
    except ValueError:
        raise UsageError(f"timing_batches={args['timing_batches']}: a comma-separated list of integers") from None
    if not batches or min(batches) < 1:
        raise UsageError(f"timing_batches={args['timing_batches']}: batch sizes must be >= 1")
    return batches


def evaluate_files(reference: str, generated: str, args: dict) -> dict:
    """The scorecard of a generated file against a reference file (read with ``read_arrays``)."""
    from gentwin.data.files import read_arrays
    from gentwin.metrics.features import named_features
    from gentwin.metrics.floors import scorecard

    x, c = _names(args.get("x", "x")), _names(args.get("c"))
    n, drop = integer(args, "n", None, 2), flag(args, "drop_nonfinite")
    max_features = integer(args, "max_features", 32, 1)
    ref = read_arrays(reference, x, c, args.get("tree"), n, drop)
    gen = read_arrays(generated, x, c, args.get("tree"), None, drop)
    if ref.x.shape[1:] != gen.x.shape[1:]:
        raise DataError(f"{generated}: samples of shape {gen.x.shape[1:]}, the reference {reference} has "
                        f"{ref.x.shape[1:]}")
    if len(ref.x) < 20:
        raise DataError(f"{reference}: {len(ref.x)} rows; the floor needs two halves of at least 10")
    if len(gen.x) < len(ref.x) - len(ref.x) // 2:
        raise DataError(f"{generated}: {len(gen.x):,} rows; compared with half the reference it needs at least "
                        f"{len(ref.x) - len(ref.x) // 2:,} (take fewer reference rows with n=<rows>)")
    seed = integer(args, "seed", 0)
    gen_x = gen.x[np.random.default_rng(seed + 1).permutation(len(gen.x))]
    gen_c = None if gen.c is None else gen.c[np.random.default_rng(seed + 1).permutation(len(gen.x))]
    named = lambda a: None if a is None else {k: a[:, i] for i, k in enumerate(ref.c_names)}
    if "layout" in args:
        from gentwin.domains.calorimeter.figures import shower_figures
        from gentwin.domains.calorimeter.layout import as_layout
        from gentwin.domains.calorimeter.observables import LOG_BINNED, incident_energy, observables

        layout = as_layout(args["layout"], args.get("particle"))
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


def evaluate_checkpoint(checkpoint: str, args: dict) -> dict:
    """A trained model's final evaluation, its scorecard on the held-out split, and its timing.

    ``metrics`` is :func:`gentwin.training.evaluate.final_evaluation`, the function a run's final evaluation
    calls: for the checkpoint its run ended with, the run's ``seed`` and all held-out events, the
    numbers of its ``metrics.json`` (``samples_per_second`` aside: a measurement, see ``timing=true``).
    ``scorecard`` compares the same generated samples with the held-out events in two halves
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
    seed = integer(args, "seed", info.get("seed") or 0, low=0)  # default: the run's, as its final evaluation
    sl = dm.eval_slice()
    held_out = sl.stop - sl.start
    n = held_out if "n" not in args else min(held_out, integer(args, "n", None, 20))
    if n < 20:
        raise DataError(f"{checkpoint}: {n} held-out samples; the floor needs two halves of at least 10")
    metrics, figures, (fake, _) = final_evaluation(model, dm, entries, seed, n)
    metrics.pop("samples_per_second")
    real = dm.x_raw_val[sl][:n]
    c_raw = None if dm.c_raw_val is None else dm.c_raw_val[sl][:n]
    # Halves A and B of the held-out events; the generated samples at B's conditions are compared with A,
    # beside B against A. Non-finite ones are left out with their B events (counted in finite_fraction).
    finite = np.isfinite(fake.reshape(len(fake), -1)).all(axis=1)
    perm = np.random.default_rng(seed).permutation(n)
    ia, ib = perm[: n // 2], perm[n // 2 :]
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
    if flag(args, "timing"):
        from gentwin.training.timing import generation_times

        result["timing"] = generation_times(model, checkpoint, _batches(args), integer(args, "timing_repeats", 5, 1),
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


def main(argv: list[str] | None = None) -> int:
    """The ``evaluate`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or "-h" in argv or "--help" in argv:
        print(__doc__)
        return EXIT_OK if argv else EXIT_CONFIG

    try:
        paths, args = parse(argv)
        out_arg = args.get("out")
        if len(paths) == 1:
            if any(k in args for k in ("x", "c", "tree", "layout", "particle")):
                raise UsageError("x=, c=, tree= and layout= describe files; a checkpoint knows its dataset")
            out = Path(out_arg) if out_arg else Path(paths[0]).resolve().parent.parent / "evaluation"
        else:
            if flag(args, "timing"):
                raise UsageError("timing=true times a model: give its checkpoint")
            out = Path(out_arg or "evaluation")
        check_out(out)
        from gentwin.training.launch import set_threads

        set_threads(integer(args, "threads", 1, 1))
        result = evaluate_checkpoint(paths[0], args) if len(paths) == 1 else evaluate_files(*paths, args)
        files = write(result, out)
    except GentwinError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(table(result))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return EXIT_OK


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console()
