"""``rldispatch export-onnx``: a model file for ONNX Runtime, checked against PyTorch."""

from __future__ import annotations

import argparse

from rldispatch.cli import VERBS
from rldispatch.cli.common import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-onnx",
        help=VERBS["export-onnx"],
        description=(
            "Export a model file (flat or pairwise) to ONNX, metadata included, and check that "
            "ONNX Runtime gives the Q-values of PyTorch (flat) or NumPy (pairwise) on real "
            "states (max abs difference < 1e-4)."
        ),
    )
    parser.add_argument("--model", required=True, help="model file written by train")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument(
        "--check-states", type=positive_int, default=1000, help="states to compare on (1000)"
    )
    parser.add_argument("--json", type=str, help="write the export report JSON here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rldispatch.agents.onnx_files import export_onnx
    from rldispatch.agents.serving import ModelLoadError
    from rldispatch.cli import CliError
    from rldispatch.files import atomic_write_json

    try:
        result = export_onnx(args.model, args.out, check_states=args.check_states)
    except ModelLoadError as error:
        raise CliError(str(error)) from error
    print(
        f"wrote {result.path} ({result.size_bytes} bytes); ONNX Runtime vs the reference on "
        f"{result.states_checked} states: max |dQ| = {result.max_abs_diff:.2e}"
    )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "model": str(args.model),
                "onnx": str(result.path),
                "size_bytes": result.size_bytes,
                "states_checked": result.states_checked,
                "max_abs_diff": result.max_abs_diff,
            },
        )
    return 0
