"""guided-reopt model files: a round trip, and refusal of a foreign file."""

from __future__ import annotations

import pytest
import torch

from rldispatch.agents.guided_reopt.model_file import (
    GuidedReoptMetadata,
    GuidedReoptModelError,
    load_guided_model,
    save_guided_model,
)
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.kinds import agent_kind
from rldispatch.agents.pairwise.model_file import save_untrained_model


def trained_network() -> TermNetwork:
    torch.manual_seed(3)
    network = TermNetwork(hidden=8, terms=("prize", "value"), term_scale=4.0)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return network


def test_a_model_file_round_trips(tmp_path) -> None:
    network = trained_network()
    path = save_guided_model(
        tmp_path / "m.safetensors",
        network,
        GuidedReoptMetadata(hidden=8, terms=["prize", "value"], term_scale=4.0, horizon_min=90),
    )
    loaded = load_guided_model(path)
    assert loaded.metadata.version.startswith("guided-")
    for (name, ours), (_, theirs) in zip(
        network.state_dict().items(), loaded.network.state_dict().items(), strict=True
    ):
        assert torch.equal(ours, theirs), name
    rows = torch.rand(5, network.prize[0].in_features).numpy()
    ends = torch.rand(4, network.value[0].in_features).numpy()
    expected, found = network.evaluate(rows, ends), loaded.network.evaluate(rows, ends)
    for ours, theirs in zip(expected, found, strict=True):
        assert (ours == theirs).all() and ours.any()
    model = agent_kind("guided-reopt").load_model(path)
    assert model.kind == "guided-reopt" and model.policy.horizon_min == 90


def test_a_pairwise_model_file_is_refused_in_one_line(tmp_path) -> None:
    path = save_untrained_model(tmp_path / "pairwise.safetensors")
    with pytest.raises(GuidedReoptModelError, match="not a guided-reopt model file") as error:
        load_guided_model(path)
    assert "\n" not in str(error.value)


def test_a_file_of_other_features_is_refused(tmp_path) -> None:
    network = trained_network()
    metadata = GuidedReoptMetadata(hidden=8, feature_version=0)
    path = save_guided_model(tmp_path / "old.safetensors", network, metadata)
    with pytest.raises(GuidedReoptModelError, match="features version 0"):
        load_guided_model(path)


def test_a_take_term_round_trips(tmp_path) -> None:
    network = TermNetwork(hidden=8, terms=("take",))
    with torch.no_grad():
        network.take[-1].bias.fill_(0.5)
    path = save_guided_model(
        tmp_path / "take.safetensors", network, GuidedReoptMetadata(hidden=8, terms=["take"])
    )
    loaded = load_guided_model(path)
    assert loaded.network.terms == ("take",)
    assert loaded.network.take[-1].bias.item() == 0.5


def test_the_take_driver_round_trips_into_the_loaded_policy(tmp_path) -> None:
    network = TermNetwork(hidden=8, terms=("take",))
    old = save_guided_model(
        tmp_path / "old.safetensors", network, GuidedReoptMetadata(hidden=8, terms=["take"])
    )
    assert agent_kind("guided-reopt").load_model(old).policy.take_driver == "insertion"
    metadata = GuidedReoptMetadata(hidden=8, terms=["take"], take_driver="replan")
    path = save_guided_model(tmp_path / "replan.safetensors", network, metadata)
    assert load_guided_model(path).metadata.take_driver == "replan"
    assert agent_kind("guided-reopt").load_model(path).policy.take_driver == "replan"
    bad = save_guided_model(
        tmp_path / "bad.safetensors",
        network,
        GuidedReoptMetadata(hidden=8, terms=["take"], take_driver="nearest"),
    )
    with pytest.raises(GuidedReoptModelError, match="take_driver"):
        load_guided_model(bad)
