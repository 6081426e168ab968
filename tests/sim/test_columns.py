"""A day as arrays: the same simulator from columns as from the scenario, and every driver
scheduled at once as one by one."""

import numpy as np
import pytest

from rldispatch.domain import Booking, Places
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.columns import BookingColumns, ColumnBookings, ColumnDrivers, DayColumns
from rldispatch.sim.simulator import DaySimulator


def test_column_sequences_give_back_the_scenario_s_bookings_and_drivers() -> None:
    day = make_preset("geneva", 3)
    columns = DayColumns.of(day)
    bookings = ColumnBookings(columns.bookings)
    drivers = ColumnDrivers(columns.drivers)
    assert len(bookings) == len(day.bookings)
    assert list(bookings) == list(day.bookings)
    assert bookings[-1] == day.bookings[-1]
    assert bookings[2:5] == day.bookings[2:5]
    assert list(drivers) == list(day.drivers)
    with pytest.raises(IndexError):
        bookings[len(day.bookings)]


def test_columns_take_join_and_shift_like_the_bookings_they_hold() -> None:
    one = Booking("a", 0.0, (46.2, 6.1), (46.3, 6.2), 10.0, (5.0, 30.0), 3.0, 1, 2)
    two = Booking("b", 0.0, (46.1, 6.0), (46.0, 6.3), 20.0, (15.0, 40.0), load=Places(0, 1, 0))
    columns = BookingColumns.join([BookingColumns.of([one]), BookingColumns.of([two])])
    assert columns.ids == ("a", "b")
    picked = columns.take(np.array([1, 0]))
    assert [picked.booking(k) for k in range(2)] == [two, one]
    later = columns.shifted(100.0, release_min=7.0).booking(0)
    assert later.window == (105.0, 130.0)
    assert later.requested_min == 110.0
    assert later.release_min == 7.0


def test_a_simulator_from_columns_is_the_simulator_of_the_scenario() -> None:
    day = make_preset("geneva", 5)
    plain = DaySimulator(day)
    from_columns = DaySimulator(day, columns=DayColumns.of(day), centre=plain.frame_centre)
    for name, value in vars(plain).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, getattr(from_columns, name), equal_nan=True), name


def test_places_a_vehicle_lacks_are_read_kind_by_kind() -> None:
    day = make_preset("geneva-mix", 0)
    sim = DaySimulator(day)
    expected = np.all(sim.load_by_kind[None, :, :] <= sim.capacity_by_kind[:, None, :], axis=2)
    assert not expected.all()
    assert np.array_equal(sim.fits, expected)


def test_scheduling_every_driver_at_once_is_scheduling_them_one_by_one() -> None:
    day = make_preset("geneva", 2)
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=len(day.drivers)))
    env.reset(options={"scenario": day})
    policy = make_baseline("insertion")
    while env.sim.now_min < 240.0:
        env.step(policy.act(env))
    assert sum(map(len, env.sim.plans)) > 0
    one_by_one, at_once = env.sim.copy(), env.sim.copy()
    for driver in range(one_by_one.n_drivers):
        one_by_one._schedule(driver)
    at_once._schedule_all()
    for name in ("plan_start", "plan_complete", "plan_leg_min"):
        for mine, theirs in zip(getattr(at_once, name), getattr(one_by_one, name), strict=True):
            assert np.array_equal(mine, theirs), name
    for name in ("plan_end_min", "plan_end_booking", "next_departure_min", "_best_valid"):
        assert np.array_equal(getattr(at_once, name), getattr(one_by_one, name)), name
    width = min(at_once._pos_valid.shape[1], one_by_one._pos_valid.shape[1])
    valid = one_by_one._pos_valid[:, :width]
    assert np.array_equal(at_once._pos_valid[:, :width], valid)
    for mine, theirs in zip(at_once._plan_state(), one_by_one._plan_state(), strict=True):
        assert np.array_equal(mine[:, :width][valid], theirs[:, :width][valid])
