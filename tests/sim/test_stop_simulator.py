"""Plans of stops: shared rides within places by kind, maximum ride times and breaks."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rldispatch.domain import Booking, Break, Driver, Places, Scenario
from rldispatch.env import DispatchEnv
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.cordeau import read_cordeau
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.simulator import SERVED, DaySimulator
from rldispatch.sim.stop_kernels import BREAK, DROPOFF, PICKUP
from rldispatch.sim.stop_simulator import LoggedStop, StopDaySimulator, day_simulator
from rldispatch.sim.validator import check_played_day
from rldispatch.training.evaluation import run_day


def booking(name, pickup, dropoff, earliest, **extra):
    return Booking(
        id=name,
        release_min=0.0,
        pickup=pickup,
        dropoff=dropoff,
        requested_min=earliest,
        window=(earliest, earliest + 30.0),
        service_min=1.0,
        **extra,
    )


def corridor_day(shared=True, capacity=2, max_ride_min=None, breaks=()):
    """Two patients along the same road to the same clinic, one vehicle at the start."""
    return Scenario(
        name="corridor",
        coords="xy",
        horizon_min=300.0,
        drivers=(Driver("bus", (0.0, 0.0), (0.0, 300.0), capacity=capacity, breaks=breaks),),
        bookings=(
            booking("b1", (1.0, 0.0), (20.0, 0.0), 10.0, max_ride_min=max_ride_min),
            booking("b2", (3.0, 0.0), (20.0, 0.5), 12.0, max_ride_min=max_ride_min),
        ),
        travel=dataclasses.replace(
            Scenario.__dataclass_fields__["travel"].default_factory(),
            speed_kmh=60.0,
            detour=1.0,
            start_hour=0.0,
        ),
        shared_rides=shared,
    )


def play(day, policy="insertion"):
    env = DispatchEnv(preset=None, scenario=day)
    played = run_day(make_baseline(policy), env, day)
    return env.sim, played


def test_day_simulator_picks_plans_of_stops_only_where_needed():
    assert type(day_simulator(corridor_day(shared=False))) is DaySimulator
    assert isinstance(day_simulator(corridor_day(shared=True)), StopDaySimulator)
    assert isinstance(
        day_simulator(corridor_day(shared=False, max_ride_min=60.0)), StopDaySimulator
    )


def test_two_patients_share_the_minibus():
    sim, played = play(corridor_day())
    assert played.served == 2
    kinds = [(stop.kind, stop.ref) for stop in sim.stop_log]
    assert kinds == [(PICKUP, 0), (PICKUP, 1), (DROPOFF, 0), (DROPOFF, 1)]
    assert played.occupancy > 1.5 and played.shared_ride_share == 1.0
    assert played.ride_time_ratio > 1.0
    assert check_played_day(sim).ok


def test_without_shared_rides_one_booking_is_on_board_at_a_time():
    sim, played = play(corridor_day(shared=False, max_ride_min=500.0))
    assert isinstance(sim, StopDaySimulator)
    assert played.shared_ride_share == 0.0 and played.occupancy == pytest.approx(1.0)
    assert all(max(sum(s.onboard), 0) <= 1 for s in sim.stop_log)
    assert check_played_day(sim).ok


def test_a_short_ride_limit_keeps_the_patient_from_the_detour():
    direct = 19.0  # b1's ride, one minute a km; sharing adds b2's pickup (1 min) to it
    sim, played = play(corridor_day(max_ride_min=direct + 0.5))
    # Sharing was the only way to serve both in their windows.
    assert played.served == 1 and played.shared_ride_share == 0.0
    check = check_played_day(sim)
    assert check.ok and check.max_ride_violations == 0


def test_a_wheelchair_user_goes_only_to_a_vehicle_with_a_wheelchair_place():
    day = corridor_day()
    wheelchair = dataclasses.replace(day.bookings[0], load=Places(wheelchair=1))
    ramp = Driver("ramp", (5.0, 5.0), (0.0, 300.0), capacity=Places(seated=2, wheelchair=1))
    day = dataclasses.replace(
        day, bookings=(wheelchair, day.bookings[1]), drivers=(*day.drivers, ramp)
    )
    sim = day_simulator(day)
    table = sim.best_insertions(np.array([0, 1]))
    assert not table.feasible[0, 0] and table.feasible[1, 0]
    sim, played = play(day)
    assert sim.assigned_driver[0] == 1 and check_played_day(sim).wrong_place == 0


def test_a_break_is_taken_in_its_window_with_nobody_on_board():
    day = corridor_day(breaks=(Break(15.0, 40.0, 30.0),))
    sim, played = play(day)
    breaks = [s for s in sim.stop_log if s.kind == BREAK]
    assert len(breaks) == 1 and 15.0 <= breaks[0].start_min <= 40.0
    assert played.breaks_taken == 1 and played.breaks_missed == 0
    assert check_played_day(sim).ok


def test_the_validator_counts_what_a_day_broke():
    sim, _ = play(corridor_day(breaks=(Break(100.0, 120.0, 10.0),)))
    assert check_played_day(sim).ok
    log = [s for s in sim.stop_log if s.kind != BREAK]
    small = dataclasses.replace(sim.scenario.drivers[0], capacity=1)
    sim.scenario = dataclasses.replace(sim.scenario, drivers=(small,))
    sim.stop_log = log
    check = check_played_day(sim)
    assert check.wrong_place == 1 and check.missed_breaks == 1 and not check.ok
    late = dataclasses.replace(log[-1], start_min=log[-1].start_min + 500.0)
    bookings = tuple(dataclasses.replace(b, max_ride_min=60.0) for b in sim.scenario.bookings)
    sim.scenario = dataclasses.replace(sim.scenario, bookings=bookings)
    sim.stop_log = [*log[:-1], late]
    assert check_played_day(sim).max_ride_violations == 1
    assert isinstance(late, LoggedStop)


def test_a_copy_of_a_day_of_stops_plays_on_alone():
    sim = day_simulator(corridor_day())
    sim.assign(0, 0)
    copy = sim.copy()
    copy.assign(0, 1)
    copy.finish()
    assert sim.stops[0] == [(PICKUP, 0), (DROPOFF, 0)]
    assert (copy.status == SERVED).sum() == 2 and (sim.status == SERVED).sum() == 0


CORDEAU_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "cordeau"


@pytest.mark.skipif(not CORDEAU_DIR.is_dir(), reason=f"no Cordeau instances at {CORDEAU_DIR}")
@pytest.mark.parametrize("name", ["a2-16", "a4-40", "a8-96"])
def test_a_cordeau_instance_shares_rides_within_its_ride_times(name):
    instance = read_cordeau(CORDEAU_DIR / f"{name}.txt")
    sim, played = play(instance.to_scenario())
    check = check_played_day(sim)
    assert check.ok, check.problems
    assert played.occupancy > 1.0
    rides = [
        stop.start_min - sim.picked_done_min[stop.ref] for stop in sim.stop_log if stop.kind == 1
    ]
    assert max(rides) <= instance.max_ride_time + 1e-6


@st.composite
def days_of_stops(draw):
    n_drivers = draw(st.integers(1, 4))
    n_bookings = draw(st.integers(0, 18))
    coord = st.floats(-15.0, 15.0, allow_nan=False)
    drivers = []
    for i in range(n_drivers):
        start = draw(st.floats(0.0, 100.0))
        length = draw(st.floats(120.0, 400.0))
        breaks = ()
        if draw(st.booleans()):
            earliest = start + draw(st.floats(0.0, length - 60.0))
            breaks = (Break(earliest, earliest + draw(st.floats(0.0, 30.0)), 15.0),)
        drivers.append(
            Driver(
                id=f"d{i}",
                start=(draw(coord), draw(coord)),
                shift=(start, start + length),
                capacity=Places(
                    seated=draw(st.integers(1, 6)),
                    wheelchair=draw(st.integers(0, 1)),
                    stretcher=draw(st.integers(0, 1)),
                ),
                breaks=breaks,
            )
        )
    bookings = []
    for i in range(n_bookings):
        release = draw(st.floats(0.0, 250.0))
        earliest = release + draw(st.floats(0.0, 90.0))
        latest = earliest + draw(st.floats(0.0, 45.0))
        kind = draw(st.sampled_from(["seated", "seated", "wheelchair", "stretcher"]))
        bookings.append(
            Booking(
                id=f"b{i}",
                release_min=release,
                pickup=(draw(coord), draw(coord)),
                dropoff=(draw(coord), draw(coord)),
                requested_min=earliest,
                window=(earliest, latest),
                service_min=draw(st.floats(0.0, 4.0)),
                priority=draw(st.integers(0, 1)),
                load=Places(**{kind: 1}) if kind != "seated" else draw(st.integers(1, 2)),
                max_ride_min=draw(st.one_of(st.none(), st.floats(15.0, 90.0))),
            )
        )
    return Scenario(
        name="random-stops",
        coords="xy",
        horizon_min=600.0,
        drivers=tuple(drivers),
        bookings=tuple(bookings),
        shared_rides=draw(st.booleans()),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(day=days_of_stops(), policy=st.sampled_from(["insertion", "matching", "nearest", "random"]))
def test_every_played_day_keeps_places_ride_limits_and_breaks(day, policy):
    sim, played = play(day, policy)
    check = check_played_day(sim)
    assert check.ok, check.problems
    assert played.breaks_missed == 0
    assert played.served + played.cancelled == len(day.bookings)
    assert played.shared_ride_share == 0.0 or day.shared_rides


def test_on_a_one_at_a_time_day_stops_give_the_insertions_of_booking_plans():
    """The same decisions through both simulators: at every one, the same feasible pairs,
    costs, pickup times and km (to rounding), and the same served day."""
    day = make_preset("geneva", 0)
    day = dataclasses.replace(
        day,
        drivers=tuple(dataclasses.replace(d, capacity=1) for d in day.drivers),
        bookings=tuple(dataclasses.replace(b, load=1) for b in day.bookings),
    )
    plans, stops = DaySimulator(day), StopDaySimulator(day)
    decisions = 0
    while not plans.done:
        visible = plans.visible_bookings()
        assert np.array_equal(visible, stops.visible_bookings())
        if visible.size:
            a, b = plans.best_insertions(visible), stops.best_insertions(visible)
            assert np.array_equal(a.feasible, b.feasible)
            for name in ("cost", "pickup_min", "added_km"):
                np.testing.assert_allclose(
                    getattr(a, name)[a.feasible], getattr(b, name)[b.feasible], rtol=1e-9
                )
            if a.feasible.any():
                driver, column = np.argwhere(a.feasible)[np.argmin(a.cost[a.feasible])]
                plans.assign(int(driver), int(visible[column]))
                stops.assign(int(driver), int(visible[column]))
                decisions += 1
                continue
        plans.advance()
        stops.advance()
    stops.finish()
    assert decisions > 100
    assert np.array_equal(plans.status, stops.status)
    np.testing.assert_allclose(plans.pickup_min, stops.pickup_min, rtol=1e-9)
    assert plans.distance_km == pytest.approx(stops.distance_km, rel=1e-9)


def test_an_uncertain_day_of_stops_is_refused_in_one_line():
    from rldispatch.domain import ScenarioError
    from rldispatch.sim.noise import Uncertainty

    with pytest.raises(ScenarioError, match="corridor: an uncertain day"):
        day_simulator(corridor_day(), uncertainty=Uncertainty(travel_cv=0.2))
    assert isinstance(day_simulator(corridor_day(), uncertainty=Uncertainty()), StopDaySimulator)


def test_insertion_effects_agree_with_the_simulators_knock_on_and_its_schedule():
    """On a geneva-mix day, for every feasible insertion of the visible bookings: the planned
    pickups made late and the lateness added are the simulator's own (insertion_knock_on),
    and after the assignment the ride time and the drop-off delays are what was predicted."""
    day = make_preset("geneva-mix", 3)
    env = DispatchEnv(preset=None, scenario=day)
    env.reset()
    policy = make_baseline("insertion")
    rng = np.random.default_rng(0)
    checked = shared = delayed = 0
    for _ in range(60):
        sim, table = env.sim, env.table
        drivers, slots = np.nonzero(table.feasible)
        if drivers.size:
            pick = rng.choice(drivers.size, size=min(8, drivers.size), replace=False)
            drivers, slots = drivers[pick], slots[pick]
            bookings = env.visible[slots]
            effects = sim.insertion_effects(
                drivers,
                bookings,
                table.position[drivers, slots],
                table.dropoff_position[drivers, slots],
            )
            for row, d, b, s in zip(effects, drivers, bookings, slots, strict=True):
                made_late, late_added = sim.insertion_knock_on(
                    int(d), int(b), int(table.position[d, s]), int(table.dropoff_position[d, s])
                )
                assert row[0] == made_late and row[3] == pytest.approx(late_added, abs=1e-6)
                planned = dict(zip(sim.stops[d], sim.stop_start[d].tolist(), strict=True))
                copied = sim.copy()
                copied.assign(int(d), int(b))
                after = dict(zip(copied.stops[d], copied.stop_start[d].tolist(), strict=True))
                onboard = sum(
                    max(after[(DROPOFF, r)] - at, 0.0)
                    for (kind, r), at in planned.items()
                    if kind == DROPOFF and r in sim.onboard_bookings[d]
                )
                ride = after[(DROPOFF, b)] - after[(PICKUP, b)] - sim.service_min[b]
                assert row[4] == pytest.approx(onboard, abs=1e-6)
                assert row[6] == pytest.approx(ride / sim.ride_min[b], abs=1e-6)
                assert row[7:10].min() >= 0
                checked += 1
                shared += row[10] > 0
                delayed += row[4] > 0
        _, _, done, _, _ = env.step(policy.act(env))
        if done:
            break
    assert checked > 100 and shared > 0 and delayed > 0
