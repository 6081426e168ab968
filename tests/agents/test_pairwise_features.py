"""Pairwise features and network: any fleet size, no dependence on the order of drivers or
bookings, knock-on lateness that matches the simulator."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from rldispatch.agents.pairwise.features import (
    PAIR_FEATURES,
    FeatureBuilder,
    PairState,
)
from rldispatch.agents.pairwise.network import KnownReward, NumpyPairQ, PairBatch, PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.domain import Booking, Driver, Places, Scenario, TravelConfig
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import InsertionPolicy
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.knock_on import plan_knock_on
from rldispatch.sim.stop_kernels import DROPOFF

KNOWN = KnownReward(assignment=4.0, per_10km=-0.2, per_late=-1.0, wait=-0.2)


def play(env: DispatchEnv, steps: int) -> None:
    """Advance ``env`` by ``steps`` insertion decisions."""
    policy = InsertionPolicy()
    for _ in range(steps):
        _, _, terminated, _, _ = env.step(policy.act(env))
        assert not terminated


def permuted(state: PairState, rng: np.random.Generator) -> tuple[PairState, np.ndarray]:
    """The same state with drivers, bookings and pairs listed in a random order."""
    d, m, p = state.drivers.shape[0], state.bookings.shape[0], state.n_pairs
    driver_order, booking_order, pair_order = (
        rng.permutation(d),
        rng.permutation(m),
        rng.permutation(p),
    )
    new_driver = np.argsort(driver_order)  # old index -> new index
    new_booking = np.argsort(booking_order)
    shuffled = replace(
        state,
        drivers=state.drivers[driver_order],
        bookings=state.bookings[booking_order],
        pairs=state.pairs[pair_order],
        pair_driver=new_driver[state.pair_driver[pair_order]],
        pair_slot=new_booking[state.pair_slot[pair_order]],
        pair_order=state.pair_order[pair_order],
    )
    return shuffled, pair_order


@pytest.fixture(scope="module")
def day_env() -> DispatchEnv:
    """An early state of a 9-driver day: some plans made, several bookings open."""
    env = DispatchEnv(preset=None, scenario=geneva_day(11, 9), config=EnvConfig(max_drivers=9))
    env.reset()
    play(env, 5)
    return env


def test_network_scores_are_permutation_equivariant(day_env: DispatchEnv) -> None:
    torch.manual_seed(0)
    network = PairQNetwork(hidden=32, head_hidden=16)
    for layer in (network.pair_out, network.head[2]):  # make the scores depend on the state
        torch.nn.init.normal_(layer.weight)
    q = NumpyPairQ(network)
    state = FeatureBuilder(4).build(day_env)
    assert state.n_pairs > 5 and state.drivers.shape[0] == 9
    wait, pairs = q(state)
    rng = np.random.default_rng(0)
    for _ in range(5):
        shuffled, order = permuted(state, rng)
        shuffled_wait, shuffled_pairs = q(shuffled)
        assert shuffled_wait == pytest.approx(wait, abs=1e-5)
        np.testing.assert_allclose(shuffled_pairs, pairs[order], atol=1e-5)


def test_batched_torch_forward_matches_numpy_for_mixed_fleet_sizes() -> None:
    states = []
    for n_drivers in (5, 12):
        env = DispatchEnv(
            preset=None, scenario=geneva_day(3, n_drivers), config=EnvConfig(max_drivers=12)
        )
        env.reset()
        play(env, 3)
        states.append(FeatureBuilder(6).build(env))
    torch.manual_seed(1)
    network = PairQNetwork(hidden=16, head_hidden=8, known_reward=KNOWN)
    torch.nn.init.normal_(network.pair_out.weight)
    with torch.no_grad():
        wait, pairs = network(PairBatch.from_states(states))
    q = NumpyPairQ(network)
    offset = 0
    for index, state in enumerate(states):
        expected_wait, expected_pairs = q(state)
        assert wait[index].item() == pytest.approx(expected_wait, abs=1e-5)
        got = pairs[offset : offset + state.n_pairs].numpy()
        np.testing.assert_allclose(got, expected_pairs, atol=1e-5)
        offset += state.n_pairs
    assert offset == pairs.shape[0]


def test_compiled_forward_follows_the_networks_training_and_scores_no_pairs() -> None:
    env = DispatchEnv(preset=None, scenario=geneva_day(5, 8), config=EnvConfig(max_drivers=8))
    env.reset()
    play(env, 2)
    state = FeatureBuilder(4).build(env)
    assert state.n_pairs > 3
    torch.manual_seed(2)
    network = PairQNetwork(hidden=16, head_hidden=8, known_reward=KNOWN)
    for layer in (network.pair_out, network.head[2]):
        torch.nn.init.normal_(layer.weight)
    q = NumpyPairQ(network)  # made before the step: it reads the weights the step changes
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    wait, pairs = network(PairBatch.from_states([state]))
    (wait.sum() + pairs.sum()).backward()
    optimizer.step()
    with torch.no_grad():
        wait, pairs = network(PairBatch.from_states([state]))
    compiled_wait, compiled_pairs = q(state)
    assert compiled_wait == pytest.approx(wait.item(), rel=1e-5)
    np.testing.assert_allclose(compiled_pairs, pairs.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(compiled_pairs, NumpyPairQ(PairQNetwork(16, 8, KNOWN))(state)[1])

    nothing = replace(
        state,
        pairs=state.pairs[:0],
        pair_driver=state.pair_driver[:0],
        pair_slot=state.pair_slot[:0],
        pair_order=state.pair_order[:0],
    )
    with torch.no_grad():
        expected_wait, _ = network(PairBatch.from_states([nothing]))
    only_wait, no_pairs = q(nothing)
    assert no_pairs.shape == (0,)
    assert only_wait == pytest.approx(expected_wait.item(), rel=1e-5)


def shuffled_scenario(scenario, seed: int):
    rng = np.random.default_rng(seed)
    drivers = tuple(scenario.drivers[i] for i in rng.permutation(len(scenario.drivers)))
    bookings = tuple(scenario.bookings[i] for i in rng.permutation(len(scenario.bookings)))
    return replace(scenario, drivers=drivers, bookings=bookings)


@pytest.mark.parametrize("known_reward", [None, KNOWN], ids=["learned", "known-reward-ties"])
def test_chosen_pair_does_not_depend_on_the_order_of_drivers_and_bookings(known_reward) -> None:
    """The same day with drivers and bookings listed in another order: at every state the
    policy picks the same (driver id, booking id). With known rewards only, many pairs tie
    exactly (identical drivers at the depot): the ids break the ties, not the positions."""
    scenario = geneva_day(5, 8)
    other = shuffled_scenario(scenario, 1)
    torch.manual_seed(0)
    network = PairQNetwork(hidden=16, head_hidden=8, known_reward=known_reward)
    policy = PairwisePolicy(network, candidates_per_booking=4)
    config = EnvConfig(max_drivers=8)
    env, env_other = (
        DispatchEnv(preset=None, scenario=scenario, config=config),
        DispatchEnv(preset=None, scenario=other, config=config),
    )
    env.reset()
    env_other.reset()
    other_driver = {d.id: i for i, d in enumerate(other.drivers)}
    other_booking = {b.id: i for i, b in enumerate(other.bookings)}
    compared = 0
    for _ in range(60):
        chosen, chosen_other = policy.choose(env), policy.choose(env_other)
        assert (chosen is None) == (chosen_other is None)
        if chosen is None:
            action = action_other = 0
        else:
            (driver, slot), (driver_o, slot_o) = chosen, chosen_other
            ids = (scenario.drivers[driver].id, scenario.bookings[env.visible[slot]].id)
            ids_other = (other.drivers[driver_o].id, other.bookings[env_other.visible[slot_o]].id)
            assert ids == ids_other
            compared += 1
            action = 1 + driver * config.visible_slots + slot
            action_other = 1 + driver_o * config.visible_slots + slot_o
            assert other_driver[ids[0]] == driver_o
            assert other_booking[ids[1]] == env_other.visible[slot_o]
        _, _, done, _, _ = env.step(action)
        _, _, done_other, _, _ = env_other.step(action_other)
        assert done == done_other
        if done:
            break
    assert compared >= 30


@pytest.mark.parametrize("day", ["geneva", "geneva-mix"])
def test_knock_on_lateness_predicts_the_planned_late_pickups(day: str) -> None:
    """``late + knock_on_late`` of a pair is exactly how many more planned pickups are late
    once the simulator has made that assignment (plans of stops too)."""
    scenario = geneva_day(8, 6) if day == "geneva" else make_preset("geneva-mix", 8)
    config = EnvConfig(max_drivers=len(scenario.drivers))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset()
    builder = FeatureBuilder(6)
    late_columns = [PAIR_FEATURES.index("late"), PAIR_FEATURES.index("knock_on_late")]
    rng = np.random.default_rng(0)
    checked = knocked = 0
    for _ in range(150):
        state = builder.build(env)
        before = env.sim.planned_late_count()
        for pair in range(state.n_pairs):
            sim = copy.deepcopy(env.sim)
            sim.assign(int(state.pair_driver[pair]), int(env.visible[state.pair_slot[pair]]))
            predicted = state.pairs[pair, late_columns].sum()
            assert sim.planned_late_count() - before == predicted
            checked += 1
            knocked += state.pairs[pair, late_columns[1]] > 0
        # random pairs make plans with more knock-on lateness later in the day
        _, _, done, _, _ = env.step(state.action(int(rng.integers(state.n_pairs))))
        if done:
            break
    assert checked > 200 and knocked > 0


def test_the_cached_plans_count_and_pack_what_the_simulator_holds() -> None:
    """The builder's plan cache (refreshed only for changed plans) gives the simulator's count
    of late planned pickups and the same knock-on effects as plans packed afresh."""
    env = DispatchEnv(preset=None, scenario=geneva_day(8, 6), config=EnvConfig(max_drivers=6))
    env.reset()
    builder = FeatureBuilder(6)
    rng = np.random.default_rng(2)
    checked = late = 0
    for _ in range(200):
        state = builder.build(env)
        sim = env.sim
        assert builder.planned_late(sim) == sim.planned_late_count()
        late += sim.planned_late_count() > 0
        if state.n_pairs:
            booking = env.visible[state.pair_slot]
            pickup = env.table.pickup_min[state.pair_driver, state.pair_slot]
            position = env.table.position[state.pair_driver, state.pair_slot]
            cache = builder._plans(sim)
            fresh = plan_knock_on(sim, state.pair_driver, booking, pickup, position)
            cached = plan_knock_on(
                sim, state.pair_driver, booking, pickup, position, packed=cache.packed()
            )
            for expected, got in zip(fresh, cached, strict=True):
                np.testing.assert_array_equal(got, expected)
            checked += 1
        _, _, done, _, _ = env.step(state.action(int(rng.integers(-1, state.n_pairs))))
        if done:
            break
    assert checked > 50 and late > 0


@pytest.mark.parametrize("day", ["geneva", "geneva-mix"])
def test_known_reward_is_the_shaped_reward_of_an_assignment(day: str) -> None:
    scenario = geneva_day(4, 20) if day == "geneva" else make_preset("geneva-mix", 4)
    config = EnvConfig(max_drivers=len(scenario.drivers))
    env = DispatchEnv(preset=None, scenario=scenario, config=config)
    env.reset()
    reward = TrainingReward(env.config.reward, shaping_weight=1.0, scale=0.2)
    reward.start(env)
    network = PairQNetwork(hidden=8, head_hidden=8, known_reward=reward.known_reward())
    q = NumpyPairQ(network)  # output layers start at zero: Q = the known reward
    builder = FeatureBuilder(3)
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(120):
        state = builder.build(env)
        pair = int(rng.integers(state.n_pairs))
        _, predicted = q(state)
        now = env.sim.now_min
        _, env_reward, done, _, _ = env.step(state.action(pair))
        shaped = reward(env, True, env_reward)
        if done:
            break
        if env.sim.now_min == now:  # the clock did not move: the assignment's reward alone
            assert shaped == pytest.approx(float(predicted[pair]), abs=1e-4)
            checked += 1
    assert checked > (30 if day == "geneva" else 10)  # a geneva-mix day's clock moves more often


def test_candidates_are_the_cheapest_feasible_drivers_of_each_booking(day_env) -> None:
    state = FeatureBuilder(2).build(day_env)
    table = day_env.table
    for slot in range(day_env.visible.size):
        drivers = state.pair_driver[state.pair_slot == slot]
        feasible = np.flatnonzero(table.feasible[:, slot])
        assert drivers.size == min(2, feasible.size)
        assert table.feasible[drivers, slot].all()
        others = np.setdiff1d(feasible, drivers)
        if others.size and drivers.size:
            assert table.cost[drivers, slot].max() <= table.cost[others, slot].min()


def corridor_day() -> Scenario:
    """A minibus (2 seats, a wheelchair place) and two patients along one road to the same
    clinic; the second is released once the first is on board. One minute a km."""

    def booking(name: str, pickup, dropoff, earliest: float, release: float) -> Booking:
        return Booking(
            id=name,
            release_min=release,
            pickup=pickup,
            dropoff=dropoff,
            requested_min=earliest,
            window=(earliest, earliest + 30.0),
            service_min=1.0,
        )

    return Scenario(
        name="corridor",
        coords="xy",
        horizon_min=300.0,
        drivers=(Driver("bus", (0.0, 0.0), (0.0, 300.0), capacity=Places(seated=2, wheelchair=1)),),
        bookings=(
            booking("b1", (1.0, 0.0), (20.0, 0.0), 10.0, 0.0),
            booking("b2", (3.0, 0.0), (20.0, 0.5), 12.0, 10.5),
        ),
        travel=TravelConfig(speed_kmh=60.0, detour=1.0, start_hour=0.0),
        shared_rides=True,
    )


def test_a_booking_behind_one_on_board_shows_the_delay_it_imposes_and_the_places_left() -> None:
    day = corridor_day()
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=1))
    env.reset()
    builder = FeatureBuilder(6)
    first = builder.build(env)
    assert first.n_pairs == 1  # b1 alone, nobody on board: a ride of its own
    column = {name: i for i, name in enumerate(PAIR_FEATURES)}
    alone = first.pairs[0]
    assert alone[column["shared"]] == 0.0 and alone[column["ride_time_ratio"]] == 1.0
    assert alone[column["seated_left_div4"]] == pytest.approx(1 / 4)
    assert alone[column["onboard_delay_10min"]] == 0.0
    env.step(first.action(0))
    sim = env.sim
    assert sim.onboard_bookings[0] == [0] and env.visible.tolist() == [1]
    state = builder.build(env)
    assert state.n_pairs == 1
    pair = state.pairs[0]
    # b1 picked up at 10 (done at 11 at km 1) would reach the clinic at 30. Picking b2 up
    # on the way (km 3, window open at 12, arrival 13, done 14) brings b1 there at 31,
    # one minute late; b2 is dropped at 32.5 after b1 (the cheapest order), a ride of
    # 18.5 minutes against 17.007 direct, with both seats taken all the way.
    assert env.table.position[0, 0] == 0 and env.table.dropoff_position[0, 0] == 2
    assert pair[column["onboard_delay_10min"]] == pytest.approx(0.1)
    assert pair[column["planned_dropoff_delay_10min"]] == 0.0
    assert pair[column["ride_time_ratio"]] == pytest.approx(18.5 / np.hypot(17.0, 0.5))
    assert pair[column["seated_left_div4"]] == 0.0
    assert pair[column["wheelchair_left"]] == 1.0
    assert pair[column["stretcher_left"]] == 0.0
    assert pair[column["shared"]] == 1.0
    # What the simulator then does: b1's drop-off one minute later than planned.
    planned = sim.stop_start[0][-1]
    _, _, done, _, _ = env.step(state.action(0))
    while not done:
        _, _, done, _, _ = env.step(0)
    starts = {(stop.kind, stop.ref): stop.start_min for stop in sim.stop_log}
    assert starts[(DROPOFF, 0)] - planned == pytest.approx(1.0)
    assert starts[(DROPOFF, 1)] == pytest.approx(32.5)


def test_a_day_of_bookings_carried_one_at_a_time_reads_plain_shared_ride_features(
    day_env: DispatchEnv,
) -> None:
    state = FeatureBuilder(6).build(day_env)
    column = {name: i for i, name in enumerate(PAIR_FEATURES)}
    pairs = state.pairs
    assert state.n_pairs > 5
    np.testing.assert_array_equal(pairs[:, column["shared"]], 0.0)
    np.testing.assert_array_equal(pairs[:, column["ride_time_ratio"]], 1.0)
    np.testing.assert_array_equal(pairs[:, column["onboard_delay_10min"]], 0.0)
    np.testing.assert_array_equal(
        pairs[:, column["planned_dropoff_delay_10min"]],
        pairs[:, column["knock_on_total_delay_10min"]],
    )
    sim = day_env.sim
    booking = day_env.visible[state.pair_slot]
    seats = sim.capacity_by_kind[state.pair_driver, 0] - sim.load_by_kind[booking, 0]
    np.testing.assert_allclose(pairs[:, column["seated_left_div4"]], seats / 4.0)
