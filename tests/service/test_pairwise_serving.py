"""Serving a pairwise model: any fleet size, the answer ``PairwisePolicy`` gives, its refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from rldispatch.agents.pairwise.model_file import LoadedPairwiseModel, load_pairwise_model
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.serving import LoadedPairwiseQModel, pairwise_booking_slots
from rldispatch.agents.serving import ModelLoadError, driver_slots
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import TOP_CANDIDATES, LiveRequest, RLDispatchManager
from rldispatch.service.decisions.snapshot import live_env
from rldispatch.service.models.loading import load_served_model
from tests.service.helpers import (
    ADMIN_TOKEN,
    ServerProcess,
    auth,
    live_request,
    make_pairwise_model_file,
    suggest_body,
)

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)


@pytest.fixture(scope="module")
def pairwise_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairwise_model_file(tmp_path_factory.mktemp("pairwise") / "pairwise.safetensors")


@pytest.fixture(scope="module")
def manager(pairwise_path: Path) -> RLDispatchManager:
    manager = RLDispatchManager(pairwise_path, state=RL_ON)
    assert manager.model is not None, manager.model_error
    return manager


def policy_answer(path: Path, manager: RLDispatchManager, request: LiveRequest):
    """What ``PairwisePolicy`` chooses for the request's booking, computed apart from the
    manager: an env with exactly the fleet's driver slots, reset with the live snapshot, the
    drivers' rides today and the clock's time of day."""
    loaded = load_pairwise_model(path)
    state = request.state.with_booking_first(request.booking)
    config = replace(
        manager.env_config,
        max_drivers=len(state.drivers),
        visible_slots=pairwise_booking_slots(
            manager.env_config.visible_slots, len(state.open_bookings)
        ),
    )
    env = live_env(state, manager.day, config).env
    slot = int(np.flatnonzero(env.visible == 0)[0])
    scores = PairwisePolicy(loaded).scores(env)
    return scores.wait_q, scores.for_slot(slot), env.sim.now_min


# --- any fleet size ----------------------------------------------------------------------------


@pytest.mark.parametrize(("n_drivers", "seed"), [(24, 0), (24, 3), (300, 1), (300, 4)])
def test_any_fleet_size_gets_the_pairwise_policys_driver(
    pairwise_path: Path, manager: RLDispatchManager, n_drivers: int, seed: int
) -> None:
    request = live_request(n_drivers=n_drivers, n_open=12, seed=seed, booking_id=f"any-{seed}")
    suggestion = manager.suggest(request)
    assert (suggestion.source, suggestion.reason, suggestion.arm) == ("rl", None, "rl")
    assert suggestion.model_version == load_pairwise_model(pairwise_path).metadata.version

    wait_q, pairs, now = policy_answer(pairwise_path, manager, request)
    drivers = request.state.drivers
    assert pairs and pairs[0].q_value >= wait_q
    assert suggestion.driver_id == drivers[pairs[0].driver].id
    expected = [(drivers[p.driver].id, p.q_value) for p in pairs[:TOP_CANDIDATES]]
    got = [(c.driver_id, c.q_value) for c in suggestion.candidates]
    assert [d for d, _ in got] == [d for d, _ in expected]
    assert [q for _, q in got] == pytest.approx([q for _, q in expected], abs=1e-5)
    first = suggestion.candidates[0]
    assert first.added_km == pytest.approx(pairs[0].added_km)
    assert first.pickup_in_min == pytest.approx(pairs[0].pickup_min - now)


def test_the_choice_is_the_networks_not_the_cheapest_insertion(
    pairwise_path: Path, manager: RLDispatchManager
) -> None:
    """Across requests the model sometimes picks a driver other than the cheapest one: the
    answer comes from the network's scores, not from the insertion costs alone."""
    differs = 0
    for seed in range(12):
        suggestion = manager.suggest(live_request(n_drivers=24, n_open=8, seed=seed))
        assert suggestion.source == "rl"
        costs = [c.insertion_cost for c in suggestion.candidates]
        differs += costs[0] != min(costs)
    assert differs > 0


@pytest.mark.parametrize(("n_drivers", "seed"), [(24, 2), (300, 5)])
def test_reversed_driver_order_gets_the_same_driver(
    manager: RLDispatchManager, n_drivers: int, seed: int
) -> None:
    request = live_request(n_drivers=n_drivers, n_open=10, seed=seed)
    reversed_request = replace(
        request, state=replace(request.state, drivers=request.state.drivers[::-1])
    )
    forward, backward = manager.suggest(request), manager.suggest(reversed_request)
    assert forward.source == backward.source == "rl"
    assert forward.driver_id == backward.driver_id
    assert [c.driver_id for c in forward.candidates] == [c.driver_id for c in backward.candidates]


def test_threads_answer_as_one_thread_does(pairwise_path: Path) -> None:
    requests = [
        live_request(booking_id=f"t{i}", n_drivers=(8, 24, 70)[i % 3], seed=i) for i in range(9)
    ]
    expected = [RLDispatchManager(pairwise_path, state=RL_ON).suggest(r) for r in requests]
    shared = RLDispatchManager(pairwise_path, state=RL_ON)
    answers: dict[int, list[str | None]] = {}

    def work(index: int) -> None:
        answers[index] = [shared.suggest(r).driver_id for r in requests]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(s.source == "rl" for s in expected)
    assert answers == {i: [s.driver_id for s in expected] for i in range(4)}
    assert shared.statistics().by_source == {"rl": 36}


# --- status ------------------------------------------------------------------------------------


def test_status_names_the_kind_and_no_driver_limit(
    pairwise_path: Path, manager: RLDispatchManager, model_path: Path
) -> None:
    status = manager.model_status()
    assert status == {
        "loaded": True,
        "path": str(pairwise_path),
        "version": load_pairwise_model(pairwise_path).metadata.version,
        "kind": "pairwise",
        "runtime": "numpy",
        "preset": "geneva",
        "max_drivers": None,
        "visible_slots": 20,
        "error": None,
    }
    flat = RLDispatchManager(model_path).model_status()
    assert (flat["kind"], flat["max_drivers"]) == ("dqn", 10)
    assert RLDispatchManager(None).model_status()["kind"] is None


def test_driver_slots_round_up_to_a_power_of_two() -> None:
    assert [driver_slots(n) for n in (1, 2, 3, 24, 32, 33, 300)] == [1, 2, 4, 32, 32, 64, 512]


# --- fallbacks ---------------------------------------------------------------------------------


def test_booking_beyond_the_lookahead_is_not_visible(manager: RLDispatchManager) -> None:
    request = live_request(n_drivers=24)
    later = replace(request.booking, window=(200.0, 240.0), requested_min=210.0)
    suggestion = manager.suggest(replace(request, booking=later))
    assert (suggestion.source, suggestion.reason) == ("fallback", "booking_not_visible")
    assert suggestion.driver_id is not None


def test_booking_nobody_can_serve_falls_back_without_a_driver(manager: RLDispatchManager) -> None:
    request = live_request(n_drivers=24)
    impossible = replace(request.booking, window=(0.0, 0.5), requested_min=0.0)
    suggestion = manager.suggest(replace(request, booking=impossible))
    assert (suggestion.source, suggestion.reason, suggestion.driver_id) == (
        "fallback",
        "no_feasible_driver",
        None,
    )


def test_model_that_waits_falls_back_with_its_candidates(tmp_path: Path) -> None:
    def wait_high(network: PairQNetwork) -> None:
        network.head[2].bias[1] = 1e3  # (value, wait advantage)

    path = make_pairwise_model_file(tmp_path / "waits.safetensors", tweak=wait_high)
    manager = RLDispatchManager(path, state=RL_ON)
    request = live_request(n_drivers=24)
    rl = manager._rl_answer(request)
    assert rl.reason == "rl_waited" and rl.driver is None and rl.candidates
    suggestion = manager.suggest(request)
    assert (suggestion.source, suggestion.reason) == ("fallback", "rl_waited")
    assert suggestion.driver_id is not None


def served_with(manager: RLDispatchManager, network: PairQNetwork) -> LoadedPairwiseQModel:
    """The manager's model with another network in it (a model broken in memory)."""
    model = manager.model
    assert isinstance(model, LoadedPairwiseQModel)
    return replace(model, model=LoadedPairwiseModel(network, model.model.metadata))


def test_model_answering_nan_falls_back_as_invalid_action(pairwise_path: Path) -> None:
    manager = RLDispatchManager(pairwise_path, state=RL_ON)
    network = load_pairwise_model(pairwise_path).network
    with torch.no_grad():
        network.pair_out.bias.fill_(float("nan"))
    manager.model = served_with(manager, network)
    suggestion = manager.suggest(live_request(n_drivers=24))
    assert (suggestion.source, suggestion.reason) == ("fallback", "invalid_action")
    assert suggestion.driver_id is not None


def test_model_raising_falls_back_and_counts_an_error(pairwise_path: Path) -> None:
    manager = RLDispatchManager(pairwise_path, state=RL_ON)
    network = load_pairwise_model(pairwise_path).network
    network.pair_hidden = torch.nn.Linear(network.hidden, network.hidden // 2)  # wrong width
    manager.model = served_with(manager, network)
    suggestion = manager.suggest(live_request(n_drivers=24))
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_error")
    stats = manager.statistics()
    assert (stats.errors, stats.fallbacks) == (1, {"model_error": 1})


# --- loading -----------------------------------------------------------------------------------


def test_pairwise_model_does_not_run_on_torch(pairwise_path: Path) -> None:
    runtime = "torch"
    with pytest.raises(ModelLoadError, match=r"^runtime: a pairwise model runs on numpy or onnx"):
        load_served_model(pairwise_path, runtime)
    manager = RLDispatchManager(pairwise_path, runtime=runtime, state=RL_ON)
    assert manager.model is None and manager.model_error.startswith("runtime:")
    assert manager.suggest(live_request()).reason == "model_load_failed"


def test_numpy_and_auto_runtimes_load_a_pairwise_model(pairwise_path: Path) -> None:
    for runtime in ("auto", "numpy"):
        served = load_served_model(pairwise_path, runtime)
        assert isinstance(served, LoadedPairwiseQModel)
        assert (served.kind, served.runtime, served.preset) == ("pairwise", "numpy", "geneva")
        assert served.env_config.max_drivers == 30  # recorded, not binding


def test_truncated_pairwise_file_falls_back(pairwise_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes(pairwise_path.read_bytes()[:-200])
    manager = RLDispatchManager(path, state=RL_ON)
    assert manager.model is None
    assert "truncated or corrupt" in manager.model_error and str(path) in manager.model_error
    suggestion = manager.suggest(live_request(n_drivers=24))
    assert (suggestion.source, suggestion.reason) == ("fallback", "model_load_failed")
    assert suggestion.driver_id is not None
    assert manager.model_status()["kind"] is None


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_pairwise_file_answering_nan_is_refused_by_the_probe(tmp_path: Path) -> None:
    # Finite weights (a file with NaN weights is not even read) that overflow in the forward pass.
    path = make_pairwise_model_file(
        tmp_path / "huge.safetensors", tweak=lambda net: net.head[2].weight.fill_(3e38)
    )
    manager = RLDispatchManager(path, state=RL_ON)
    assert manager.model is None and "not finite" in manager.model_error


def test_pairwise_file_over_the_size_limit_is_not_read(pairwise_path: Path) -> None:
    manager = RLDispatchManager(pairwise_path, max_model_bytes=1000)
    assert manager.model is None and "more than the limit" in manager.model_error


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairwise_server(
    tmp_path_factory: pytest.TempPathFactory, pairwise_path: Path
) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("pairwise-server"), model=pairwise_path) as server:
        yield server


def test_rldispatch_serve_answers_any_fleet_with_a_pairwise_model(
    pairwise_server: ServerProcess, pairwise_path: Path
) -> None:
    with httpx.Client(base_url=pairwise_server.url, timeout=60.0) as client:
        toggled = client.post(
            "/rl/toggle", json={"enabled": True, "ab_ratio": 1.0}, headers=auth(ADMIN_TOKEN)
        )
        assert toggled.status_code == 200
        for n_drivers in (24, 300):  # 300 drivers run in the thread pool
            body = suggest_body(booking_id=f"http-{n_drivers}", n_drivers=n_drivers, seed=1)
            response = client.post("/rl/suggest", json=body, headers=auth())
            assert response.status_code == 200, response.text
            answer = response.json()
            assert (answer["source"], answer["reason"]) == ("rl", None)
            assert answer["driver_id"] == answer["candidates"][0]["driver_id"]
            assert answer["model_version"].startswith("pairwise-")
        status = client.get("/rl/status", headers=auth())
        assert status.status_code == 200
        model = status.json()["model"]
        assert (model["loaded"], model["kind"], model["max_drivers"], model["runtime"]) == (
            True,
            "pairwise",
            None,
            "numpy",
        )
        assert model["path"] == str(pairwise_path)


def test_the_clock_and_the_rides_today_reach_the_model(
    pairwise_path: Path, manager: RLDispatchManager
) -> None:
    request = live_request(n_drivers=24, n_open=12, seed=5, booking_id="clock")
    drivers = request.state.drivers

    def at(minute_of_day: float, rides: list[int]) -> LiveRequest:
        fleet = tuple(replace(d, rides_today=r) for d, r in zip(drivers, rides, strict=True))
        state = replace(request.state, minute_of_day=minute_of_day, drivers=fleet)
        return replace(request, state=state)

    morning, evening = at(8 * 60.0, [0] * 24), at(19 * 60.0, list(range(24)))
    values = []
    for one in (morning, evening):
        suggestion = manager.suggest(one)
        assert suggestion.source == "rl"
        wait_q, pairs, _ = policy_answer(pairwise_path, manager, one)
        assert [c.q_value for c in suggestion.candidates] == pytest.approx(
            [p.q_value for p in pairs[:5]]
        )
        values.append(wait_q)
    assert values[0] != pytest.approx(values[1])


def test_a_booking_beyond_the_models_booking_slots_is_still_answered(
    pairwise_path: Path, manager: RLDispatchManager
) -> None:
    """30 other open bookings, all closing before the booking asked about: with the model's
    20 booking slots it would not be visible; the service gives the env a slot for each."""
    request = live_request(n_drivers=12, n_open=30, seed=6, booking_id="late-closing")
    closes_last = max(b.window[1] for b in request.state.open_bookings) + 30.0
    booking = replace(
        request.booking, requested_min=closes_last - 25.0, window=(closes_last - 35.0, closes_last)
    )
    request = replace(request, booking=booking)
    assert len(request.state.open_bookings) + 1 > manager.env_config.visible_slots
    suggestion = manager.suggest(request)
    assert (suggestion.source, suggestion.reason) == ("rl", None)
    wait_q, pairs, _ = policy_answer(pairwise_path, manager, request)
    assert suggestion.driver_id == request.state.drivers[pairs[0].driver].id
