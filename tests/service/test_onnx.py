"""ONNX export: the same Q-values as PyTorch, served by the manager on ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from rldispatch.agents.dqn.loading import load_q_model
from rldispatch.agents.dqn.model_file import load_model
from rldispatch.agents.dqn.onnx_export import export_onnx_bytes, max_q_difference, reference_states
from rldispatch.agents.dqn.serving import OnnxQFunction, TorchQFunction, read_onnx_metadata
from rldispatch.agents.serving import ModelLoadError
from rldispatch.cli import main
from rldispatch.env import EnvConfig
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from tests.service.helpers import live_request, make_model_file


@pytest.fixture(scope="module")
def prototype_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prototype's shapes: 122 floats -> 512 -> 256 -> 128 -> 201 actions."""
    path = tmp_path_factory.mktemp("onnx") / "prototype.safetensors"
    return make_model_file(path, hidden_sizes=(512, 256, 128), seed=3)


def test_onnx_and_pytorch_give_the_same_q_values_on_1000_states(prototype_model: Path) -> None:
    loaded = load_model(prototype_model)
    states = reference_states(EnvConfig(), "geneva", 1000)
    assert states.shape == (1000, 122)
    assert len(np.unique(states, axis=0)) > 900
    difference = max_q_difference(
        TorchQFunction(loaded), OnnxQFunction(export_onnx_bytes(loaded)), states
    )
    assert difference < 1e-4


def test_export_onnx_verb_writes_a_servable_file(prototype_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    report = tmp_path / "export.json"
    code = main(
        ["export-onnx", "--model", str(prototype_model), "--out", str(out), "--json", str(report)]
    )
    assert code == 0
    figures = json.loads(report.read_text())
    assert figures["states_checked"] == 1000 and figures["max_abs_diff"] < 1e-4
    served = load_q_model(out)
    assert served.runtime == "onnx"
    assert served.info.version == load_model(prototype_model).metadata.version
    assert served.info.env_config == EnvConfig()

    on = ToggleState(enabled=True, ab_ratio=1.0)
    onnx_manager = RLDispatchManager(out, state=on)
    torch_manager = RLDispatchManager(prototype_model, runtime="torch", state=on)
    for seed in range(10):
        request = live_request(booking_id=f"x{seed}", seed=seed, n_drivers=10, n_open=12)
        from_onnx, from_torch = onnx_manager.suggest(request), torch_manager.suggest(request)
        assert from_onnx.source == "rl"
        assert from_onnx.driver_id == from_torch.driver_id
        assert from_onnx.model_version == from_torch.model_version


def test_export_of_a_broken_model_fails_cleanly(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    code = main(["export-onnx", "--model", str(broken), "--out", str(tmp_path / "x.onnx")])
    assert code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_file_without_rldispatch_metadata_is_refused(
    prototype_model: Path, tmp_path: Path
) -> None:
    graph = onnx.load_from_string(export_onnx_bytes(load_model(prototype_model)))
    del graph.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(graph.SerializeToString())
    with pytest.raises(ModelLoadError, match="metadata"):
        read_onnx_metadata(foreign.read_bytes())
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"definitely not protobuf" * 10)
    manager = RLDispatchManager(garbage, state=ToggleState(enabled=True, ab_ratio=1.0))
    assert manager.suggest(live_request()).reason == "model_load_failed"
