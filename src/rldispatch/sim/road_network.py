"""Travel times and distances on a road network read from an OpenStreetMap extract.

A local ``.osm.pbf`` (or ``.osm``) file is read with pyosmium; nothing is downloaded.

- **Drivable roads**: ways whose ``highway`` tag is a key of :data:`DEFAULT_SPEED_KMH`, unless
  ``access``, ``motor_vehicle`` or ``motorcar`` is ``no`` or ``private`` (or ``area=yes``).
- **Speed** of a way: its ``maxspeed`` when that is a number (km/h, or ``"N mph"``; of several
  values separated by ``;`` the first), else the default speed of its highway type.
- **One-way streets**: ``oneway=yes|true|1`` only forwards, ``oneway=-1|reverse`` only
  backwards; ``junction=roundabout|circular`` and ``highway=motorway`` are one-way unless
  tagged ``oneway=no``.
- **Graph**: one node per junction (a point shared by drivable ways) and per end of a way; the
  points between are summed into the edge's length (great circle) and free-flow minutes (length
  over speed). Of several edges between two nodes the fastest is kept, and only the largest
  strongly connected component (every node reachable from every other), so that every pair of
  stops has a route.
- **Stops** are snapped to the nearest node (a k-d tree on an equirectangular km projection).
- **Routes** are the fastest (Dijkstra on free-flow minutes, ``scipy.sparse.csgraph``); a
  route's km are summed along it. Rows (one source to every node) are cached, and the tables
  of a day's places (the next policy plays the same day), each the least recently used
  dropped past a byte budget.

The hour of the day is applied by :class:`rldispatch.sim.travel.TravelModel`: a leg takes its
free-flow minutes over the travel model's hourly speed factor, as on the formula.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numba import njit
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

EARTH_RADIUS_KM = 6371.0088
DEFAULT_SPEED_KMH = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 20.0,
    "road": 30.0,
}
"""Free-flow km/h of each drivable highway type when a way has no usable ``maxspeed``."""
MPH_IN_KMH = 1.609344
MIN_EDGE_MINUTES = 1e-6
"""Two points at the same place still take a positive time (Dijkstra needs positive edges)."""
DEFAULT_CACHE_MB = 256.0
ROWS_PER_DIJKSTRA = 64
"""Sources solved per call of ``scipy.sparse.csgraph.dijkstra`` (bounds the working memory)."""
NO_PREDECESSOR = -9999

_NOT_MOTOR = {"no", "private"}
_FORWARD = {"yes", "true", "1"}
_BACKWARD = {"-1", "reverse"}
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(km/h|kmh|kph|mph)?\s*$")


class RoadNetworkError(ValueError):
    """A road network file that cannot be used; the message names the file."""


def parse_maxspeed(value: str | None) -> float | None:
    """km/h of a ``maxspeed`` tag (``"50"``, ``"50 km/h"``, ``"30 mph"``, ``"50;30"``: 50), or
    None when it is not a number (``"none"``, ``"walk"``, ``"CH:urban"``) or not positive."""
    if not value:
        return None
    match = _NUMBER.match(value.split(";")[0])
    if match is None:
        return None
    speed = float(match.group(1))
    if match.group(2) == "mph":
        speed *= MPH_IN_KMH
    return speed if speed > 0 else None


def way_directions(tags: dict[str, str]) -> tuple[bool, bool]:
    """(forwards allowed, backwards allowed) of a drivable way from its tags."""
    oneway = tags.get("oneway", "").strip().lower()
    if oneway in _FORWARD:
        return True, False
    if oneway in _BACKWARD:
        return False, True
    if oneway == "no":
        return True, True
    implied = tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == (
        "motorway"
    )
    return True, not implied


def way_speed_kmh(tags: dict[str, str]) -> float | None:
    """Free-flow km/h of a way, None when it is not drivable."""
    highway = tags.get("highway")
    if highway not in DEFAULT_SPEED_KMH or tags.get("area") == "yes":
        return None
    for key in ("access", "motor_vehicle", "motorcar"):
        if tags.get(key, "").strip().lower() in _NOT_MOTOR:
            return None
    return parse_maxspeed(tags.get("maxspeed")) or DEFAULT_SPEED_KMH[highway]


def great_circle_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray):
    """Haversine km between points given in degrees (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    h = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(np.sqrt(h), 1.0))


def _read_ways(
    path: Path,
) -> tuple[list[list[tuple[int, float, float]]], list[float], list[tuple[bool, bool]]]:
    """Every drivable way of the file: its points (id, lat, lon), speed and directions."""
    import osmium

    ways: list[list[tuple[int, float, float]]] = []
    speeds: list[float] = []
    directions: list[tuple[bool, bool]] = []
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        tags = {tag.k: tag.v for tag in way.tags}
        speed = way_speed_kmh(tags)
        if speed is None:
            continue
        points = []
        for ref in way.nodes:
            location = ref.location
            if not location.valid():
                continue
            points.append((ref.ref, location.lat, location.lon))
        if len(points) >= 2:
            ways.append(points)
            speeds.append(speed)
            directions.append(way_directions(tags))
    return ways, speeds, directions


def _ways_to_edges(
    ways: list[list[tuple[int, float, float]]],
    speeds: list[float],
    directions: list[tuple[bool, bool]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Junction nodes (lat, lon) and directed edges (tail, head, km, minutes) of the ways."""
    uses: dict[int, int] = {}
    for points in ways:
        for k, (node, _, _) in enumerate(points):
            # An end of a way counts twice, so it is always a node of the graph.
            uses[node] = uses.get(node, 0) + (2 if k in (0, len(points) - 1) else 1)
    index: dict[int, int] = {}
    lat: list[float] = []
    lon: list[float] = []
    tail: list[int] = []
    head: list[int] = []
    km: list[float] = []
    minutes: list[float] = []
    for points, speed, (forward, backward) in zip(ways, speeds, directions, strict=True):
        coords = np.asarray([(p[1], p[2]) for p in points])
        step_km = great_circle_km(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
        start, length = 0, 0.0
        for k in range(1, len(points)):
            length += float(step_km[k - 1])
            node = points[k][0]
            if uses[node] < 2:
                continue
            ends = []
            for at in (start, k):
                osm_id = points[at][0]
                if osm_id not in index:
                    index[osm_id] = len(lat)
                    lat.append(points[at][1])
                    lon.append(points[at][2])
                ends.append(index[osm_id])
            minutes_along = max(length / speed * 60.0, MIN_EDGE_MINUTES)
            for allowed, (origin, destination) in (
                (forward, (ends[0], ends[1])),
                (backward, (ends[1], ends[0])),
            ):
                if allowed:
                    tail.append(origin)
                    head.append(destination)
                    km.append(length)
                    minutes.append(minutes_along)
            start, length = k, 0.0
    return (
        np.asarray(lat, dtype=np.float64),
        np.asarray(lon, dtype=np.float64),
        np.asarray(tail, dtype=np.int64),
        np.asarray(head, dtype=np.int64),
        np.asarray(km, dtype=np.float64),
        np.asarray(minutes, dtype=np.float64),
    )


@njit(cache=True)
def _route_km(predecessors, sources, indptr, indices, edge_km):  # pragma: no cover - compiled
    """Km along the fastest route from each source to every node, from Dijkstra's
    predecessor rows (each node's km is its predecessor's plus the edge's)."""
    rows, n = predecessors.shape
    out = np.full((rows, n), np.nan, dtype=np.float32)
    km = np.empty(n)
    done = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    for r in range(rows):
        done[:] = False
        km[sources[r]] = 0.0
        done[sources[r]] = True
        for node in range(n):
            if done[node] or predecessors[r, node] == NO_PREDECESSOR:
                continue
            depth = 0
            at = node
            while not done[at] and predecessors[r, at] != NO_PREDECESSOR:
                stack[depth] = at
                depth += 1
                at = predecessors[r, at]
            if not done[at]:
                continue
            for d in range(depth - 1, -1, -1):
                child = stack[d]
                parent = predecessors[r, child]
                edge = 0.0
                for j in range(indptr[parent], indptr[parent + 1]):
                    if indices[j] == child:
                        edge = edge_km[j]
                        break
                km[child] = km[parent] + edge
                done[child] = True
        for node in range(n):
            if done[node]:
                out[r, node] = km[node]
    return out


class RoadNetwork:
    """A drivable directed graph: fastest free-flow minutes and their km between any two nodes
    (see the module docstring): :meth:`from_osm` reads a file; the constructor takes junctions
    (``lat``, ``lon``) and directed edges (``tail``, ``head``, ``km``, free-flow ``minutes``).

    :param cache_mb: the most the cached rows (two float32 per node each) may take, and
        again the most the cached tables of days' places may take.
    """

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        tail: np.ndarray,
        head: np.ndarray,
        km: np.ndarray,
        minutes: np.ndarray,
        source: str = "",
        cache_mb: float = DEFAULT_CACHE_MB,
    ) -> None:
        self.source = source
        n = lat.shape[0]
        if n == 0 or tail.shape[0] == 0:
            raise RoadNetworkError(f"{source}: no drivable road")
        # Keep the fastest of parallel edges, then the largest strongly connected component.
        order = np.lexsort((minutes, head, tail))
        tail, head, km, minutes = tail[order], head[order], km[order], minutes[order]
        first = np.ones(tail.shape[0], dtype=bool)
        first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
        loop = tail == head
        keep = first & ~loop
        tail, head, km, minutes = tail[keep], head[keep], km[keep], minutes[keep]
        whole = csr_matrix((np.ones(tail.shape[0]), (tail, head)), shape=(n, n))
        _, label = connected_components(whole, directed=True, connection="strong")
        largest = np.argmax(np.bincount(label))
        inside = label == largest
        new_index = np.cumsum(inside) - 1
        kept_edge = inside[tail] & inside[head]
        self.lat = lat[inside]
        self.lon = lon[inside]
        self.dropped_nodes = int(n - inside.sum())
        tail, head = new_index[tail[kept_edge]], new_index[head[kept_edge]]
        km, minutes = km[kept_edge], minutes[kept_edge]
        size = self.lat.shape[0]
        if size < 2:
            raise RoadNetworkError(f"{source}: no two road junctions connected both ways")
        # The CSR layout of the edges (by edge number + 1, never a zero that could be dropped),
        # then the minutes and km of each entry in that order.
        layout = csr_matrix(
            (np.arange(1, tail.shape[0] + 1, dtype=np.float64), (tail, head)), shape=(size, size)
        )
        layout.sort_indices()
        edge = layout.data.astype(np.int64) - 1
        self.graph = csr_matrix((minutes[edge], layout.indices, layout.indptr), shape=(size, size))
        self.edge_km = km[edge].astype(np.float64)
        self.edges = int(self.graph.nnz)
        self._origin = (float(self.lat.mean()), float(self.lon.mean()))
        self._tree = cKDTree(self._project(np.column_stack([self.lat, self.lon])))
        self.cache_bytes = int(cache_mb * 1024 * 1024)
        self._rows: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()  # the service's threads share one network
        self._tables: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._table_bytes = 0
        self.table_hits = 0
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def from_osm(cls, path: str | Path, cache_mb: float = DEFAULT_CACHE_MB) -> RoadNetwork:
        """The drivable network of an OpenStreetMap extract (``.osm.pbf`` or ``.osm``)."""
        path = Path(path)
        if not path.is_file():
            raise RoadNetworkError(f"{path}: no such file")
        try:
            ways, speeds, directions = _read_ways(path)
        except RuntimeError as error:
            raise RoadNetworkError(
                f"{path}: not a readable OpenStreetMap extract ({error})"
            ) from None
        edges = _ways_to_edges(ways, speeds, directions)
        return cls(*edges, source=str(path), cache_mb=cache_mb)

    @property
    def nodes(self) -> int:
        return int(self.lat.shape[0])

    def _project(self, points: np.ndarray) -> np.ndarray:
        lat0, lon0 = self._origin
        scale = math.pi / 180.0 * EARTH_RADIUS_KM
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return np.column_stack(
            [
                (points[:, 1] - lon0) * scale * math.cos(math.radians(lat0)),
                (points[:, 0] - lat0) * scale,
            ]
        )

    def snap(self, points: np.ndarray) -> np.ndarray:
        """The nearest node of each ``(lat, lon)`` point."""
        _, nodes = self._tree.query(self._project(points))
        return np.asarray(nodes, dtype=np.int64).reshape(-1)

    def snap_km(self, points: np.ndarray) -> np.ndarray:
        """How far (km, as the crow flies) each ``(lat, lon)`` point is from its nearest node."""
        distances, _ = self._tree.query(self._project(points))
        return np.asarray(distances, dtype=np.float64).reshape(-1)

    def rows(self, sources: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Free-flow minutes and km (float32, every node) of the fastest routes from each
        source node, from the cache where it has them."""
        with self._lock:
            return self._rows_of(np.asarray(sources, dtype=np.int64).reshape(-1))

    def _rows_of(self, sources: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        missing = []
        for node in dict.fromkeys(sources.tolist()):
            row = self._rows.get(node)
            if row is None:
                missing.append(node)
            else:
                self._rows.move_to_end(node)
                found[node] = row
        self.cache_hits += len(found)
        self.cache_misses += len(missing)
        for begin in range(0, len(missing), ROWS_PER_DIJKSTRA):
            chunk = np.asarray(missing[begin : begin + ROWS_PER_DIJKSTRA], dtype=np.int64)
            minutes, predecessors = dijkstra(
                self.graph, directed=True, indices=chunk, return_predecessors=True
            )
            km = _route_km(
                predecessors.astype(np.int64),
                chunk,
                self.graph.indptr.astype(np.int64),
                self.graph.indices.astype(np.int64),
                self.edge_km,
            )
            minutes = minutes.astype(np.float32)
            for r, node in enumerate(chunk.tolist()):
                found[node] = (minutes[r].copy(), km[r].copy())
                self._remember(node, found[node])
        return [found[node][0] for node in sources.tolist()], [
            found[node][1] for node in sources.tolist()
        ]

    def _remember(self, node: int, row: tuple[np.ndarray, np.ndarray]) -> None:
        row_bytes = 8 * self.nodes
        if row_bytes > self.cache_bytes:
            return
        self._rows[node] = row
        while len(self._rows) * row_bytes > self.cache_bytes:
            self._rows.popitem(last=False)

    def matrix(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free-flow minutes and km (float32, ``(n, n)``) of the fastest routes between the
        given nodes, row ``i`` from ``nodes[i]``."""
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
        minutes = np.empty((nodes.size, nodes.size), dtype=np.float32)
        km = np.empty((nodes.size, nodes.size), dtype=np.float32)
        for begin in range(0, nodes.size, ROWS_PER_DIJKSTRA):
            chunk = nodes[begin : begin + ROWS_PER_DIJKSTRA]
            minute_rows, km_rows = self.rows(chunk)
            for r, (minute_row, km_row) in enumerate(zip(minute_rows, km_rows, strict=True)):
                minutes[begin + r] = minute_row[nodes]
                km[begin + r] = km_row[nodes]
        return minutes, km

    def day_tables(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`matrix` of a day's places, kept for the next day on the same places (every
        policy of an evaluation plays the same days), the least recently used dropped past
        the byte budget. The tables are shared: never write to them."""
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
        key = nodes.tobytes()
        with self._lock:
            found = self._tables.get(key)
            if found is not None:
                self._tables.move_to_end(key)
                self.table_hits += 1
                return found
        tables = self.matrix(nodes)
        size = tables[0].nbytes + tables[1].nbytes
        with self._lock:
            if size <= self.cache_bytes and key not in self._tables:
                self._tables[key] = tables
                self._table_bytes += size
                while self._table_bytes > self.cache_bytes:
                    _, (old_minutes, old_km) = self._tables.popitem(last=False)
                    self._table_bytes -= old_minutes.nbytes + old_km.nbytes
        return tables

    def route(self, origin: int, destination: int) -> tuple[float, float]:
        """(free-flow minutes, km) of the fastest route between two nodes."""
        minute_rows, km_rows = self.rows(np.array([origin]))
        return float(minute_rows[0][destination]), float(km_rows[0][destination])


_LOADED: dict[tuple[str, int, int], RoadNetwork] = {}


def load_road_network(path: str | Path) -> RoadNetwork:
    """The road network of a file, read once per process (again when the file changes)."""
    path = Path(path)
    try:
        stat = os.stat(path)
    except OSError:
        raise RoadNetworkError(f"{path}: no such file") from None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    network = _LOADED.get(key)
    if network is None:
        network = RoadNetwork.from_osm(path)
        _LOADED.clear()  # one network per process at a time: it can be large
        _LOADED[key] = network
    return network
