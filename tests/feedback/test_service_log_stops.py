"""The service's log of patient-transport days back into days: places by kind, ride limits,
drivers' breaks and shared rides come back as they were served."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rldispatch.scenarios.presets import make_preset
from tests.feedback.test_service_log import DAY_A, collect, serve_days


def test_collect_keeps_places_ride_limits_breaks_and_shared_rides(tmp_path: Path) -> None:
    full = make_preset("geneva-mix", 11)
    ordered = sorted(full.bookings, key=lambda b: (b.requested_min, b.id))
    wheelchair = [b for b in ordered if b.load.wheelchair][:3]
    kept = ordered[:25] + [b for b in wheelchair if b not in ordered[:25]]
    scenario = replace(
        full,
        name=f"served-{DAY_A}",
        bookings=tuple(replace(b, id=f"{DAY_A}-{b.id}") for b in kept),
        drivers=full.drivers[:6],
    )
    url = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    serve_days(url, tmp_path / "data", {DAY_A: scenario})
    (day,) = collect(url).days
    collected = day.scenario
    assert collected.shared_rides
    original = {b.id: b for b in scenario.bookings}
    assert any(b.load.wheelchair for b in collected.bookings)
    for booking in collected.bookings:
        assert booking.load == original[booking.id].load
        assert booking.max_ride_min == original[booking.id].max_ride_min
    drivers = {d.id: d for d in scenario.drivers}
    assert any(d.breaks for d in collected.drivers)
    for driver in collected.drivers:
        known = drivers[driver.id]
        assert driver.capacity == known.capacity
        assert len(driver.breaks) == len(known.breaks)
        for got, want in zip(driver.breaks, known.breaks, strict=True):
            assert (got.earliest_min, got.latest_min, got.duration_min) == pytest.approx(
                (want.earliest_min, want.latest_min, want.duration_min)
            )
