"""The plots of ``report``: each metric against the swept value, and the validation curves of the runs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from gentwin.report import Job, Report, mean_std, row_label


# -- plots --------------------------------------------------------------------------------------------
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def _numeric(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _log_scale(values) -> bool:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return v.size > 1 and (v > 0).all() and v.max() / v.min() >= 100


def plot_metric(rep: Report, metric: str, out: Path) -> Path | None:
    """``metric`` (mean ± std) against the first swept key; one line per combination of the others."""
    if not rep.swept:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = rep.swept[0]
    lines: dict[str, list[tuple[str, float, float, list[float]]]] = {}
    for row in rep.rows:
        keyd = dict(row.key)
        rest = ", ".join(f"{k}={v}" for k, v in row.key if k != x_key)
        values = list(row.values(metric).values())
        if not any(np.isfinite(values)):  # runs of another domain, which monitor another metric
            continue
        mean, std = mean_std(values)
        lines.setdefault(rest, []).append((keyd[x_key], mean, std, values))
    if not lines:
        return None
    xs_all = list(dict.fromkeys(x for pts in lines.values() for x, *_ in pts))
    numeric = _numeric(xs_all)
    pos = dict(zip(xs_all, numeric if numeric else range(len(xs_all)), strict=True))
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (rest, pts) in enumerate(lines.items()):
        pts = sorted(pts, key=lambda p: pos[p[0]])
        bar = ax.errorbar([pos[p[0]] for p in pts], [p[1] for p in pts],
                          yerr=[0 if math.isnan(p[2]) else p[2] for p in pts], marker="o", capsize=4,
                          label=f"{rest + ': ' if rest else ''}mean ± std")
        # Each seed's value beside its mean, nudged sideways so that the points do not hide the bar.
        step = (np.diff(sorted(pos.values())).min() if len(pos) > 1 else 1.0) * 0.06
        xs = [pos[p[0]] * (1 + 0.04 * (k + 1)) if _log_scale(numeric or []) else pos[p[0]] + step * (k + 1)
              for p in pts for _ in p[3]]
        ax.scatter(xs, [v for p in pts for v in p[3]], s=12, color=bar.lines[0].get_color(), alpha=0.6,
                   marker="x", label="each seed" if k == 0 else None)
    if not numeric:
        ax.set_xticks(range(len(xs_all)), xs_all, rotation=30, ha="right")
    elif _log_scale(numeric):
        ax.set_xscale("log")
        ax.set_xticks(numeric, [f"{v:g}" for v in numeric])
    elif all(float(v).is_integer() for v in numeric):  # integer parameters get integer ticks
        ax.set_xticks(sorted(set(numeric)), [f"{v:g}" for v in sorted(set(numeric))])
    return _save(fig, ax, [p[1] for pts in lines.values() for p in pts], x_key,
                 f"final {metric}", out / f"{_slug(metric)}_vs_{_slug(x_key)}.png",
                 title=f"{metric}: mean ± std (sample, ddof 1) over seeds")


def _events(job: Job, tag: str):
    """The job's TensorBoard scalars (an ``EventAccumulator``, loaded) when they hold ``tag``, else None."""
    tb = job.path / "tb"
    if not tb.is_dir():
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0, "images": 1, "histograms": 1,
                                                   "tensors": 1, "audio": 1, "compressedHistograms": 1})
    acc.Reload()
    return acc if tag in acc.Tags().get("scalars", []) else None


def read_curve(job: Job, tag: str) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(epochs or steps, values, x label)`` of scalar ``tag`` in the job's TensorBoard events."""
    acc = _events(job, tag)
    if acc is None:
        return None
    tags = set(acc.Tags()["scalars"])
    events = acc.Scalars(tag)
    steps = np.array([e.step for e in events])
    values = np.array([e.value for e in events], dtype=float)
    if "epoch" in tags:
        epoch_of = {e.step: e.value for e in acc.Scalars("epoch")}
        if all(s in epoch_of for s in steps):
            return np.array([epoch_of[s] + 1 for s in steps]), values, "epoch"
    return steps.astype(float), values, "step"


def read_minutes(job: Job, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(training minutes, values)`` of scalar ``tag`` in the job's TensorBoard events: each event's
    wall time from the run's first logged scalar."""
    acc = _events(job, tag)
    if acc is None:
        return None
    start = min(acc.Scalars(t)[0].wall_time for t in acc.Tags()["scalars"] if acc.Scalars(t))
    events = acc.Scalars(tag)
    return (np.array([(e.wall_time - start) / 60 for e in events]), np.array([e.value for e in events], dtype=float))


def plot_minutes(rep: Report, metric: str, out: Path) -> Path | None:
    """``val/<metric>`` against training minutes, one line per run, each run's final value (the checkpoint
    it ended with, re-evaluated) as a star at its training time: the trade-off view's curve, families
    side by side on the clock rather than on epochs of different cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ys, drawn = [], False
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, j in enumerate(x for x in rep.jobs if x.status == "ok"):
        curve = read_minutes(j, f"val/{metric}")
        if curve is None:
            continue
        color = colors[i % len(colors)]
        ax.plot(*curve, color=color, linewidth=1.4, label=f"{j.model or '?'}: {j.path.name}")
        ys.extend(curve[1])
        final, wall = j.metrics.get(metric), j.metrics.get("wall_time_s")
        if final is not None and wall is not None:
            ax.plot([wall / 60], [final], marker="*", markersize=12, color=color, markeredgecolor="black",
                    linestyle="none")
            ys.append(final)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="*", color="gray", markeredgecolor="black", markersize=10, linestyle="none"))
    labels.append("final evaluation")
    v = np.asarray([y for y in ys if np.isfinite(y)])
    if v.size > 1 and (v > 0).all() and v.max() / v.min() >= 10:  # early validations dwarf the end
        ax.set_yscale("log")
    return _save(fig, ax, ys, "training minutes", f"val/{metric} (held-out vs generated)",
                 out / f"{_slug(metric)}_minutes.png", (handles, labels), title=f"{metric} against training time")


def plot_curves(rep: Report, metric: str, out: Path) -> Path | None:
    """``val/<metric>`` against the epoch: each run as a thin line, each row's mean over its seeds as a
    thick one, the real-vs-real floor (``val/<metric>_floor``, where logged) as a dashed line and each
    run's best epoch (``best_epoch``, the checkpoint its final metrics come from) as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    drawn, xlabel, ys, floors, several, starred = False, "epoch", [], [], False, False
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(rep.rows):
        color = colors[i % len(colors)]
        jobs = [j for j in row.finished if metric in j.metrics or j.monitor == metric]
        curves = [(j, c) for j in jobs if (c := read_curve(j, f"val/{metric}")) is not None]
        if not curves:
            continue
        thin = len(curves) > 1
        for j, (x, y, label) in curves:
            ax.plot(x, y, color=color, alpha=0.35 if thin else 0.9, linewidth=0.8 if thin else 1.6,
                    label=None if thin else row_label(row) if rep.swept else j.path.name)
            ys.extend(y)
            xlabel = label
            best = j.metrics.get("best_epoch")
            if best is not None and label == "epoch" and best in set(x.tolist()):
                ax.plot([best], [y[list(x).index(best)]], marker="*", markersize=11, color=color,
                        markeredgecolor="black", linestyle="none")
                starred = True
            floor = read_curve(j, f"val/{metric}_floor")
            if floor is not None:
                floors.append(float(np.mean(floor[1])))
        if len(curves) > 1:
            several = True
            common = sorted(set.intersection(*(set(c[0].tolist()) for _, c in curves)))
            if common:
                mean = [np.mean([c[1][list(c[0]).index(x)] for _, c in curves]) for x in common]
                ax.plot(common, mean, color=color, linewidth=2.2, label=row_label(row))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    handles, labels = ax.get_legend_handles_labels()
    if floors:
        ax.axhline(float(np.mean(floors)), color="black", linestyle="--", linewidth=1)
        handles.append(Line2D([], [], color="black", linestyle="--"))
        labels.append("floor: two halves of the held-out data")
        ys.extend(floors)
    if starred:
        handles.append(Line2D([], [], marker="*", color="gray", markeredgecolor="black", markersize=10,
                              linestyle="none"))
        labels.append("best epoch (the checkpoint scored)")
    if several:
        handles += [Line2D([], [], color="gray", linewidth=0.8, alpha=0.5), Line2D([], [], color="gray", linewidth=2.2)]
        labels += ["thin: each seed", "thick: mean over seeds"]
    return _save(fig, ax, ys, xlabel, f"val/{metric} (held-out vs generated)", out / f"{_slug(metric)}_curves.png",
                 (handles, labels), title=f"{metric} at each validation")


def _save(fig, ax, ys, xlabel: str, ylabel: str, path: Path, legend=None, title: str | None = None) -> Path:
    """Labels, legend (inside the axes, at most 12 entries) and grid of a report figure (a log scale
    when ``ys`` span decades), written to ``path``."""
    import matplotlib.pyplot as plt

    if _log_scale(ys):
        ax.set_yscale("log")
    if xlabel in ("epoch", "step"):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    handles, labels = legend or ax.get_legend_handles_labels()
    if len(labels) > 12:  # more rows than a legend can hold inside the canvas: the first ones, and a note
        handles, labels = handles[:11] + handles[-1:], [*labels[:11][:-1], f"... ({len(labels) - 11} more)",
                                                        labels[-1]][: 12]
    labels = [lab if len(lab) <= 40 else lab[:37] + "..." for lab in labels]
    ax.legend(handles, labels, fontsize=7, loc="best", framealpha=0.85)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
