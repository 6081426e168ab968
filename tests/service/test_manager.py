"""RLDispatchManager: who answers, why, and what it counts."""

from __future__ import annotations

import threading
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from rldispatch.agents.dqn.model_file import ModelMetadata, load_model, save_model
from rldispatch.agents.dqn.network import QNetwork
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.dqn.serving import LoadedQModel
from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.service.decisions.ab import ToggleState, assign_arm
from rldispatch.service.decisions.manager import FALLBACK_REASONS, RLDispatchManager
from rldispatch.service.decisions.snapshot import live_env
from tests.service.helpers import live_request, make_model_file

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)


def rl_manager(path: Path, **kwargs) -> RLDispatchManager:
    return RLDispatchManager(path, state=RL_ON, **kwargs)


def test_rl_answers_the_masked_greedy_driver_for_the_booking(model_path: Path) -> None:
    manager = rl_manager(model_path)
    request = live_request(n_drivers=8, n_open=6)
    suggestion = manager.suggest(request)
    assert (suggestion.source, suggestion.reason, suggestion.arm) == ("rl", None, "rl")
    assert suggestion.model_version == load_model(model_path).metadata.version

    state = request.state.with_booking_first(request.booking)
    live = live_env(state, manager.day, manager.env_config)
    q = DQNPolicy(load_model(model_path)).q_values(live.env.observation()[None])[0]
    mask = live.env.action_masks()
    slot = int(np.flatnonzero(live.env.visible == 0)[0])
    slots = manager.env_config.visible_slots
    allowed = [1 + i * slots + slot for i in range(len(state.drivers))]
    allowed = [a for a in allowed if mask[a]]
    best = max(allowed, key=lambda a: q[a])
    assert q[best] > q[0]
    assert suggestion.driver_id == state.drivers[(best - 1) // slots].id
    values = [c.q_value for c in suggestion.candidates]
    assert values == sorted(values, reverse=True)
    assert suggestion.candidates[0].driver_id == suggestion.driver_id


def test_fallback_is_the_insertion_policy_on_the_booking_alone() -> None:
    manager = RLDispatchManager(None, state=RL_ON)
    request = live_request(n_drivers=7, n_open=4, seed=2)
    suggestion = manager.suggest(request)
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_missing")

    alone = replace(request.state, open_bookings=(request.booking,))
    env = live_env(alone, manager.day, EnvConfig(max_drivers=7)).env
    action = make_baseline("insertion").act(env)
    assert suggestion.driver_id == alone.drivers[(action - 1) // 20].id
    costs = [c.insertion_cost for c in suggestion.candidates]
    assert costs == sorted(costs)
    assert suggestion.candidates[0].driver_id == suggestion.driver_id


def test_fallback_policy_is_configurable() -> None:
    request = live_request(n_drivers=7, seed=2)
    nearest = RLDispatchManager(None, fallback_policy="nearest").suggest(request)
    alone = replace(request.state, open_bookings=(request.booking,))
    env = live_env(alone, RLDispatchManager(None).day, EnvConfig(max_drivers=7)).env
    action = make_baseline("nearest").act(env)
    assert nearest.driver_id == alone.drivers[(action - 1) // 20].id
    with pytest.raises(ValueError, match="fallback_policy"):
        RLDispatchManager(None, fallback_policy="psychic")


def test_rl_off_by_default(model_path: Path) -> None:
    suggestion = RLDispatchManager(model_path).suggest(live_request())
    assert (suggestion.source, suggestion.reason, suggestion.arm) == (
        "fallback",
        "rl_disabled",
        None,
    )


def test_heuristic_arm_of_the_ab_split_gets_the_fallback(model_path: Path) -> None:
    manager = RLDispatchManager(model_path, state=ToggleState(enabled=True, ab_ratio=0.5))
    by_arm = {}
    for index in range(40):
        booking_id = f"booking-{index}"
        suggestion = manager.suggest(live_request(booking_id=booking_id))
        assert suggestion.arm == assign_arm(booking_id, 0.5)
        by_arm.setdefault(suggestion.arm, set()).add((suggestion.source, suggestion.reason))
    assert by_arm["heuristic"] == {("fallback", "ab_heuristic_arm")}
    assert by_arm["rl"] == {("rl", None)}


@pytest.mark.parametrize(
    "content",
    [b"", b"not a model at all", b'\x10\x00\x00\x00\x00\x00\x00\x00{"__metadata__"'],
    ids=["empty", "garbage", "truncated"],
)
def test_broken_model_file_falls_back_with_the_reason(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    manager = rl_manager(path)
    assert manager.model is None and manager.model_error
    suggestion = manager.suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_load_failed")
    assert suggestion.driver_id is not None
    assert manager.statistics().fallbacks == {"model_load_failed": 1}


def test_missing_model_file_falls_back(tmp_path: Path) -> None:
    manager = rl_manager(tmp_path / "nowhere.safetensors")
    assert "no file" in manager.model_error
    assert manager.suggest(live_request()).reason == "model_load_failed"


def test_model_whose_shapes_disagree_with_its_env_config_is_refused(tmp_path: Path) -> None:
    config = EnvConfig()
    network = QNetwork(42, config.n_actions, (8,))
    metadata = ModelMetadata(
        observation_size=42,
        n_actions=config.n_actions,
        env_config=asdict(config),
        preset="geneva",
        hyperparameters={"hidden_sizes": [8]},
    )
    path = save_model(tmp_path / "odd.safetensors", network, metadata)
    manager = rl_manager(path)
    assert manager.model is None
    assert "observation_size" in manager.model_error
    assert manager.suggest(live_request()).reason == "model_load_failed"


def test_model_file_over_the_size_limit_is_not_read(model_path: Path) -> None:
    manager = rl_manager(model_path, max_model_bytes=1000)
    assert manager.model is None and "more than the limit" in manager.model_error


def test_fleet_larger_than_the_model_falls_back(model_path: Path) -> None:
    suggestion = rl_manager(model_path).suggest(live_request(n_drivers=11))
    assert (suggestion.source, suggestion.reason) == ("fallback", "fleet_too_large")
    assert suggestion.driver_id is not None


def test_booking_beyond_the_lookahead_falls_back(model_path: Path) -> None:
    request = live_request()
    later = replace(request.booking, window=(200.0, 240.0), requested_min=210.0)
    suggestion = rl_manager(model_path).suggest(replace(request, booking=later))
    assert suggestion.reason == "booking_not_visible"
    assert suggestion.driver_id is not None  # the heuristic plans ahead


def test_no_feasible_driver_falls_back_without_a_driver(model_path: Path) -> None:
    request = live_request()
    impossible = replace(request.booking, window=(0.0, 0.5), requested_min=0.0)
    suggestion = rl_manager(model_path).suggest(replace(request, booking=impossible))
    assert (suggestion.source, suggestion.reason, suggestion.driver_id) == (
        "fallback",
        "no_feasible_driver",
        None,
    )
    assert suggestion.candidates == ()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_model_whose_probe_answers_non_finite_values_is_refused_at_load(tmp_path: Path) -> None:
    # Finite weights (a file with NaN weights is not even read) that overflow on any state.

    def overflowing(net) -> None:
        net.body[-2].weight.zero_()
        net.body[-2].bias.fill_(1.0)  # every last hidden unit is 1 on any state
        net.head.weight.fill_(3e38)  # so every Q-value sums past float32's largest

    path = make_model_file(tmp_path / "huge.safetensors", tweak=overflowing)
    manager = rl_manager(path)
    assert manager.model is None and "not finite" in manager.model_error
    assert manager.suggest(live_request()).reason == "model_load_failed"


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_model_answering_nan_falls_back_as_invalid_action(tmp_path: Path) -> None:
    # Finite on the zero probe state, overflowing to NaN on any live state.
    path = make_model_file(
        tmp_path / "overflows.safetensors", tweak=lambda net: net.body[0].weight.fill_(3e38)
    )
    manager = rl_manager(path)
    assert manager.model is not None, manager.model_error
    suggestion = manager.suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "invalid_action")
    assert suggestion.driver_id is not None


def test_model_that_waits_while_a_driver_is_free_falls_back(tmp_path: Path) -> None:
    path = make_model_file(
        tmp_path / "waits.safetensors", tweak=lambda net: net.head.bias.__setitem__(0, 1e6)
    )
    suggestion = rl_manager(path).suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "rl_waited")
    assert suggestion.driver_id is not None


class _FailingQFunction:
    """A model runtime that breaks at inference (what a crashed runtime looks like)."""

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        raise RuntimeError("runtime crashed")


def test_model_raising_falls_back_and_counts_an_error(model_path: Path) -> None:
    manager = rl_manager(model_path)
    manager.model = LoadedQModel(
        _FailingQFunction(), manager.model.info, manager.model.path, "numpy"
    )
    suggestion = manager.suggest(live_request())
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_error")
    stats = manager.statistics()
    assert (stats.errors, stats.fallbacks) == (1, {"model_error": 1})


def test_shadow_mode_serves_the_heuristic_and_reports_the_rl_answer(model_path: Path) -> None:
    request = live_request(n_drivers=8)
    rl = rl_manager(model_path).suggest(request)
    heuristic = RLDispatchManager(model_path).suggest(request)
    shadow = RLDispatchManager(
        model_path, state=ToggleState(enabled=True, ab_ratio=1.0, shadow=True)
    ).suggest(request)
    assert (shadow.source, shadow.reason, shadow.arm) == ("fallback", "shadow_mode", None)
    assert shadow.driver_id == heuristic.driver_id
    assert shadow.shadow_driver_id == rl.driver_id
    assert shadow.shadow_reason is None


def test_statistics_count_every_suggestion_across_threads(model_path: Path) -> None:
    manager = RLDispatchManager(model_path, state=ToggleState(enabled=True, ab_ratio=0.5))
    requests = [live_request(booking_id=f"t{i}", seed=i % 5) for i in range(40)]

    def work() -> None:
        for request in requests:
            manager.suggest(request)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = manager.statistics()
    assert stats.suggestions == 240
    assert sum(stats.by_source.values()) == 240
    assert stats.by_source.get("rl", 0) + sum(stats.fallbacks.values()) == 240
    assert set(stats.fallbacks) <= set(FALLBACK_REASONS)
    assert stats.latency_samples == 240
    assert 0 < stats.latency_ms["p50"] <= stats.latency_ms["p95"] <= stats.latency_ms["p99"]


def test_every_runtime_gives_the_same_answer(model_path: Path) -> None:
    requests = [live_request(booking_id=f"r{i}", seed=i, n_drivers=9, n_open=8) for i in range(8)]
    answers = {
        runtime: [rl_manager(model_path, runtime=runtime).suggest(r).driver_id for r in requests]
        for runtime in ("numpy", "torch", "onnx")
    }
    assert answers["numpy"] == answers["torch"] == answers["onnx"]
