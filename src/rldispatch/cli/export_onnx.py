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
            "Export a model file to ONNX (metadata included) and check that ONNX Runtime and "
            "PyTorch give the same Q-values (max abs difference < 1e-4) on real states."
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
    from rldispatch.agents.dqn.model_file import ModelFileError
    from rldispatch.agents.model_files import model_kind
    from rldispatch.cli import CliError
    from rldispatch.files import atomic_write_json
    from rldispatch.service.model import ModelLoadError
    from rldispatch.service.onnx_runtime import export_onnx

    try:
        if model_kind(args.model).name == "pairwise":
            raise CliError(
                f"{args.model}: a pairwise model is served as it is (NumPy, any fleet size); "
                "ONNX export covers flat DQN models"
            )
    except ModelFileError:
        pass  # the export names what is wrong with the file
    try:
        result = export_onnx(args.model, args.out, check_states=args.check_states)
    except ModelLoadError as error:
        raise CliError(str(error)) from error
    print(
        f"wrote {result.path} ({result.size_bytes} bytes); ONNX Runtime vs PyTorch on "
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
