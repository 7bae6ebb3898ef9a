"""``sample``: responses of a trained model, in data units, from its checkpoint alone.

Usage::

    sample <checkpoint.ckpt> out=<file.npz|.h5|.root|.csv|.dat> [n=N] [conditions=<file>] [from_dataset=true]
           [extrapolate=true] [seed=0] [threads=N] [batch_size=65536] [steps=N] [solver=euler|midpoint|rk4|dopri5]
    sample <checkpoint.ckpt> timing=true [threads=1] [steps=N] [solver=...]

``steps`` and ``solver`` change how a model that solves an ODE (flow matching) samples.

``timing=true`` writes nothing: it prints the generation time per sample at batch 1, 100 and 10,000,
torch and ONNX, CPU (and GPU when present), mean ± std over 5 repeats, and the parameter count
(``gentwin.training.timing``).

``out`` may also name a format of the model's domain: leaves are post-processed into geometry and
written as GeoJSON (``out=leaves.geojson``) or WKT (``.wkt``), the valid ones, with a line saying how
many were valid and why the others failed; ``dataset.geometry=<file>`` reads such a file back.

Conditional models need conditions, one row per sample:

* ``conditions=<file.csv>``: a header row naming the columns, in data units (TPC: ``crossing_angle,
  dip_angle, drift_length`` and ``pad_coordinate`` or the fractional parts); extra columns are ignored.
* ``conditions=<file.npz>``: either an array ``c`` of model-visible condition vectors (as in a run's
  ``samples.npz`` or a previous ``sample`` output) or named arrays in data units, as in the CSV.
* ``from_dataset=true``: the held-out conditions of the dataset the model was trained on (rebuilt from
  the config in the checkpoint; it reads the data file again or re-simulates).

A ``dataset=arrays`` model reads ``conditions=`` by its training file's condition names from any
format that dataset reads (HDF5, ROOT, npz, CSV; ``(N, 1)`` or ``(N,)``), and writes ``out`` (``.h5``,
``.root``, ``.npz``, ``.csv``) under its training file's names (``showers``, ``incident_energies``;
the ROOT tree), units attached (``gentwin.data.writers``). A TPC model writes ``out=responses.dat`` in
the digits format. Conditions outside the training range are refused (exit 2, naming the column, the
value and the range) unless ``extrapolate=true``, which warns with their count (``gentwin.data.interface``).

``n`` defaults to the number of condition rows; a larger ``n`` cycles through them. The output holds
``x`` (samples in data units), ``c`` (model-visible conditions), ``cond_names`` and, per condition,
``cond_<name>`` in data units. It is written to a temporary file and renamed, so an error leaves no
partial file. Exit codes: 0 done, 2 usage or not a checkpoint, 3 unreadable conditions or data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gentwin.commands.common import console as _console
from gentwin.commands.common import flag, integer, split
from gentwin.errors import EXIT_CONFIG, EXIT_OK, GentwinError, UsageError
from gentwin.progress import shown

KEYS = ("n", "conditions", "from_dataset", "out", "seed", "threads", "batch_size", "timing", "extrapolate", "steps",
        "solver")


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    """``(checkpoint, {key: value})`` from ``<checkpoint> key=value ...`` (``common.split``)."""
    positional, args = split(argv, KEYS, Path.is_file)
    if len(positional) != 1:
        raise UsageError("give exactly one checkpoint file: sample <checkpoint.ckpt> out=<file.npz> [n=...]")
    return positional[0], args


def sample(checkpoint: str, args: dict[str, str]) -> str:
    """Generates and writes the samples (``gentwin.training.sampling``); returns the line to print."""
    from gentwin.training import sampling

    solver = {"steps": integer(args, "steps", None), "solver": args.get("solver")}
    if flag(args, "timing"):
        return sampling.timing(checkpoint, integer(args, "threads", 1), **solver)
    if "out" not in args:
        raise UsageError("give the output file: out=<file.npz>")
    return sampling.generate(checkpoint, Path(args["out"]), n=integer(args, "n", None),
                             seed=integer(args, "seed", 0, low=0), batch_size=integer(args, "batch_size", 65_536),
                             conditions=args.get("conditions"), from_dataset=flag(args, "from_dataset"),
                             extrapolate=flag(args, "extrapolate"), threads=integer(args, "threads", None), **solver)


def main(argv: list[str]) -> int:
    """The ``sample`` console script; returns the exit code."""
    if not argv or "-h" in argv or "--help" in argv:
        print(__doc__)
        return EXIT_OK if argv else EXIT_CONFIG
    try:
        checkpoint, args = parse(argv)
        with shown():  # post-processing many leaves into geometry says how far it is
            print(sample(checkpoint, args))
    except GentwinError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return EXIT_OK


def console() -> None:
    _console(main)
