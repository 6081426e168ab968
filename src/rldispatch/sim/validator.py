"""The rules every played day keeps, checked from what the drivers did.

:func:`check_played_day` reads a finished day's record (for plans of stops, the log of every
stop a driver set off for; for plans of whole bookings, the served bookings) against the
scenario alone, not against the simulator's own bookkeeping: a booking carried in a vehicle
without a place of its kind (or beyond the vehicle's places), more bookings on board than the
day allows, a ride longer than the booking's maximum, a pickup outside its window, and a
break not taken within its window with nobody on board.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rldispatch.domain import PLACE_KINDS
from rldispatch.sim.simulator import SERVED, DaySimulator
from rldispatch.sim.stop_kernels import BREAK, PICKUP
from rldispatch.sim.stop_simulator import StopDaySimulator

TOLERANCE_MIN = 1e-6


@dataclass(frozen=True)
class DayCheck:
    """What a played day broke; every count is 0 on a day that keeps the rules."""

    wrong_place: int
    """Pickups after which the vehicle carried more of some kind of place than it has."""
    too_many_on_board: int
    """Pickups that put a second booking on board on a day without shared rides."""
    max_ride_violations: int
    missed_breaks: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_played_day(sim: DaySimulator) -> DayCheck:
    """Check a finished day (see the module docstring)."""
    if isinstance(sim, StopDaySimulator):
        return _check_stops(sim)
    scenario = sim.scenario
    problems = []
    wrong = 0
    for booking in np.flatnonzero(sim.status == SERVED).tolist():
        driver = int(sim.assigned_driver[booking])
        load, capacity = scenario.bookings[booking].load, scenario.drivers[driver].capacity
        if not load.fits_in(capacity):
            wrong += 1
            problems.append(f"booking {scenario.bookings[booking].id}: no place of its kind")
    return DayCheck(wrong, 0, 0, 0, tuple(problems))


def _check_stops(sim: StopDaySimulator) -> DayCheck:
    scenario = sim.scenario
    bookings, drivers = scenario.bookings, scenario.drivers
    problems: list[str] = []
    wrong = crowded = long_rides = 0
    taken = [[0] * len(d.breaks) for d in drivers]
    onboard = np.zeros((len(drivers), len(PLACE_KINDS)), dtype=np.int64)
    aboard: list[set[int]] = [set() for _ in drivers]
    picked_done: dict[int, float] = {}
    for stop in sim.stop_log:
        driver = drivers[stop.driver]
        if stop.kind == BREAK:
            pause = driver.breaks[stop.ref]
            if (
                aboard[stop.driver]
                or not pause.earliest_min - TOLERANCE_MIN
                <= stop.start_min
                <= pause.latest_min + TOLERANCE_MIN
            ):
                problems.append(f"driver {driver.id}: break {stop.ref} broken")
            else:
                taken[stop.driver][stop.ref] += 1
            continue
        booking = bookings[stop.ref]
        if stop.kind == PICKUP:
            low, high = booking.window
            if not low - TOLERANCE_MIN <= stop.start_min <= high + TOLERANCE_MIN:
                problems.append(f"booking {booking.id}: picked up outside its window")
            if aboard[stop.driver] and not scenario.shared_rides:
                crowded += 1
                problems.append(f"booking {booking.id}: shares a vehicle on a day without sharing")
            aboard[stop.driver].add(stop.ref)
            onboard[stop.driver] += booking.load.as_tuple()
            if np.any(onboard[stop.driver] > driver.capacity.as_tuple()):
                wrong += 1
                problems.append(f"booking {booking.id}: no place of its kind in {driver.id}")
            picked_done[stop.ref] = stop.start_min + booking.service_min
        else:
            aboard[stop.driver].discard(stop.ref)
            onboard[stop.driver] -= booking.load.as_tuple()
            ride = stop.start_min - picked_done.get(stop.ref, np.inf)
            if booking.max_ride_min is not None and ride > booking.max_ride_min + TOLERANCE_MIN:
                long_rides += 1
                problems.append(
                    f"booking {booking.id}: rode {ride:.2f} min, over {booking.max_ride_min:g}"
                )
    missed = sum(count != 1 for counts in taken for count in counts)
    if missed:
        problems.append(f"{missed} break(s) not taken")
    left = sum(len(a) for a in aboard)
    if left:
        problems.append(f"{left} booking(s) still on board at the end of the day")
    return DayCheck(wrong, crowded, long_rides, missed, tuple(problems))
