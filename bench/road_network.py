"""Road-network travel at a city's size: building the graph, lookups per second, a day's tables.

    .venv/bin/python bench/road_network.py [--rows 150] [--cols 150] [--spacing-km 0.15] \
        [--places 2000] [--grid runs/roads/city_grid.osm.pbf] [--city-day runs/roads/city.json] \
        [--json runs/roads/road_network.json]

The extract is a SYNTHETIC street grid (:func:`rldispatch.scenarios.street_grid.write_street_grid`,
default 150 x 150 junctions 150 m apart around Geneva's centre: 22.4 km square, 22,500
junctions, arterials every 5th street, half the residential streets one-way); no real
OpenStreetMap data is read. Measured in one process, one core:

- reading the extract into the graph (pyosmium, strongly connected component, k-d tree);
- lookups (one origin-destination pair's minutes and km) per second: *uncached*, the
  ``--places`` x ``--places`` table of random places of a fresh network (a Dijkstra row per
  place, then the columns); *cached*, the same table again (every row from the cache); and
  one pair at a time through :meth:`RoadNetwork.route` from cached rows (the Python call
  included);
- the travel tables of a 300-driver, 6,000-booking geneva-style day on the grid (what
  ``simulate`` builds before the day starts), against the formula's embedding;
- ``--city-day`` also writes that day as a scenario file, for ``/usr/bin/time -v rldispatch
  simulate --scenario FILE --road-network GRID --policy insertion`` (time and peak memory of
  the whole day, see docs/road_network.md).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rldispatch.files import atomic_write_json
from rldispatch.scenarios.files import save_scenario
from rldispatch.scenarios.presets import GENEVA_CENTRE, HELD_OUT_SEEDS, GenevaConfig, make_geneva
from rldispatch.scenarios.street_grid import write_street_grid
from rldispatch.sim.road_network import RoadNetwork, load_road_network
from rldispatch.sim.travel import TravelModel


def timed(action):  # noqa: ANN001, ANN201 - a tiny helper
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--rows", type=int, default=150)
    parser.add_argument("--cols", type=int, default=150)
    parser.add_argument("--spacing-km", type=float, default=0.15)
    parser.add_argument("--places", type=int, default=2000)
    parser.add_argument("--drivers", type=int, default=300)
    parser.add_argument("--bookings", type=int, default=6000)
    parser.add_argument("--grid", type=Path, default=Path("runs/roads/city_grid.osm.pbf"))
    parser.add_argument("--city-day", type=Path, default=Path("runs/roads/city.json"))
    parser.add_argument("--json", type=Path, default=Path("runs/roads/road_network.json"))
    args = parser.parse_args()
    args.grid.parent.mkdir(parents=True, exist_ok=True)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    write_street_grid(args.grid, GENEVA_CENTRE, args.rows, args.cols, args.spacing_km)
    network, build_s = timed(lambda: RoadNetwork.from_osm(args.grid, cache_mb=4096))
    print(
        f"graph: {network.nodes} junctions, {network.edges} directed edges "
        f"({args.grid.stat().st_size / 1e3:.0f} kB extract), read in {build_s:.2f} s"
    )

    rng = np.random.default_rng(0)
    places = rng.choice(network.nodes, size=min(args.places, network.nodes), replace=False)
    pairs = places.size**2
    _, uncached_s = timed(lambda: network.matrix(places))
    _, cached_s = timed(lambda: network.matrix(places))
    singles = rng.choice(places, size=(20_000, 2))
    _, single_s = timed(lambda: [network.route(int(a), int(b)) for a, b in singles])
    print(
        f"lookups/s: uncached {pairs / uncached_s:,.0f} ({places.size} Dijkstra rows in "
        f"{uncached_s:.2f} s, {places.size / uncached_s:.0f} rows/s), cached table "
        f"{pairs / cached_s:,.0f}, cached one pair at a time {len(singles) / single_s:,.0f}"
    )

    config = GenevaConfig(
        n_drivers=args.drivers, min_bookings=args.bookings, max_bookings=args.bookings
    )
    city = make_geneva(HELD_OUT_SEEDS[-1], config)
    road_city = replace(city, travel=replace(city.travel, road_network=str(args.grid)))
    load_road_network(args.grid)  # as simulate reads it: the default cache, empty
    travel, tables_s = timed(lambda: TravelModel(road_city))
    print(
        f"{args.drivers}-driver day ({len(city.bookings)} bookings): travel tables of "
        f"{travel.place_nodes.size} distinct places in {tables_s:.1f} s "
        f"({travel.road_km.nbytes * 2 / 1e6:.0f} MB)"
    )
    save_scenario(city, args.city_day)
    print(f"city day written to {args.city_day}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    results = {
        "extract": {"path": str(args.grid), "synthetic_grid": [args.rows, args.cols]},
        "spacing_km": args.spacing_km,
        "nodes": network.nodes,
        "edges": network.edges,
        "build_s": build_s,
        "places": int(places.size),
        "lookups_per_s": {
            "uncached": pairs / uncached_s,
            "cached_table": pairs / cached_s,
            "cached_single": len(singles) / single_s,
        },
        "dijkstra_rows_per_s": places.size / uncached_s,
        "city_day": {
            "drivers": args.drivers,
            "bookings": len(city.bookings),
            "distinct_places": int(travel.place_nodes.size),
            "tables_s": tables_s,
            "tables_mb": travel.road_km.nbytes * 2 / 1e6,
        },
        "load_average_end": os.getloadavg()[0],
    }
    atomic_write_json(args.json, results)
    print(f"report: {args.json}")


if __name__ == "__main__":
    main()
