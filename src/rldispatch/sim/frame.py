"""The local km frame: positions as km east and north of a day's centre.

Models read positions in this frame (the flat observation and the pairwise features, divided
by :data:`POSITION_SCALE_KM`), so one day's centre and one conversion serve the env, the
pairwise features and the service's live state. The centre of a day is the mean of its
points (pickups, drop-offs, driver starts) taken in sorted order, so it does not depend on
the order the bookings and drivers are listed in.
"""

from __future__ import annotations

import numpy as np

from rldispatch.domain import Coords

KM_PER_DEGREE_LAT = 110.57
KM_PER_DEGREE_LON_EQUATOR = 111.32
POSITION_SCALE_KM = 10.0
"""Positions in the models' inputs are in units of this many km."""


def frame_centre(points: np.ndarray) -> np.ndarray:
    """The centre of a day's points ``(n, 2)``: their mean, independent of their order."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.sort(points, axis=0).mean(axis=0)


class LocalFrame:
    """Points ``(..., 2)`` (``(lat, lon)`` or ``(x, y)``) to ``(east, north)`` around a centre.

    :param centre: the reference point, in the day's coordinates.
    :param coords: ``latlon`` (an equirectangular km frame at the centre's latitude) or ``xy``
        (units from the centre).
    """

    def __init__(self, centre: np.ndarray, coords: Coords) -> None:
        self.centre = np.asarray(centre, dtype=np.float64).reshape(2)
        self.coords = coords
        if coords == "latlon":
            self._scale = np.array(
                [KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON_EQUATOR * np.cos(np.radians(self.centre[0]))]
            )
        else:
            self._scale = None

    def scaled(self, points: np.ndarray) -> np.ndarray:
        """``(east, north)`` of each point in units of :data:`POSITION_SCALE_KM` km (``xy``: of
        that many units): what the models read."""
        if self._scale is None:
            return (points - self.centre) / POSITION_SCALE_KM
        return ((points - self.centre) * self._scale / POSITION_SCALE_KM)[..., ::-1]
