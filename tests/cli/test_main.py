"""The ``rldispatch`` command itself: every verb listed, each with its own ``--help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rldispatch.cli import VERBS, main


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


@pytest.mark.parametrize("verb", list(VERBS))
def test_each_verb_has_its_own_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rldispatch {verb}")
    assert "--" in out  # its own options, not the one-line stub


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
