"""``report``: a sweep's table of swept values against final metrics, as mean ± std over seeds.

Usage::

    report <sweep folder> [metrics=a,b] [out=DIR] [plots=false]
    report <run folder> [<run folder> ...]      report outputs/<date>
    report <run folders> view=tradeoff          fidelity against generation speed, one line per run
    (the same as options: --metrics a,b --out DIR --no-plots --view tradeoff)

The runs (folders holding ``.hydra/``, at any depth below the folders given) are grouped by their
overrides other than ``seed``, as the jobs of a sweep are; each group is one row: every seed's final
value (``metrics.json``), the mean and the standard deviation, as Malchenko et al.'s (2022, TPC fast
simulation) Tables 1-8. The standard deviation is the sample one (``ddof=1``): Malchenko et al. 2022
Table 1 (latent 32: 459.5, 408.9, 452.6) gives 27.44 with ``ddof=1`` and 22.40 with
``ddof=0``; the report prints 27.43 (its other rows agree with ``ddof=1`` as well). With several
swept keys a row is one combination.

Written to the sweep folder (or ``out``): ``report.md`` (also printed), ``report.csv`` (one line per
row and metric, full precision), and PNG plots: each metric against the first swept key with error
bars (one line per combination of the other keys), and each metric's validation curve
(``val/<metric>`` from each job's TensorBoard events) against the epoch, one colour per row.

Columns: ``metrics`` (names as in ``metrics.json``: ``chi2``, ``multivariate/energy``), default the
monitored metric, ``samples_per_second`` and ``wall_time_s``. Jobs without ``metrics.json`` are
listed as failed (with the first line of the ``error.txt`` that ``run`` writes in multirun mode) or
unfinished (running, killed, or failed before any record).

``view=tradeoff`` writes ``tradeoff.md`` (also printed) instead: one line per run, its model and
sampler (an ODE family's solver and steps), the monitored metric, the classifier AUC and the TPC sparsity
statistics (or ``metrics``), each beside its ratio to the real-vs-real floor, then the samples per second
of ``sample`` at batch 1, 100 and 10,000 that the run's final evaluation measured, and the training time:
families trained on the same data side by side. Its plot, ``<metric>_minutes.png``: each run's
validation curve of the monitored metric against training minutes, its final value as a star.

Exit codes: 0 written; 1 no job finished (the failures are still listed); 2 no runs in the folder,
or an unknown metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gentwin.commands import common
from gentwin.errors import EXIT_FAILED, EXIT_OK, UsageError
from gentwin.report import DEFAULT_EXTRA, Report, build_report, markdown, table_csv, tradeoff_table

#: ``key=value`` arguments and the options they stand for (see ``common.options``).
OPTIONS = {"metrics": "--metrics", "out": "--out", "view": "--view"}
SWITCHES = {"plots": ("--no-plots", False)}


def write_report(rep: Report, out: str | Path | None = None, plots: bool = True) -> list[Path]:
    """Writes report.md, report.csv and the plots into ``out`` (default: the sweep folder)."""
    from gentwin.atomic import write_text

    out = Path(out) if out else rep.root
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md", out / "report.csv"]
    write_text(written[0], markdown(rep))  # through a temporary file beside each (gentwin.atomic)
    write_text(written[1], table_csv(rep))
    if plots and any(j.status == "ok" for j in rep.jobs):
        from gentwin.plots.report import plot_curves, plot_metric
        from gentwin.progress import Lines

        # Each curve reads a run's TensorBoard events: over many runs, say how far the plots are.
        lines = Lines("report plots", every=10.0, step=0.25) if len(rep.jobs) >= 20 else None
        for i, metric in enumerate(rep.metrics):
            for f in (plot_metric, plot_curves):
                path = f(rep, metric, out)
                if path:
                    written.append(path)
            if lines:
                lines.update((i + 1) / len(rep.metrics), f"{i + 1}/{len(rep.metrics)} metrics of {len(rep.jobs)} runs")
    return written


def write_tradeoff(rep: Report, out: str | Path | None, metrics: list[str] | None, plots: bool = True) -> int:
    """``view=tradeoff``: writes and prints ``tradeoff.md``, and plots the monitored metric against training
    minutes (``<metric>_minutes.png``)."""
    from gentwin.atomic import write_text

    lines = tradeoff_table(rep, metrics)
    if not lines:
        print(f"error: none of the {len(rep.jobs)} runs in {rep.root} finished", file=sys.stderr)
        return EXIT_FAILED
    out = Path(out) if out else rep.root
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join([f"# Trade-off: {rep.root}", "", *lines])
    write_text(out / "tradeoff.md", text)
    written = [out / "tradeoff.md"]
    if plots and rep.monitor:
        from gentwin.plots.report import plot_minutes

        path = plot_minutes(rep, rep.monitor, out)
        written += [path] if path else []
    print(text)
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The ``report`` console script; returns the exit code."""
    parser = argparse.ArgumentParser(prog="report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="run folders, a sweep folder "
                        "(outputs/multirun/<date>/<time>_<name>) or a folder of runs (outputs/<date>)")
    parser.add_argument("--metrics", default=None, help="comma-separated metric names (default: the monitor, "
                                                          + ", ".join(DEFAULT_EXTRA) + ")")
    parser.add_argument("--out", default=None, help="folder for report.md, report.csv and plots (default: the "
                        "folder, or the deepest folder holding all the runs given)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--view", choices=("sweep", "tradeoff"), default="sweep",
                        help="sweep: tables of metrics over seeds (default); tradeoff: fidelity against "
                        "generation speed, one line per run")
    args = parser.parse_args(common.options(sys.argv[1:] if argv is None else argv, OPTIONS, SWITCHES))
    metrics = [m for m in (args.metrics or "").split(",") if m] or None
    try:
        rep = build_report(args.folders, metrics)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if args.view == "tradeoff":
        return write_tradeoff(rep, args.out, metrics, plots=not args.no_plots)
    written = write_report(rep, args.out, plots=not args.no_plots)
    print(markdown(rep))
    print("wrote " + ", ".join(str(p) for p in written))
    if not any(j.status == "ok" for j in rep.jobs):
        print(f"error: none of the {len(rep.jobs)} jobs in {rep.root} finished", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def console() -> None:
    common.console(main)
