"""Pairwise model files: a round trip keeps every score; foreign, truncated or stale files
are refused with a message."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from rldispatch.agents.dqn.model_file import ModelMetadata, save_model
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.pairwise.features import FeatureBuilder
from rldispatch.agents.pairwise.model_file import (
    PairwiseMetadata,
    PairwiseModelError,
    load_pairwise_model,
    save_pairwise_model,
    save_untrained_model,
)
from rldispatch.agents.pairwise.network import KnownReward, PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy, known_reward_policy
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.training.evaluation import run_day


def trained_looking_network() -> PairQNetwork:
    torch.manual_seed(0)
    network = PairQNetwork(
        hidden=16, head_hidden=8, known_reward=KnownReward(4.0, -0.2, -1.0, -0.2)
    )
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return network


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    metadata = PairwiseMetadata(hidden=16, head_hidden=8, candidates_per_booking=3)
    return save_pairwise_model(tmp_path / "model.safetensors", trained_looking_network(), metadata)


def test_round_trip_keeps_every_score_and_the_metadata(model_path: Path) -> None:
    loaded = load_pairwise_model(model_path)
    assert loaded.metadata.candidates_per_booking == 3
    assert loaded.metadata.version.startswith("pairwise-")
    assert not loaded.network.training
    env = DispatchEnv(preset=None, scenario=geneva_day(2, 11), config=EnvConfig(max_drivers=11))
    env.reset()
    original = PairwisePolicy(trained_looking_network(), candidates_per_booking=3).scores(env)
    reloaded = PairwisePolicy(loaded).scores(env)
    assert reloaded.wait_q == pytest.approx(original.wait_q, abs=1e-6)
    assert [(p.driver, p.slot) for p in reloaded.pairs] == [
        (p.driver, p.slot) for p in original.pairs
    ]
    np.testing.assert_allclose(
        [p.q_value for p in reloaded.pairs], [p.q_value for p in original.pairs], atol=1e-6
    )


def test_a_truncated_file_is_refused(model_path: Path, tmp_path: Path) -> None:
    data = model_path.read_bytes()
    for size in (4, 40, len(data) - 100):
        cut = tmp_path / f"cut-{size}.safetensors"
        cut.write_bytes(data[:size])
        with pytest.raises(PairwiseModelError, match="truncated|corrupt"):
            load_pairwise_model(cut)


def test_a_flat_dqn_model_file_is_refused_as_foreign(tmp_path: Path) -> None:
    metadata = ModelMetadata(
        observation_size=6, n_actions=3, env_config={}, preset=None, hyperparameters={}
    )
    path = save_model(tmp_path / "flat.safetensors", QNetwork(6, 3, (4,)), metadata)
    with pytest.raises(PairwiseModelError, match="not a pairwise model"):
        load_pairwise_model(path)


def test_random_bytes_and_missing_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(PairwiseModelError, match="not an rldispatch model"):
        load_pairwise_model(junk)
    with pytest.raises(PairwiseModelError, match="no such model file"):
        load_pairwise_model(tmp_path / "absent.safetensors")


def rewrite_metadata(path: Path, change) -> None:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    metadata = json.loads(header["__metadata__"]["metadata"])
    change(metadata)
    header["__metadata__"]["metadata"] = json.dumps(metadata, separators=(",", ":"))
    # keep the header length (pad with spaces) so the tensors stay where they were
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= size
    path.write_bytes(data[:8] + text.ljust(size) + data[8 + size :])


def test_a_model_trained_on_other_features_is_refused(model_path: Path) -> None:
    rewrite_metadata(model_path, lambda m: m["features"]["pair"].pop())
    with pytest.raises(PairwiseModelError, match="features version"):
        load_pairwise_model(model_path)


def test_weights_that_do_not_match_the_metadata_are_refused(model_path: Path) -> None:
    rewrite_metadata(model_path, lambda m: m.update(hidden=32))
    with pytest.raises(PairwiseModelError, match="do not match"):
        load_pairwise_model(model_path)


def test_one_model_serves_fleets_of_any_size(model_path: Path) -> None:
    policy = PairwisePolicy(load_pairwise_model(model_path))
    for n_drivers in (3, 17, 40):
        env = DispatchEnv(
            preset=None, scenario=geneva_day(9, n_drivers), config=EnvConfig(max_drivers=n_drivers)
        )
        env.reset()
        action = policy.act(env)
        assert env.action_masks()[action]
        state = FeatureBuilder(3).build(env)
        assert state.drivers.shape[0] == n_drivers


def test_a_model_of_the_features_before_shared_rides_is_refused_in_one_line(
    model_path: Path,
) -> None:
    """A version-1 file (16 pair features, no shared-ride features) names both versions."""

    def version_one(metadata: dict) -> None:
        metadata["feature_version"] = 1
        metadata["features"]["pair"] = metadata["features"]["pair"][:16]

    rewrite_metadata(model_path, version_one)
    with pytest.raises(PairwiseModelError) as refused:
        load_pairwise_model(model_path)
    message = str(refused.value)
    assert "\n" not in message
    assert "features version 1" in message and "version 2 (retrain the model)" in message


def test_the_known_reward_policy_plays_as_the_untrained_model_file(tmp_path: Path) -> None:
    reward = RewardConfig(km_cost=0.3, late_pickup_penalty=8.0)
    path = save_untrained_model(tmp_path / "untrained.safetensors", reward=reward)
    day = geneva_day(4, 5)
    config = EnvConfig(max_drivers=5, reward=reward)
    torch.manual_seed(1)
    before = torch.rand(3)
    torch.manual_seed(1)
    in_memory = known_reward_policy(reward)
    assert torch.equal(torch.rand(3), before)  # torch's global random state untouched
    routes = []
    for policy in (PairwisePolicy.from_file(path), in_memory):
        env = DispatchEnv(preset=None, scenario=day, config=config)
        routes.append(run_day(policy, env, day).routes)
    assert routes[0] == routes[1]
    assert sum(len(route) for route in routes[0]) > 0
