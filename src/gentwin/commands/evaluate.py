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

import sys
from pathlib import Path

from gentwin.commands.common import batch_sizes, flag, integer, names, split
from gentwin.errors import EXIT_CONFIG, EXIT_OK, GentwinError, UsageError
from gentwin.progress import shown
from gentwin.training.judging import check_out, evaluate_checkpoint, evaluate_files, table, write
from gentwin.training.launch import set_threads

KEYS = ("x", "c", "tree", "layout", "particle", "out", "n", "seed", "threads", "max_features", "drop_nonfinite",
        "timing", "timing_batches", "timing_repeats")


def parse(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """``(positional paths, {key: value})``; a path holding ``=`` counts as a path when it exists."""
    positional, args = split(argv, KEYS)
    if len(positional) not in (1, 2):
        raise UsageError("give a reference and a generated file, or one checkpoint: evaluate <reference> "
                         "<generated> [x=...] [c=...] | evaluate <checkpoint.ckpt>")
    return positional, args


def evaluate(paths: list[str], args: dict[str, str]) -> dict:
    """``gentwin.training.judging``'s result for a checkpoint or two files, the arguments read."""
    set_threads(integer(args, "threads", 1, 1))
    if len(paths) == 1:
        timing = flag(args, "timing")
        return evaluate_checkpoint(paths[0], n=integer(args, "n", None, 20), seed=integer(args, "seed", None, low=0),
                                   timing=timing, timing_batches=batch_sizes(args, "timing_batches", None) if timing
                                   else None, timing_repeats=integer(args, "timing_repeats", 5, 1) if timing else 5)
    return evaluate_files(*paths, x=names(args.get("x", "x")), c=names(args.get("c")), tree=args.get("tree"),
                          layout=args.get("layout"), particle=args.get("particle"), n=integer(args, "n", None, 2),
                          seed=integer(args, "seed", 0), max_features=integer(args, "max_features", 32, 1),
                          drop_nonfinite=flag(args, "drop_nonfinite"))


def main(argv: list[str] | None = None) -> int:
    """The ``evaluate`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or "-h" in argv or "--help" in argv:
        print(__doc__)
        return EXIT_OK if argv else EXIT_CONFIG
    try:
        paths, args = parse(argv)
        if len(paths) == 1 and any(k in args for k in ("x", "c", "tree", "layout", "particle")):
            raise UsageError("x=, c=, tree= and layout= describe files; a checkpoint knows its dataset")
        if len(paths) == 2 and flag(args, "timing"):
            raise UsageError("timing=true times a model: give its checkpoint")
        beside = Path(paths[0]).resolve().parent.parent if len(paths) == 1 else Path()  # a checkpoint's run folder
        out = Path(args["out"]) if args.get("out") else beside / "evaluation"
        check_out(out)
        with shown():  # the classifier tests of a large scorecard say how far they are
            result = evaluate(paths, args)
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
