"""The ``rldispatch`` command itself: every verb listed, each with its own ``--help``."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rldispatch.agents.kinds import agent_kind, kind_names
from rldispatch.cli import VERBS, build_parser, main


def test_the_top_level_help_lists_every_verb_without_loading_pytorch() -> None:
    code = (
        "import sys\n"
        "from rldispatch.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    for verb, summary in VERBS.items():
        assert verb in result.stdout
        assert summary.split()[0] in result.stdout
    assert result.stdout.strip().endswith("False")


def test_serve_refuses_a_taken_port_before_loading_pytorch(tmp_path: Path) -> None:
    code = (
        "import socket, sys\n"
        "from rldispatch.cli import main\n"
        "taken = socket.socket()\n"
        "taken.bind(('127.0.0.1', 0))\n"
        "taken.listen()\n"
        "port = str(taken.getsockname()[1])\n"
        f"code = main(['serve', '--port', port, '--data-dir', {str(tmp_path)!r}])\n"
        "print(code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "port: cannot listen on 127.0.0.1:" in result.stderr
    assert result.stdout.split() == ["2", "False"]
    assert not any(tmp_path.iterdir())  # refused before the service set anything up


@pytest.mark.parametrize("verb", list(VERBS))
def test_each_verb_has_its_own_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rldispatch {verb}")
    assert "--" in out  # its own options, not the one-line stub


@pytest.mark.parametrize("kind", kind_names())
def test_train_help_says_the_untrained_start_is_kept_unless_training_beats_it(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--agent", kind, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"the untrained start included ({agent_kind(kind).untrained_start})" in out
    assert "does not beat its start there returns the start" in out


def test_an_unknown_verb_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["teleport"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'teleport'" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from rldispatch import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rldispatch {__version__}"


def every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every subparser under it, nested ones included."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += every_parser(child)
    return found


@pytest.mark.parametrize("verb", list(VERBS))
def test_no_parser_takes_an_abbreviated_option(verb: str) -> None:
    parsers = every_parser(build_parser(verb, [verb]))
    assert len(parsers) > len(VERBS)
    assert all(parser.allow_abbrev is False for parser in parsers)


def test_an_abbreviated_option_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--episode", "5"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "rldispatch simulate: error: unrecognized arguments: --episode"
    ]


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["serve", "--port", "99999"], "--port: must be a port from 1 to 65535, got 99999"),
        (["serve", "--port", "0"], "--port"),
        (["serve", "--port", "http"], "--port"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["simulate", "--episodes", "-3"], "--episodes"),
        (["evaluate", "--model", "m.safetensors", "--jobs", "x"], "--jobs"),
        (["evaluate", "--model", "m.safetensors", "--hindsight-time-limit", "nan"], "limit"),
        (["quickstart", "--minutes", "soon"], "--minutes: must be a number of minutes"),
        (["plot", "routes", "--policy", "nearest", "--out", "r.png", "--day-seed", "a"], "seed"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(
    argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rldispatch ")
    assert field in lines[0]


def test_serve_log_level_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--log-level {debug,info,warning,error} the least severe log lines" in help_text


def test_serve_on_a_taken_port_is_one_line_before_the_service_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"rldispatch serve: error: port: cannot listen on 127.0.0.1:{port} (Address already in use)"
    )
    assert not (tmp_path / "data" / "admin-token").exists()


def test_a_closed_reader_ends_the_command_quietly_with_sigpipes_status() -> None:
    # The reader goes before the command writes (``rldispatch ... | head`` once head is done).
    command = [sys.executable, "-m", "rldispatch.cli", "simulate", "--preset", "geneva"]
    command += ["--episodes", "1", "--policy", "insertion"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "BrokenPipeError" not in error
    assert "Traceback" not in error
