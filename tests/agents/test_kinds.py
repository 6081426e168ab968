"""The agent kinds: registered through entry points, each with its own serving runtimes and
an optional ONNX export refused in one line."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import torch

from rldispatch.agents import kinds
from rldispatch.agents.kinds import (
    ENTRY_POINT_GROUP,
    AgentKind,
    agent_kind,
    kind_names,
    kind_of_format,
    kind_of_onnx_format,
    register_kind,
)
from rldispatch.agents.model_container import write_model_file
from rldispatch.agents.onnx_files import export_onnx
from rldispatch.agents.serving import RUNTIMES, ModelLoadError
from rldispatch.cli import main
from rldispatch.env import EnvConfig

PLAIN_FORMAT = "rldispatch-plain-test"


class PlainKind(AgentKind):
    """A kind that trains nothing, serves nothing and has no ONNX export: only what every kind
    must have."""

    name = "plain-test"
    summary = "a kind with the interface's defaults"
    config_type = object  # type: ignore[assignment]
    model_format = PLAIN_FORMAT
    default_days = "preset"

    def train_env_config(self, max_drivers: int) -> EnvConfig:
        return EnvConfig(max_drivers=max_drivers)

    def play_env_config(self, trained: EnvConfig, days: Sequence[Any]) -> EnvConfig:
        return trained

    def new_learner(self, config: Any, env: Any, seed: int) -> Any:
        raise NotImplementedError

    def load_model(self, path: str | Path, name: str | None = None) -> Any:
        raise NotImplementedError

    def search_space(self) -> Sequence[Any]:
        return ()


@pytest.fixture
def plain_model(tmp_path: Path) -> Iterator[Path]:
    """A model file of :class:`PlainKind`, registered for the test only."""
    register_kind(PlainKind())
    path = write_model_file(
        tmp_path / "plain.safetensors", torch.nn.Linear(2, 1), PLAIN_FORMAT, 1, {}, "plain"
    )
    yield path
    kinds._KINDS.pop(PlainKind.name, None)


def test_the_installed_entry_points_name_every_shipped_kind() -> None:
    points = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert points["pairwise"] == "rldispatch.agents.pairwise.kind:KIND"
    assert points["dqn"] == "rldispatch.agents.dqn.kind:KIND"
    assert kind_names()[0] == "pairwise"
    for name in points:
        kind = agent_kind(name)
        assert kind.name == name
        assert kind_of_format(kind.model_format) is kind
        assert set(kind.serving_runtimes) <= set(RUNTIMES) and "auto" in kind.serving_runtimes


def test_each_kind_names_its_own_onnx_format() -> None:
    formats = {agent_kind(name).onnx_format for name in ("pairwise", "dqn")}
    assert len(formats) == 2 and None not in formats
    for name in ("pairwise", "dqn"):
        assert kind_of_onnx_format(agent_kind(name).onnx_format) is agent_kind(name)
    assert kind_of_onnx_format(None) is None
    assert kind_of_onnx_format("rldispatch-elsewhere/1") is None


def test_a_kind_registered_at_run_time_is_found_by_its_format(plain_model: Path) -> None:
    assert PlainKind.name in kind_names()
    assert kind_of_format(PLAIN_FORMAT).name == PlainKind.name
    assert kind_of_onnx_format(None) is None  # a kind without an export claims no format


def test_a_kind_without_an_onnx_export_is_refused_in_one_line(
    plain_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plain.onnx"
    with pytest.raises(ModelLoadError, match=r"^onnx: a plain-test model has no ONNX export$"):
        export_onnx(plain_model, out)
    assert main(["export-onnx", "--model", str(plain_model), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "plain-test model has no ONNX export" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_a_kind_that_cannot_serve_says_so_in_one_line(plain_model: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"^model: a plain-test model cannot be served$"):
        agent_kind(PlainKind.name).load_served(plain_model, "auto", lambda preset, config: None)
