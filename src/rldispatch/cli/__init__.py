"""The ``rldispatch`` command: one verb per module in this package.

Each verb module has ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
from typing import NoReturn

from rldispatch.domain import ScenarioError

VERBS = {
    "simulate": "run policies on days and print the metrics table",
    "train": "train a learned dispatch policy (--agent pairwise, any fleet; or dqn, flat)",
    "evaluate": "evaluate a model on held-out days, optionally against every baseline",
    "compare": "compare models, configs and baselines side by side on the same days",
    "tune": "Optuna auto-tuner; --storage for a shared study; writes the optimal config",
    "solve": "hindsight solution of a scenario (all bookings known)",
    "plot": "PNG plots: training curves, comparison chart, a day's routes",
    "serve": "start the HTTP API",
    "collect": "export historical bookings, or the service's own log, into scenario files",
    "export-onnx": "export a model for ONNX Runtime",
    "promote": "gate a challenger model against the champion on the latest held-out days; "
    "record and hand over the winner",
    "quickstart": "train the pairwise policy and compare it with the heuristics on held-out days",
}
"""Each verb and its one-line help; the verb's module is ``rldispatch.cli.<verb with _>``."""
EXIT_BAD_INPUT = 2
EXIT_OUTPUT_CLOSED = 141
"""The exit status of a command whose reader closed its output (``rldispatch ... | head``):
128 plus SIGPIPE's number, as a shell reports a program the signal stopped."""


class CliError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


class CommandParser(argparse.ArgumentParser):
    """A parser that takes no abbreviated option (``--episode`` is not ``--episodes``) and
    refuses a bad value in one line, exit code 2; its subparsers are of the same class."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser(verb: str | None = None, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command's parser. Only ``verb``'s module is imported (with what it needs, PyTorch
    among them); the other verbs are listed by name and help, so ``--help`` stays quick. A
    verb whose options depend on another option (``train --agent``) reads ``argv``."""
    parser = CommandParser(
        prog="rldispatch", description="Learn, evaluate and serve ride dispatch policies."
    )
    parser.add_argument("--version", action="version", version=f"rldispatch {package_version()}")
    subparsers = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, summary in VERBS.items():
        if name != verb:
            subparsers.add_parser(name, help=summary)
            continue
        module = importlib.import_module(f"rldispatch.cli.{name.replace('-', '_')}")
        if getattr(module, "OPTIONS_DEPEND_ON_ARGV", False):
            module.register(subparsers, argv or [])
        else:
            module.register(subparsers)
    return parser


def package_version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rldispatch")
    except PackageNotFoundError:
        from rldispatch import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = next((item for item in argv if not item.startswith("-")), None)
    parser = build_parser(verb, argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        module = sys.modules.get(f"rldispatch.cli.{args.verb.replace('-', '_')}")
        explain = getattr(module, "unknown_option_message", None)
        message = explain(args, unknown[0]) if explain else f"unrecognized arguments: {unknown[0]}"
        print(f"rldispatch {args.verb}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed reader shows here, not at the interpreter's exit
        return code
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe (a worker's, a socket): a real error
        return EXIT_OUTPUT_CLOSED
    except (CliError, ScenarioError, FileNotFoundError) as error:
        print(f"rldispatch {args.verb}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"rldispatch {args.verb}: interrupted", file=sys.stderr)
        return 130


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone; if so, what is still to be
    written goes to the null device (the interpreter's last flush would fail again)."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        closed = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no descriptor (a captured stream)
        return False
    if closed:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    return closed


if __name__ == "__main__":
    sys.exit(main())
