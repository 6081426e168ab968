"""The ``rldispatch`` command: one verb per module in this package.

Each verb module has ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rldispatch.domain import ScenarioError

VERB_MODULES = (
    "simulate",
    "train",
    "evaluate",
    "compare",
    "tune",
    "solve",
    "plot",
    "serve",
    "collect",
    "export_onnx",
    "quickstart",
)
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rldispatch", description="Learn, evaluate and serve ride dispatch policies."
    )
    subparsers = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(f"rldispatch.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"rldispatch.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CliError, ScenarioError, FileNotFoundError) as error:
        print(f"rldispatch {args.verb}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"rldispatch {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
