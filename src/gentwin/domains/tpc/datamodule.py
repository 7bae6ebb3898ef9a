"""``dataset=tpc``: simulated events, or a digits file's (``dataset.path``), as conditional samples."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gentwin.data.base import ArrayDataModule
from gentwin.domains.tpc.metrics import PROFILE_VARIABLES
from gentwin.domains.tpc.properties import PROPERTY_NAMES, tpc_properties
from gentwin.domains.tpc.reader import (
    CONDITION_NAMES,
    CONDITION_SCALE,
    CONDITION_SHIFT,
    UNITS,
    TPCEvents,
    read_digits,
)
from gentwin.domains.tpc.simulator import simulate_tpc
from gentwin.domains.tpc.sparsity import CELLS, cells


class TPCDataModule(ArrayDataModule):
    """TPC pad responses: 8 x 16 images conditioned on the track segment (Malchenko et al. 2022 (TPC fast simulation)
    section 3.2).

    ``path=None`` simulates ``n`` events with :func:`simulate_tpc`; a path reads a TPC-FastSim digits
    file with :func:`read_digits`, whose ``params:`` columns are named by ``feature_names`` (both
    ``dataset=tpc``). The model sees the conditions ``condition_names`` (by default the
    baseline's five, affinely scaled as TPC-FastSim does); :meth:`conditions` maps them back to the
    raw profile variables of the chi2, so the held-out split's profile variables are exact up to
    float32 rounding of the scaled values.

    Args:
        path: digits file, or ``None`` to simulate.
        feature_names: names of the file's feature columns (any number); must include
            ``pad_feature`` and ``time_feature``.
        pad_feature, time_feature: the columns holding the pad coordinate and the drift length.
        pad_window, time_window: image window, see :func:`read_digits`.
        condition_names: model-visible conditions, entries of :meth:`TPCEvents.profile_variables`.
        normalize: apply the baseline's affine scaling (defined for the default ``condition_names``).
        simulator: keyword parameters of :func:`simulate_tpc` (physics, ranges).
        n: events to simulate; for a file the first ``n`` events (``None``: all).
        **kwargs: ``ArrayDataModule`` arguments (``val_fraction``, ``batch_size``, ``transform``, ...).
    """

    def __init__(
        self,
        path: str | None = None,
        feature_names=None,
        pad_feature: str = "pad_coordinate",
        time_feature: str = "drift_length",
        pad_window=(-3, 5),
        time_window=(-7, 9),
        condition_names=CONDITION_NAMES,
        normalize: bool = True,
        simulator: dict | None = None,
        n: int | None = 20_000,
        **kwargs,
    ):
        super().__init__(n=n, **kwargs)
        self.path = None if path is None else str(path)
        self.feature_names = None if feature_names is None else list(feature_names)
        self.pad_feature, self.time_feature = pad_feature, time_feature
        self.pad_window, self.time_window = tuple(pad_window), tuple(time_window)
        self.cond_names = list(condition_names)
        self.normalize = normalize
        self.simulator = dict(simulator or {})
        k = len(self.cond_names)
        if normalize and tuple(self.cond_names) == CONDITION_NAMES:
            self.cond_shift, self.cond_scale = np.asarray(CONDITION_SHIFT), np.asarray(CONDITION_SCALE)
        else:
            self.cond_shift, self.cond_scale = np.zeros(k), np.ones(k)
        self.events: TPCEvents | None = None
        self.units = {k: v for k, v in UNITS.items() if k in {*self.cond_names, *(n.removesuffix("_frac")
                                                                                  for n in self.cond_names)}}

    def build(self, rng):
        from gentwin.errors import ConfigError, DataError

        if self.normalize and tuple(self.cond_names) != CONDITION_NAMES:
            raise ConfigError(
                f"dataset.normalize=true is defined for the baseline's conditions {list(CONDITION_NAMES)}; "
                f"set dataset.normalize=false for {self.cond_names}"
            )
        if self.path is None:
            if self.n is None:
                raise ConfigError("dataset.path is not set: give a digits file (dataset.path=<file>), or "
                                  "dataset.n=<events> to simulate them")
            events = simulate_tpc(self.n, rng, pad_window=self.pad_window, time_window=self.time_window,
                                  **self.simulator)
        else:
            if not self.feature_names:
                raise ConfigError("dataset.feature_names must name the columns of the params: lines")
            path = Path(self.path).expanduser()
            if not path.is_file():
                raise DataError(f"{path}: no such digits file (dataset.path)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the counts are reported by describe() and summary()
                events = read_digits(path, self.feature_names, self.pad_window, self.time_window,
                                     self.pad_feature, self.time_feature)
            if self.n is not None:
                events = events.subset(slice(0, self.n))
        variables = events.profile_variables()
        unknown = [c for c in self.cond_names if c not in variables]
        if unknown:
            raise ConfigError(f"dataset.condition_names {unknown} are not among {sorted(variables)}")
        self.events = events
        return events.images, self.condition_vectors(variables)

    # -- conditions -----------------------------------------------------------------------------
    def condition_vectors(self, named: dict[str, np.ndarray]) -> np.ndarray:
        """Model-visible conditions ``(N, C)`` float32 from named columns in data units.

        A missing ``<v>_frac`` is taken as ``<v> % 1`` when ``<v>`` is given (e.g. ``pad_coordinate``).
        """
        cols = []
        for name in self.cond_names:
            if name in named:
                cols.append(np.asarray(named[name], dtype=np.float64))
            elif name.endswith("_frac") and name[: -len("_frac")] in named:
                cols.append(np.asarray(named[name[: -len("_frac")]], dtype=np.float64) % 1.0)
            else:
                raise KeyError(f"missing condition {name!r}; need columns {self.cond_names}")
        c = np.stack(cols, axis=1) if cols else np.empty((0, 0))
        return ((c - self.cond_shift) / self.cond_scale).astype(np.float32)

    def condition_inputs(self):
        """:class:`ConditionInputs`: the variables of a digits file's ``params:`` line to the model's conditions."""
        from gentwin.domains.tpc.transforms import ConditionInputs

        return ConditionInputs(self.cond_names, self.cond_shift, self.cond_scale)

    def conditions(self, c):
        """Raw profile variables (data units, float64) of model-visible conditions ``c`` ``(N, C)``."""
        if c is None:
            return None
        raw = np.asarray(c, dtype=np.float64) * self.cond_scale + self.cond_shift
        return {name: raw[:, i] for i, name in enumerate(self.cond_names)}

    # -- evaluation -----------------------------------------------------------------------------
    def properties(self, x, c=None):
        """The six statistics of :func:`tpc_properties`, each (N,), and ``cells``: the amplitudes
        (N, P * T) for the sparsity entry (:func:`gentwin.domains.tpc.sparsity.sparsity_metrics`)."""
        return tpc_properties(x) | {CELLS: cells(x)}

    def figures(self, real, fake, c):
        from gentwin.domains.tpc.figures import profile_figure, response_grid
        from gentwin.domains.tpc.metrics import tpc_profiles

        cond = self.conditions(c)
        variables = [v for v in PROFILE_VARIABLES if v in cond]
        profiles = tpc_profiles(tpc_properties(real), tpc_properties(fake), cond, variables=variables,
                                statistics=PROPERTY_NAMES, n_bootstrap=20)
        return {"profiles": profile_figure(profiles), "responses": response_grid(real, fake, cond)}

    def condition_ranges(self, c):
        """The data's ranges, but a fractional part's is all of [0, 1): periodic, never extrapolated."""
        return {k: (0.0, 1.0) if k.endswith("_frac") else v for k, v in super().condition_ranges(c).items()}

    def writers(self) -> dict:
        return {".dat": self.write_responses}

    def write_responses(self, images: np.ndarray, path: Path, conditions: np.ndarray | None = None) -> str:
        """Responses ``images`` at model-visible ``conditions`` (default: the held-out ones, as a run
        generates them) written in the digits format that ``dataset.path`` reads back (``writer``)."""
        from gentwin.domains.tpc.writer import write_digits

        if conditions is None:
            conditions = self.c_raw_val[: len(images)]
        # Simulated events have no file columns: their conditions' variables, pad and drift included.
        names = self.feature_names or [*dict.fromkeys([*(v.removesuffix("_frac") for v in self.cond_names),
                                                        self.pad_feature, self.time_feature])]
        return write_digits(path, images, self.conditions(conditions), names, self.pad_feature,
                            self.time_feature, self.pad_window, self.time_window)

    def window_counts(self) -> str:
        ev = self.events
        if ev is None:
            return ""
        return (f"{ev.source}: {ev.n_out_of_window_hits} hits in {ev.n_out_of_window_events} events outside the "
                f"window pad {self.pad_window} x time {self.time_window} (counted, not stored); "
                f"{ev.n_duplicate_hits} repeated cells summed")

    def describe(self) -> str:
        return f"{super().describe()}\n{self.window_counts()}"

    def summary(self, real, fake):
        """The chi2 of the final samples, its largest terms, and the out-of-window counts."""
        from gentwin.domains.tpc.metrics import tpc_chi2

        cond = self.conditions(self.c_raw_val[self.eval_slice()])
        if len(next(iter(real.values()))) != len(next(iter(cond.values()))):
            return self.window_counts()
        variables = [v for v in PROFILE_VARIABLES if v in cond]
        r = tpc_chi2(real, fake, cond, variables=variables)
        terms = sorted(((k[5:], v) for k, v in r.items() if k.startswith("term/")), key=lambda kv: -kv[1])
        n = len(cond[variables[0]]) if variables else 0
        lines = [f"TPC profile chi2 on {n} held-out events: chi2 {r['chi2']:.1f}  chi2_amp {r['chi2_amp']:.1f}  "
                 f"skipped bins {r['skipped_bins']:.0f}  zero-amplitude images real {r['n_invalid_real']:.0f} / "
                 f"generated {r['n_invalid_fake']:.0f}", "largest terms (statistic / profile variable):"]
        total = max(r["chi2_amp"], 1e-12)
        lines += [f"  {name:34s} {value:10.1f}  ({value / total:5.1%} of chi2_amp)" for name, value in terms[:8]]
        lines.append(self.window_counts())
        return "\n".join(lines)
