"""One loader for both kinds of model file: the kind is read from the header."""

from __future__ import annotations

from pathlib import Path

import pytest

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import ModelFileError, ModelMetadata, save_model
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.model_files import load_learned_model, model_kind
from rldispatch.agents.pairwise.model_file import PairwiseMetadata, save_pairwise_model
from rldispatch.agents.pairwise.network import KnownReward, PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.fleet_days import geneva_day


@pytest.fixture
def flat_path(tmp_path: Path) -> Path:
    env = DispatchEnv(preset="geneva")
    size, actions = env.observation_space.shape[0], int(env.action_space.n)
    metadata = ModelMetadata(
        observation_size=size,
        n_actions=actions,
        env_config={},
        preset="geneva",
        hyperparameters=DQNConfig(hidden_sizes=(8,)).to_dict(),
    )
    return save_model(tmp_path / "flat.safetensors", QNetwork(size, actions, (8,)), metadata)


@pytest.fixture
def pairwise_path(tmp_path: Path) -> Path:
    network = PairQNetwork(hidden=8, head_hidden=8, known_reward=KnownReward(4.0, -0.2, -1.0, 0))
    metadata = PairwiseMetadata(hidden=8, head_hidden=8, candidates_per_booking=3)
    return save_pairwise_model(tmp_path / "pairwise.safetensors", network, metadata)


def test_the_kind_comes_from_the_header(flat_path: Path, pairwise_path: Path) -> None:
    assert model_kind(flat_path).name == "dqn"
    assert model_kind(pairwise_path).name == "pairwise"
    assert isinstance(load_learned_model(flat_path).policy, DQNPolicy)
    assert isinstance(load_learned_model(pairwise_path).policy, PairwisePolicy)


def test_a_flat_model_keeps_its_slots_and_refuses_larger_fleets_a_pairwise_one_fits_any(
    flat_path: Path, pairwise_path: Path
) -> None:
    days = [geneva_day(1, 7), geneva_day(2, 24)]
    flat = load_learned_model(flat_path)
    assert flat.env_config_for(days[:1]) == EnvConfig()
    with pytest.raises(ValueError, match="at most 10 drivers; a day here has 24"):
        flat.env_config_for(days)
    pairwise = load_learned_model(pairwise_path, name="mine")
    assert pairwise.env_config_for(days).max_drivers == 24
    assert pairwise.policy.name == "mine"
    assert pairwise.info()["kind"] == "pairwise"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "truncated"),
        (b"\xff" * 16, "no safetensors header"),
        (b"\x04\x00\x00\x00\x00\x00\x00\x00nope", "unreadable header"),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00{}", "format is None"),
    ],
)
def test_what_is_not_a_model_file_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as error:
        load_learned_model(path)
    assert str(path) in str(error.value)


def test_a_missing_file_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such model file"):
        model_kind(tmp_path / "nothing.safetensors")
    with pytest.raises(ModelFileError, match="is a directory"):
        model_kind(tmp_path)


def test_weights_with_nan_are_neither_saved_nor_loaded(tmp_path: Path, pairwise_path: Path) -> None:
    import struct

    import torch

    network = PairQNetwork(hidden=8, head_hidden=8)
    with torch.no_grad():
        network.pair_out.weight[0, 0] = float("nan")
    metadata = PairwiseMetadata(hidden=8, head_hidden=8, candidates_per_booking=3)
    with pytest.raises(ModelFileError, match="not saved, the weights hold NaN"):
        save_pairwise_model(tmp_path / "nan.safetensors", network, metadata)
    assert not (tmp_path / "nan.safetensors").exists()

    # A file whose weights became NaN on disk: every float32 of the payload set to NaN.
    data = bytearray(pairwise_path.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    payload = 8 + header_size
    nan = struct.pack("<f", float("nan"))
    data[payload:] = nan * ((len(data) - payload) // 4)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="NaN or infinite values") as raised:
        load_learned_model(broken)
    assert "\n" not in str(raised.value)
