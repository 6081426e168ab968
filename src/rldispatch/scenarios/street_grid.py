"""A synthetic street grid written as an OpenStreetMap extract (``.osm.pbf``).

For trying road-network travel where no real extract is at hand, and for measuring it at a
city's size: ``rows`` east-west and ``cols`` north-south streets ``spacing_km`` apart around
a centre. Every ``arterial_every``-th street is a two-way ``primary`` road tagged
``maxspeed=50``; the others are ``residential`` (30 km/h by default), every second one of
them one-way, alternating in direction. It is synthetic: no real city's streets.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

KM_PER_DEGREE_LAT = 110.57
KM_PER_DEGREE_LON_EQUATOR = 111.32


def write_street_grid(
    path: str | Path,
    centre: tuple[float, float],
    rows: int,
    cols: int,
    spacing_km: float = 0.2,
    arterial_every: int = 5,
) -> Path:
    """Write the grid (see the module docstring) to ``path`` atomically; return the path."""
    import osmium
    from osmium.osm.mutable import Node, Way

    if rows < 2 or cols < 2 or spacing_km <= 0:
        raise ValueError("a street grid needs at least 2 rows, 2 columns and a positive spacing")
    path = Path(path)
    lat0, lon0 = centre
    dlat = spacing_km / KM_PER_DEGREE_LAT
    dlon = spacing_km / (KM_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(lat0)))

    def node_id(r: int, c: int) -> int:
        return 1 + r * cols + c

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.osm.pbf")
    temporary.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(temporary))
    try:
        for r in range(rows):
            for c in range(cols):
                lat = lat0 + (r - (rows - 1) / 2) * dlat
                lon = lon0 + (c - (cols - 1) / 2) * dlon
                writer.add_node(Node(id=node_id(r, c), location=(lon, lat)))
        way_id = 1
        streets = [("row", r) for r in range(rows)] + [("col", c) for c in range(cols)]
        for kind, index in streets:
            if kind == "row":
                nodes = [node_id(index, c) for c in range(cols)]
            else:
                nodes = [node_id(r, index) for r in range(rows)]
            if index % arterial_every == 0:
                tags = {"highway": "primary", "maxspeed": "50"}
            elif index % 2 == 1:
                tags = {"highway": "residential", "oneway": "yes" if index % 4 == 1 else "-1"}
            else:
                tags = {"highway": "residential"}
            writer.add_way(Way(id=way_id, nodes=nodes, tags=tags))
            way_id += 1
    finally:
        writer.close()
    temporary.replace(path)
    return path
