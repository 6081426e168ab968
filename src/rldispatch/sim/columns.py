"""A day's bookings and drivers as arrays: what the simulator reads of a scenario.

:meth:`DayColumns.of` reads a :class:`~rldispatch.domain.Scenario` once. A live state (the
service's) is built from columns directly, without a ``Booking`` object per booking:
:class:`BookingColumns` can be reordered, shifted in time and joined as arrays, and
:class:`ColumnBookings` / :class:`ColumnDrivers` show them as the scenario's sequences of
domain objects, each made only when read.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import overload

import numpy as np

from rldispatch.domain import PLACE_KINDS, Booking, Driver, Places, Scenario

_KINDS = len(PLACE_KINDS)


def _picked(items: tuple[str, ...], indices: list[int]) -> tuple[str, ...]:
    """``items`` at ``indices``, in that order."""
    if len(indices) > 1:
        return operator.itemgetter(*indices)(items)
    return tuple(items[k] for k in indices)


@dataclass(frozen=True)
class BookingColumns:
    """Bookings as arrays, one entry per booking (times in minutes on one clock)."""

    ids: tuple[str, ...]
    release_min: np.ndarray
    requested_min: np.ndarray
    earliest_min: np.ndarray
    latest_min: np.ndarray
    service_min: np.ndarray
    priority: np.ndarray
    load_by_kind: np.ndarray
    """``(bookings, len(PLACE_KINDS))`` places by kind."""
    pickup_xy: np.ndarray
    dropoff_xy: np.ndarray

    @classmethod
    def of(cls, bookings: Sequence[Booking]) -> BookingColumns:
        count = len(bookings)

        def column(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64).reshape(count)

        windows = np.asarray([b.window for b in bookings], dtype=np.float64).reshape(count, 2)
        return cls(
            ids=tuple(b.id for b in bookings),
            release_min=column([b.release_min for b in bookings]),
            requested_min=column([b.requested_min for b in bookings]),
            earliest_min=windows[:, 0].copy(),
            latest_min=windows[:, 1].copy(),
            service_min=column([b.service_min for b in bookings]),
            priority=np.asarray([b.priority for b in bookings], dtype=np.int64).reshape(count),
            load_by_kind=np.asarray([b.load.as_tuple() for b in bookings], dtype=np.int64).reshape(
                count, _KINDS
            ),
            pickup_xy=np.asarray([b.pickup for b in bookings], dtype=np.float64).reshape(count, 2),
            dropoff_xy=np.asarray([b.dropoff for b in bookings], dtype=np.float64).reshape(
                count, 2
            ),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: np.ndarray) -> BookingColumns:
        """The bookings at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return BookingColumns(
            ids=_picked(self.ids, indices.tolist()),
            release_min=self.release_min[indices],
            requested_min=self.requested_min[indices],
            earliest_min=self.earliest_min[indices],
            latest_min=self.latest_min[indices],
            service_min=self.service_min[indices],
            priority=self.priority[indices],
            load_by_kind=self.load_by_kind[indices],
            pickup_xy=self.pickup_xy[indices],
            dropoff_xy=self.dropoff_xy[indices],
        )

    def shifted(self, minutes: float, release_min: float) -> BookingColumns:
        """The same bookings on a clock ``minutes`` later, every one released at
        ``release_min`` of that clock."""
        return replace(
            self,
            release_min=np.full(len(self.ids), float(release_min)),
            requested_min=minutes + self.requested_min,
            earliest_min=minutes + self.earliest_min,
            latest_min=minutes + self.latest_min,
        )

    @staticmethod
    def join(parts: Sequence[BookingColumns]) -> BookingColumns:
        """The bookings of ``parts`` one after another."""

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        return BookingColumns(
            ids=tuple(itertools.chain.from_iterable(part.ids for part in parts)),
            release_min=joined("release_min"),
            requested_min=joined("requested_min"),
            earliest_min=joined("earliest_min"),
            latest_min=joined("latest_min"),
            service_min=joined("service_min"),
            priority=joined("priority"),
            load_by_kind=joined("load_by_kind"),
            pickup_xy=joined("pickup_xy"),
            dropoff_xy=joined("dropoff_xy"),
        )

    def booking(self, index: int) -> Booking:
        """The domain booking at ``index``."""
        seated, wheelchair, stretcher = (int(n) for n in self.load_by_kind[index])
        return Booking(
            id=self.ids[index],
            release_min=float(self.release_min[index]),
            pickup=(float(self.pickup_xy[index, 0]), float(self.pickup_xy[index, 1])),
            dropoff=(float(self.dropoff_xy[index, 0]), float(self.dropoff_xy[index, 1])),
            requested_min=float(self.requested_min[index]),
            window=(float(self.earliest_min[index]), float(self.latest_min[index])),
            service_min=float(self.service_min[index]),
            priority=int(self.priority[index]),
            load=Places(seated, wheelchair, stretcher),
        )


@dataclass(frozen=True)
class DriverColumns:
    """Drivers as arrays, one entry per driver (no breaks: a day of booking plans)."""

    ids: tuple[str, ...]
    start_xy: np.ndarray
    shift_start_min: np.ndarray
    shift_end_min: np.ndarray
    capacity_by_kind: np.ndarray
    """``(drivers, len(PLACE_KINDS))`` places by kind."""

    @classmethod
    def of(cls, drivers: Sequence[Driver]) -> DriverColumns:
        count = len(drivers)
        shifts = np.asarray([d.shift for d in drivers], dtype=np.float64).reshape(count, 2)
        return cls(
            ids=tuple(d.id for d in drivers),
            start_xy=np.asarray([d.start for d in drivers], dtype=np.float64).reshape(count, 2),
            shift_start_min=shifts[:, 0].copy(),
            shift_end_min=shifts[:, 1].copy(),
            capacity_by_kind=np.asarray(
                [d.capacity.as_tuple() for d in drivers], dtype=np.int64
            ).reshape(count, _KINDS),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def driver(self, index: int) -> Driver:
        """The domain driver at ``index``."""
        seated, wheelchair, stretcher = (int(n) for n in self.capacity_by_kind[index])
        return Driver(
            id=self.ids[index],
            start=(float(self.start_xy[index, 0]), float(self.start_xy[index, 1])),
            shift=(float(self.shift_start_min[index]), float(self.shift_end_min[index])),
            capacity=Places(seated, wheelchair, stretcher),
        )


@dataclass(frozen=True)
class DayColumns:
    """A day's bookings and drivers as arrays."""

    bookings: BookingColumns
    drivers: DriverColumns

    @classmethod
    def of(cls, scenario: Scenario) -> DayColumns:
        return cls(BookingColumns.of(scenario.bookings), DriverColumns.of(scenario.drivers))


class _ColumnSequence(Sequence):
    """Items made from columns when read (an index, a slice, or in turn)."""

    def __init__(self, columns: BookingColumns | DriverColumns) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns)

    def _item(self, index: int) -> object:  # pragma: no cover - overridden
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> object: ...

    @overload
    def __getitem__(self, index: slice) -> tuple: ...

    def __getitem__(self, index: int | slice) -> object:
        if isinstance(index, slice):
            return tuple(self._item(k) for k in range(*index.indices(len(self))))
        count = len(self)
        position = int(index)
        if position < 0:
            position += count
        if not 0 <= position < count:
            raise IndexError(index)
        return self._item(position)

    def __iter__(self) -> Iterator:
        return (self._item(k) for k in range(len(self)))


class ColumnBookings(_ColumnSequence):
    """A scenario's ``bookings`` read from :class:`BookingColumns`, each ``Booking`` made when
    read."""

    columns: BookingColumns

    def _item(self, index: int) -> Booking:
        return self.columns.booking(index)


class ColumnDrivers(_ColumnSequence):
    """A scenario's ``drivers`` read from :class:`DriverColumns`, each ``Driver`` made when
    read."""

    columns: DriverColumns

    def _item(self, index: int) -> Driver:
        return self.columns.driver(index)
