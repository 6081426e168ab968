"""An uncertain day: seeded draws, realised legs and service, no-shows; noise 0 is the
certain day to the last bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rldispatch.env import EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.sim.noise import Uncertainty, day_draws, realised_day
from rldispatch.sim.simulator import NO_SHOW, SERVED, DaySimulator
from rldispatch.training.evaluation import evaluate_policy

DAYS = [make_preset("geneva", HELD_OUT_SEEDS.start + k) for k in range(3)]


def played(uncertainty: Uncertainty | None, policy: str = "insertion") -> list[dict]:
    config = EnvConfig(max_drivers=10, uncertainty=uncertainty)
    return [day.as_dict() for day in evaluate_policy(make_baseline(policy), DAYS, config)]


def test_noise_zero_gives_the_certain_days_metrics_to_the_last_bit() -> None:
    assert played(Uncertainty()) == played(None)
    assert played(Uncertainty(seed=7), "matching") == played(None, "matching")


def test_an_uncertain_day_is_the_same_for_every_run_and_seed_and_differs_from_the_plan() -> None:
    noisy = Uncertainty(travel_cv=0.2, no_show_rate=0.05, service_delay_cv=0.2, seed=3)
    first, again = played(noisy), played(noisy)
    assert first == again
    assert first != played(None)
    assert first != played(replace(noisy, seed=4))
    assert sum(day["no_shows"] for day in first) > 0


def test_draws_have_the_asked_spread_and_each_kind_is_kept_when_another_changes() -> None:
    day = make_preset("geneva", 5)
    bookings = tuple(replace(b, id=f"b{k}") for k, b in enumerate(day.bookings * 40))
    many = replace(day, bookings=bookings, name="many")
    draws = day_draws(Uncertainty(travel_cv=0.2, no_show_rate=0.05, seed=1), many)
    assert draws.travel_factor.mean() == pytest.approx(1.0, abs=0.02)
    assert draws.travel_factor.std() / draws.travel_factor.mean() == pytest.approx(0.2, abs=0.02)
    assert draws.no_show.mean() == pytest.approx(0.05, abs=0.01)
    assert np.all(draws.service_factor == 1.0)
    other = day_draws(Uncertainty(travel_cv=0.2, no_show_rate=0.3, seed=1), many)
    assert np.array_equal(other.travel_factor, draws.travel_factor)


def test_a_no_show_ends_neither_served_nor_cancelled_and_its_ride_is_not_driven() -> None:
    day = DAYS[0]
    every_one_missing = Uncertainty(no_show_rate=1.0)
    config = EnvConfig(max_drivers=10, uncertainty=every_one_missing)
    (metrics,) = evaluate_policy(make_baseline("insertion"), [day], config)
    assert metrics.served == 0
    assert metrics.no_shows + metrics.cancelled == metrics.bookings
    assert metrics.no_shows > 0
    assert metrics.late_pickup_rate == 0.0


def test_a_slower_leg_makes_the_pickup_later_than_planned() -> None:
    day = DAYS[1]
    slow = Uncertainty(travel_cv=1.0, seed=2)
    sim = DaySimulator(day, uncertainty=slow)
    planned = DaySimulator(day)
    for world in (sim, planned):
        booking = int(world.visible_bookings()[0])
        world.best_insertions(np.array([booking]))
        world.assign(0, booking)
    planned_pickup = float(planned.plan_start[0][0])
    sim.finish()
    planned.finish()
    served = np.flatnonzero(sim.status == SERVED)
    assert served.size == 1 and not (sim.status == NO_SHOW).any()
    booking = int(served[0])
    factor = float(sim.draws.travel_factor[booking])
    realised = float(sim.pickup_min[booking])
    assert planned.pickup_min[booking] == planned_pickup
    if factor > 1.0:
        assert realised > planned_pickup
    else:
        assert realised == max(planned_pickup, realised)


def test_the_realised_day_drops_the_no_shows_and_stretches_service() -> None:
    day = DAYS[2]
    draws = day_draws(Uncertainty(no_show_rate=0.2, service_delay_cv=0.5, seed=9), day)
    realised, travel, shown = realised_day(day, draws)
    assert len(realised.bookings) == (~draws.no_show).sum() == shown.size == travel.size
    first = int(shown[0])
    assert realised.bookings[0].service_min == pytest.approx(
        day.bookings[first].service_min * draws.service_factor[first]
    )


def test_the_hindsight_plan_of_an_uncertain_day_serves_only_who_was_there() -> None:
    from rldispatch.training.evaluation import hindsight_results

    day = DAYS[0]
    noisy = Uncertainty(travel_cv=0.2, no_show_rate=0.1, seed=5)
    draws = day_draws(noisy, day)
    (result,) = hindsight_results([day], time_limit_s=2.0, uncertainty=noisy)
    assert result.feasible, result.notes
    missing = {day.bookings[k].id for k in np.flatnonzero(draws.no_show).tolist()}
    served = {stop.booking for route in result.routes for stop in route}
    assert missing and not (missing & served)
    assert result.metrics.no_shows == len(missing)
    assert result.metrics.bookings == len(day.bookings)
