"""Mid-day states of played days: each day is played to its own drawn clock, a day that ends
before it is skipped, and a state's open bookings are the most pressing, at most the cap."""

from __future__ import annotations

from itertools import islice

import numpy as np

from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.scenarios.fleet_days import geneva_day
from rldispatch.service.decisions.replay import mid_day_states
from rldispatch.sim.simulator import OPEN

DAY_START_MIN = 360.0


def test_each_day_is_played_to_its_drawn_clock_and_a_day_that_ends_is_skipped() -> None:
    played: list[int] = []

    def day_of(index: int) -> Scenario:
        played.append(index)
        if index == 0:  # one booking, early: the day is over before 09:00
            return geneva_day(1, 2, bookings_per_driver=(0.5, 0.5))
        return geneva_day(index, 5)

    states = list(
        islice(mid_day_states(day_of, EnvConfig(max_drivers=5), DAY_START_MIN, rng(), 3), 2)
    )
    assert played == [0, 1, 2]  # the first day ended before its clock: one more was played
    draws = rng().uniform(180.0, 420.0, size=len(played))  # one draw a day, in order
    for index, (env, body) in zip((1, 2), states, strict=True):
        assert env.sim.now_min >= draws[index]
        assert body["minute_of_day"] == DAY_START_MIN + env.sim.now_min
        closes = [booking["window_closes_in_min"] for booking in body["open_bookings"]]
        assert closes == sorted(closes)
        assert len(closes) == min(3, int(np.count_nonzero(env.sim.status == OPEN)))
    assert max(len(body["open_bookings"]) for _, body in states) == 3  # the cap cut


def rng() -> np.random.Generator:
    return np.random.default_rng(7)
