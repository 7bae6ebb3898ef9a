"""A report's data: the runs under some folders (``Job``), grouped by their overrides other than
``seed`` into rows with each seed's final value, mean and standard deviation (``Report``), and its
tables (markdown, CSV). The ``report`` command (``gentwin.commands.report``) writes them and the plots
(``gentwin.plots.report``); its help says what is compared and how.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gentwin.errors import UsageError

DEFAULT_EXTRA = ("samples_per_second", "wall_time_s")
#: The trade-off view's speed columns: samples per second at batch 1, 100 and 10,000 (a run's final evaluation).
SPEEDS = ("speed/samples_per_s_batch1", "speed/samples_per_s_batch100", "speed/samples_per_s_batch10000")
#: The trade-off view's fidelity columns beside the monitored metric, where the runs recorded them.
TRADEOFF = ("halves/chi2", "classifier/auc", "sparsity/n_hits_chi2", "sparsity/spectrum_w1",
            "sparsity/n_faint_mean_fake", "sparsity/empty_fraction_diff")
# Overrides that never tell runs of one sweep apart.
IGNORED = {"seed", "ckpt_path", "hydra.run.dir"}


@dataclass
class Job:
    """One run folder of a sweep."""

    path: Path
    num: int
    overrides: dict[str, str]
    seed: int | None
    status: str  # "ok", "failed" or "unfinished"
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    monitor: str | None = None
    mode: str | None = None
    published: dict | None = None  # the sweep file's ``published`` block: the report's own values
    model: str = ""  # the group choices the run was made with
    dataset: str = ""
    warnings: list[str] = field(default_factory=list)  # what metrics.json says went wrong
    sampler: str = ""  # an ODE family's solver and steps ("midpoint x 20"), else ""

    @property
    def own(self) -> tuple[float, float | None, float | None]:
        """The run's own monitored value, its real-vs-real floor and the floor's spread (None without)."""
        m = self.monitor or ""
        return self.metrics.get(m, math.nan), self.metrics.get(f"{m}_floor"), self.metrics.get(f"{m}_floor_std")


@dataclass
class Row:
    """One group of jobs that differ only in ``seed``."""

    key: tuple[tuple[str, str], ...]
    jobs: list[Job]

    @property
    def finished(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "ok"]

    def values(self, metric: str) -> dict[int | None, float]:
        """Seed -> final value of ``metric`` over the finished jobs (NaN when a job lacks it)."""
        return {j.seed: float(j.metrics.get(metric, math.nan)) for j in self.finished}


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``, as Malchenko et al.'s (2022) tables); std NaN for one value."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


# -- reading a sweep folder -------------------------------------------------------------------------
def _read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError):
        return None


def _parse_overrides(items) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def read_job(path: Path) -> Job:
    """The record of the run folder ``path`` (one holding ``.hydra/``)."""
    overrides = _parse_overrides(_read_yaml(path / ".hydra" / "overrides.yaml"))
    config = _read_yaml(path / ".hydra" / "config.yaml") or {}
    m = re.match(r"(\d+)_", path.name)
    if m:
        num = int(m.group(1))
    else:  # a single run's hydra.job.num is "???": such runs are ordered by folder (their time)
        hydra = _read_yaml(path / ".hydra" / "hydra.yaml") or {}
        num = str(((hydra.get("hydra") or {}).get("job") or {}).get("num", ""))
        num = int(num) if num.isdigit() else 0
    seed = config.get("seed", overrides.get("seed"))
    seed = int(seed) if isinstance(seed, int | str) and str(seed).lstrip("-").isdigit() else None
    mode = (config.get("metric") or {}).get("mode") if isinstance(config.get("metric"), dict) else None
    published = config.get("published") if isinstance(config.get("published"), dict) else None
    hydra = _read_yaml(path / ".hydra" / "hydra.yaml") or {}
    choices = ((hydra.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
    job = Job(path=path, num=num, overrides=overrides, seed=seed, status="unfinished", mode=mode, published=published,
              model=str(choices.get("model", overrides.get("model", ""))),
              dataset=str(choices.get("dataset", overrides.get("dataset", ""))))
    model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
    if isinstance(model_cfg.get("steps"), int) and model_cfg.get("solver"):
        job.sampler = f"{model_cfg['solver']} x {model_cfg['steps']}"
    summary = path / "metrics.json"
    if summary.exists():
        try:
            data = json.loads(summary.read_text())
            job.metrics = {k: float(v) for k, v in data.get("metrics", {}).items() if isinstance(v, int | float)}
            job.monitor = (data.get("monitor") or "").removeprefix("val/") or None
            job.warnings = [str(w) for w in data.get("warnings") or []]
            job.status = "ok"
            return job
        except (OSError, ValueError, AttributeError):
            job.error = "metrics.json is unreadable"
    error = path / "error.txt"
    if error.exists():
        job.status = "failed"
        job.error = error.read_text().strip().splitlines()[0] if error.read_text().strip() else "failed"
    return job


def find_jobs(roots: list[Path]) -> list[Job]:
    """Every run folder below the ``roots`` (a root itself included), ordered by job number and folder."""
    folders = sorted({p.parent for root in roots for p in root.glob("**/.hydra") if p.is_dir()})
    jobs = [read_job(f) for f in folders]
    return sorted(jobs, key=lambda j: (j.num, str(j.path)))


def group(jobs: list[Job]) -> tuple[list[Row], list[str], dict[str, str]]:
    """Rows (in order of first job), the swept keys, and the overrides common to all jobs."""
    keys = [k for k in dict.fromkeys(k for j in jobs for k in j.overrides) if k not in IGNORED]
    swept = [k for k in keys if len({j.overrides.get(k) for j in jobs}) > 1]
    common = {k: jobs[0].overrides[k] for k in keys if k not in swept and k in jobs[0].overrides}
    rows: dict[tuple, Row] = {}
    for j in jobs:
        key = tuple((k, j.overrides.get(k, "")) for k in swept)
        rows.setdefault(key, Row(key, [])).jobs.append(j)
    return list(rows.values()), swept, common


# -- the report -------------------------------------------------------------------------------------
@dataclass
class Report:
    root: Path
    jobs: list[Job]
    rows: list[Row]
    swept: list[str]
    common: dict[str, str]
    metrics: list[str]
    monitor: str | None
    mode: str | None

    @property
    def published(self) -> dict | None:
        """The ``published`` block of the sweep file the jobs ran (the report's own values), if any."""
        return next((j.published for j in self.jobs if j.published), None)

    @property
    def seeds(self) -> list:
        return sorted({j.seed for j in self.jobs if j.status == "ok"}, key=lambda s: (s is None, s))

    @property
    def problems(self) -> list[Job]:
        return [j for j in self.jobs if j.status != "ok"]


def _canonical(name: str) -> str:
    for prefix in ("val/", "final/"):
        name = name.removeprefix(prefix)
    return name


def build_report(roots: str | Path | list, metrics: list[str] | None = None) -> Report:
    """Reads the runs below ``roots`` (a sweep folder, a date folder, run folders) and chooses the
    metric columns. ``Report.root`` is the deepest folder holding them all.

    Raises:
        UsageError: no run folder below the roots, or a requested metric that no job recorded.
    """
    roots = [Path(r) for r in (roots if isinstance(roots, list | tuple) else [roots])]
    for r in roots:
        if not r.is_dir():
            raise UsageError(f"{r}: no such folder")
    root = Path(os.path.commonpath([r.resolve() for r in roots])) if len(roots) > 1 else roots[0]
    jobs = find_jobs(roots)
    if not jobs:
        raise UsageError(f"{', '.join(map(str, roots))}: no runs here (a run folder holds a .hydra/ folder)")
    rows, swept, common = group(jobs)
    done = [j for j in jobs if j.status == "ok"]
    monitors = [j.monitor for j in done if j.monitor]
    monitor = max(dict.fromkeys(monitors), key=monitors.count) if monitors else None  # ties: the first run's
    modes = [j.mode for j in done if j.mode]
    mode = modes[0] if modes else None
    known = {k for j in done for k in j.metrics}
    if metrics:
        metrics = [_canonical(m) for m in metrics]
        unknown = [m for m in metrics if m not in known]
        if unknown and done:
            close = sorted(known)[:30]
            raise UsageError(f"no job recorded metric(s) {unknown}; recorded: {', '.join(close)}")
    else:  # runs with different monitors (a date folder): each one's own, in order of first use
        metrics = [m for m in dict.fromkeys([monitor, *monitors, *DEFAULT_EXTRA]) if m and m in known]
    return Report(root, jobs, rows, swept, common, metrics, monitor, mode)


def _fmt(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.5g}"


def _pm(mean: float, std: float) -> str:
    """``mean ± std``, the std to the mean's decimals (5 significant digits of the mean)."""
    if not math.isfinite(mean) or mean == 0:
        return f"{_fmt(mean)} ± {_fmt(std)}"
    if abs(mean) >= 1e6 or abs(mean) < 1e-4:
        return f"{mean:.4e} ± " + ("–" if math.isnan(std) else f"{std:.4e}")
    d = max(0, 4 - math.floor(math.log10(abs(mean))))
    return f"{mean:.{d}f} ± " + ("–" if math.isnan(std) else f"{std:.{d}f}")


def row_label(row: Row) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.key) or "(all jobs)"


def _published(pub: dict, key: dict[str, str]) -> str:
    """The published ``mean ± std`` (or mean) for a row's value of ``pub["by"]`` (a key, or a list of keys
    whose values are joined by commas), or ``-``."""
    by = pub.get("by", "")
    value = ",".join(str(key.get(b)) for b in by) if isinstance(by, list) else key.get(by)  # several keys: "a,b"
    entry = {str(k): v for k, v in (pub.get("values") or {}).items()}.get(str(value))
    if isinstance(entry, list) and len(entry) == 2:
        return _pm(float(entry[0]), float(entry[1]))
    return _fmt(float(entry)) if isinstance(entry, int | float) else "-"  # a mean without its spread


def markdown(rep: Report) -> str:
    """The report as markdown: a header, one table per metric, the failed and unfinished jobs."""
    n_ok = sum(j.status == "ok" for j in rep.jobs)
    n_failed = sum(j.status == "failed" for j in rep.jobs)
    n_open = sum(j.status == "unfinished" for j in rep.jobs)
    sweep = any(re.match(r"\d+_", j.path.name) for j in rep.jobs)
    runs = "job" if sweep else "run"
    lines = [f"# {'Sweep report' if sweep else 'Report'}: {rep.root}", "",
             f"{len(rep.jobs)} {runs}{'s' if len(rep.jobs) != 1 else ''}: {n_ok} finished, {n_failed} failed, "
             f"{n_open} unfinished. Swept: {', '.join(rep.swept) or 'nothing but the seed'}; "
             f"seeds: {', '.join(str(s) for s in rep.seeds) or '-'}."]
    if rep.common:
        lines.append("Common overrides: " + " ".join(f"{k}={v}" for k, v in rep.common.items()))
    lines += ["Each row: every seed's final value, then mean ± std over the seeds (std: sample standard "
              "deviation, ddof=1, as Malchenko et al.'s (2022) tables).", ""]
    lines += runs_table(rep)
    seeds = rep.seeds
    for metric in rep.metrics:
        tag = " (monitor" + (f", {rep.mode})" if rep.mode else ")") if metric == rep.monitor else ""
        pub = rep.published if rep.published and rep.published.get("metric") == metric else None
        floor = f"{metric}_floor"  # e.g. the property metrics: the same distance between two real samples
        has_floor = any(floor in j.metrics for j in rep.jobs)
        head = [*(rep.swept or ["group"]), *[f"seed {s}" for s in seeds], "mean ± std", "runs",
                *(["floor (mean)"] if has_floor else []), *(["published"] if pub else [])]
        lines += [f"## {metric}{tag}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rep.rows:
            values = row.values(metric)
            mean, std = mean_std(values.values())
            cells = [v for _, v in row.key] or ["all"]
            cells += [_fmt(values[s]) if s in values else "" for s in seeds]
            cells += [_pm(mean, std), f"{len(row.finished)}/{len(row.jobs)}"]
            if has_floor:
                cells.append(_fmt(mean_std(row.values(floor).values())[0]))
            if pub:
                cells.append(_published(pub, dict(row.key)))
            lines.append("| " + " | ".join(cells) + " |")
        if pub:
            lines += ["", f"published: {pub.get('source', 'the report')}"]
        lines.append("")
    if rep.problems:
        lines += ["## Failed or unfinished jobs", "", "| job | status | overrides | error |", "|---|---|---|---|"]
        for j in rep.problems:
            over = " ".join(f"{k}={v}" for k, v in j.overrides.items() if k not in rep.common)
            lines.append(f"| {j.num} | {j.status} | {over} | {j.error.replace('|', '/')} |")
        lines += ["", "Folders: " + ", ".join(str(j.path) for j in rep.problems)
                  + " (a failed job's error.txt holds its traceback).", ""]
    return "\n".join(lines)


def runs_table(rep: Report) -> list[str]:
    """One line per finished run: its model and dataset, its own monitored metric beside the floor
    where it has one, its best epoch and its warnings (runs of different domains compare their own
    metric, never one another's)."""
    done = [j for j in rep.jobs if j.status == "ok"]
    if not done:
        return []
    lines = ["## Each run's own monitored metric", "",
             "| run | model | dataset | monitored metric | value | floor | value / floor | best epoch | warnings |",
             "|---|---|---|---|---|---|---|---|---|"]
    for j in done:
        value, floor, spread = j.own
        fl = "–" if floor is None else _fmt(floor) + ("" if spread is None else f" ± {spread:.2g}")
        ratio = "–" if not floor else f"{value / floor:.2f}"
        best = j.metrics.get("best_epoch")
        lines.append(f"| {j.path.name} | {j.model or '–'} | {j.dataset or '–'} | {j.monitor or '–'} | {_fmt(value)} | "
                     f"{fl} | {ratio} | {'–' if best is None else f'{best:.0f}'} | "
                     f"{'; '.join(j.warnings).replace('|', '/') or ''} |")
    return [*lines, ""]


def table_csv(rep: Report) -> str:
    """One line per row and metric: swept values, metric, n, mean, std, then each seed's value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    seeds = rep.seeds
    w.writerow([*rep.swept, "metric", "n", "mean", "std", *[f"seed={s}" for s in seeds]])
    for metric in rep.metrics:
        for row in rep.rows:
            values = row.values(metric)
            mean, std = mean_std(values.values())
            w.writerow([*(v for _, v in row.key), metric, len(values), repr(mean), repr(std),
                        *[repr(values[s]) if s in values else "" for s in seeds]])
    return buf.getvalue()


def tradeoff_table(rep: Report, metrics: list[str] | None = None) -> list[str]:
    """Fidelity against generation speed, one line per finished run (``report view=tradeoff``): its model
    and sampler, the monitored metric and ``metrics`` (default: the classifier AUC and the TPC sparsity
    statistics, where recorded), each as ``value (value / floor)`` where the run recorded a floor, then
    samples per second at batch 1, 100 and 10,000 and the training time. Runs of several families on the
    same data answer which one to choose: how close to a second real sample, at what speed."""
    done = [j for j in rep.jobs if j.status == "ok"]
    if not done:
        return []
    monitor = rep.monitor
    wanted = [m for m in (metrics or TRADEOFF) if m != monitor]
    cols = [m for m in [monitor, *wanted] if m and any(m in j.metrics for j in done)]
    if any(j.metrics.get("finite_fraction", 1.0) < 1.0 for j in done):  # a diverging model: say how much
        cols.append("finite_fraction")
    speeds = [m for m in SPEEDS if any(m in j.metrics for j in done)]
    head = ["run", "model", "sampler", *cols, *[f"samples/s @{m.rsplit('batch', 1)[-1]}" for m in speeds],
            "training s"]
    lines = ["## Fidelity against generation speed", "",
             "Each metric as value (value / its real-vs-real floor) where the run recorded a floor; samples per "
             "second of `sample` on the run's machine and threads.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j in done:
        cells = [j.path.name, j.model or "–", j.sampler or "one pass"]
        for m in cols:
            v, f = j.metrics.get(m), j.metrics.get(f"{m}_floor")
            cells.append(_fmt(v) + (f" ({v / f:.2f}x)" if v is not None and f else ""))
        cells += [_fmt(j.metrics.get(m)) for m in speeds]
        cells.append(_fmt(j.metrics.get("wall_time_s")))
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
