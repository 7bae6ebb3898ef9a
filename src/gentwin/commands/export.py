"""``export-model``: a trained generator as a standalone data-space sampler, ONNX or TorchScript.

Usage::

    export-model <checkpoint.ckpt> [format=onnx|torchscript] [out=FILE] [force=true] [check=false]
    export-model <checkpoint.ckpt> [--format onnx|torchscript] [--out FILE] [--force] [--no-check]

The ``key=value`` spelling is the one every command takes; the ``--`` options are the same and stay
accepted. (The console script is ``export-model``: ``export`` is a shell builtin, which bash, zsh and
sh run instead of any program of that name.) An existing file is replaced only with ``force=true``,
the checkpoint itself never.

Exit codes: 0 written, 2 usage (``out`` the checkpoint, or an existing file without ``force``) or not a
gentwin checkpoint, 1 the export or its check failed.
"""

from __future__ import annotations

import argparse
import sys

import torch

from gentwin.commands import common
from gentwin.errors import EXIT_OK, CheckpointError, ExportError, UsageError
from gentwin.training.export import TOLERANCE, export, load, output
from gentwin.training.export import __doc__ as export_doc

#: ``key=value`` arguments and the options they stand for (see ``common.options``).
OPTIONS = {"format": "--format", "out": "--out"}
SWITCHES = {"force": ("--force", True), "check": ("--no-check", False)}


def main(argv: list[str] | None = None) -> int:
    """The ``export-model`` console script; returns the exit code."""
    parser = argparse.ArgumentParser(prog="export-model", description=__doc__,
                                     epilog=export_doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a gentwin checkpoint (run folder/checkpoints/best.ckpt)")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    parser.add_argument("--out", default=None, help="output file (default: beside the checkpoint)")
    parser.add_argument("--no-check", action="store_true", help="skip running the file against torch")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file (never the checkpoint)")
    args = parser.parse_args(common.options(sys.argv[1:] if argv is None else argv, OPTIONS, SWITCHES))
    torch.set_num_threads(1)
    try:
        output(args.checkpoint, args.format, args.out, args.force)  # refused before the checkpoint is read
        model = load(args.checkpoint)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # torch.load on an arbitrary file raises more than CheckpointError names
        print(f"error: {args.checkpoint}: not a gentwin checkpoint ({type(e).__name__} while reading it)",
              file=sys.stderr)
        return CheckpointError.exit_code
    try:
        out, diff = export(args.checkpoint, args.format, args.out, verify=not args.no_check, model=model,
                           force=args.force)
    except (ExportError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except ImportError as e:
        print(f"error: {e.name or e} is needed for --format {args.format}: pip install 'gentwin[export]'",
              file=sys.stderr)
        return ExportError.exit_code
    if diff is not None and diff[1] > TOLERANCE:
        print(f"error: {out} differs from the torch model by {diff[1]:.3g} (relative to its largest output; "
              f"> {TOLERANCE:.2g})", file=sys.stderr)
        return ExportError.exit_code
    note = "" if diff is None else f" (vs torch: max abs diff {diff[0]:.2g}, relative {diff[1]:.2g})"
    print(f"wrote {out} and {out}.json{note}")
    return EXIT_OK


def console() -> None:
    common.console(main)


if __name__ == "__main__":
    console()
