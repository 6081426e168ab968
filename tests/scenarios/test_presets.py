"""The geneva-mix preset: geneva's day with places by kind, shared rides, ride limits, breaks."""

import numpy as np

from rldispatch.domain import scenario_from_dict, scenario_to_dict
from rldispatch.scenarios.presets import MixConfig, make_preset


def test_geneva_mix_keeps_genevas_bookings_drivers_and_shifts():
    mix, plain = make_preset("geneva-mix", 7), make_preset("geneva", 7)
    assert mix.shared_rides and not plain.shared_rides
    assert [(b.id, b.pickup, b.window) for b in mix.bookings] == [
        (b.id, b.pickup, b.window) for b in plain.bookings
    ]
    assert [(d.id, d.shift) for d in mix.drivers] == [(d.id, d.shift) for d in plain.drivers]
    assert make_preset("geneva", 7) == plain, "geneva itself is unchanged"


def test_geneva_mix_has_the_documented_mix():
    days = [make_preset("geneva-mix", seed) for seed in range(2_000_000, 2_000_010)]
    loads = [b.load for day in days for b in day.bookings]
    wheelchair = np.mean([load.wheelchair > 0 for load in loads])
    stretcher = np.mean([load.stretcher > 0 for load in loads])
    assert 0.07 < wheelchair < 0.13 and 0.005 < stretcher < 0.04
    for day in days:
        with_ramp = sum(d.capacity.wheelchair > 0 for d in day.drivers)
        assert 1 <= with_ramp <= 2 * len(day.drivers) // 10
        assert any(d.capacity.stretcher for d in day.drivers)
        assert any(4 <= d.capacity.seated <= 8 for d in day.drivers)
        for driver in day.drivers:
            long_shift = driver.shift[1] - driver.shift[0] > MixConfig().break_after_shift_min
            assert bool(driver.breaks) == long_shift
        assert all(b.max_ride_min == MixConfig().max_ride_min for b in day.bookings)
        assert scenario_from_dict(scenario_to_dict(day)) == day
