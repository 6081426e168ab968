"""Model files: round trip, safe refusal of damaged or foreign files, size checks."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import (
    ModelFileError,
    ModelMetadata,
    check_compatible,
    load_model,
    save_model,
)
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.rewards import RewardConfig


def small_model(dueling: bool = False) -> tuple[QNetwork, ModelMetadata]:
    torch.manual_seed(0)
    config = DQNConfig(hidden_sizes=(16, 8), dueling=dueling, batch_size=4, buffer_size=10)
    env_config = EnvConfig(reward=RewardConfig(km_cost=0.2))
    network = QNetwork(env_config.observation_size, env_config.n_actions, (16, 8), dueling)
    metadata = ModelMetadata(
        observation_size=env_config.observation_size,
        n_actions=env_config.n_actions,
        env_config=env_config_to_dict(env_config),
        preset="geneva",
        hyperparameters=config.to_dict(),
        training_summary={"episodes": 3},
    )
    return network, metadata


@pytest.mark.parametrize("dueling", [False, True])
def test_round_trip_gives_the_same_q_values_and_metadata(tmp_path, dueling: bool) -> None:
    network, metadata = small_model(dueling)
    path = save_model(tmp_path / "model.safetensors", network, metadata)
    loaded = load_model(path)
    observations = torch.randn(3, metadata.observation_size)
    torch.testing.assert_close(loaded.network(observations), network(observations))
    assert not loaded.network.training
    assert loaded.metadata.observation_size == 122 and loaded.metadata.n_actions == 201
    assert loaded.metadata.training_summary == {"episodes": 3}
    assert loaded.metadata.version.startswith("dqn-")
    assert loaded.metadata.make_env_config() == EnvConfig(reward=RewardConfig(km_cost=0.2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_version_identifies_the_weights(tmp_path) -> None:
    network, metadata = small_model()
    first = load_model(save_model(tmp_path / "a.safetensors", network, metadata)).metadata
    with torch.no_grad():
        network.head.bias.add_(1.0)
    second = load_model(save_model(tmp_path / "b.safetensors", network, metadata)).metadata
    assert first.version != second.version


def test_missing_file_is_refused(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep_fraction", [0.0, 0.001, 0.5, 0.99])
def test_truncated_file_is_refused(tmp_path, keep_fraction: float) -> None:
    network, metadata = small_model()
    data = save_model(tmp_path / "model.safetensors", network, metadata).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(cut)


def test_foreign_files_are_refused(tmp_path) -> None:
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a model")
    with pytest.raises(ModelFileError, match="not an rldispatch model file"):
        load_model(text)
    pickled = tmp_path / "model.pt"
    buffer = io.BytesIO()
    torch.save(QNetwork(4, 3, (8,)).state_dict(), buffer)
    pickled.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match="not an rldispatch model file"):
        load_model(pickled)


def test_other_safetensors_files_are_refused(tmp_path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not an rldispatch model file"):
        load_model(path)


def test_weights_that_do_not_match_the_metadata_are_refused(tmp_path) -> None:
    network, metadata = small_model()
    lying = ModelMetadata(**{**metadata.to_dict(), "hyperparameters": {"hidden_sizes": [32]}})
    path = save_model(tmp_path / "model.safetensors", network, lying)
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)


def test_model_whose_sizes_differ_from_the_env_is_refused() -> None:
    _, metadata = small_model()
    check_compatible(metadata, DispatchEnv(preset="geneva"))
    smaller = DispatchEnv(preset="geneva", config=EnvConfig(max_drivers=12))
    with pytest.raises(
        ModelFileError,
        match=r"trained for 10 drivers and 20 booking slots; these days need 12 drivers",
    ):
        check_compatible(metadata, smaller)


def test_metadata_is_plain_json_in_the_header(tmp_path) -> None:
    network, metadata = small_model()
    data = save_model(tmp_path / "m.safetensors", network, metadata).read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])["__metadata__"]
    assert header["format"] == "rldispatch-dqn"
    assert json.loads(header["metadata"])["preset"] == "geneva"
    assert np.isfinite(json.loads(header["metadata"])["env_config"]["lookahead_min"])
