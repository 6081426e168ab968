"""A light basemap under a latitude/longitude map, from a local folder of map tiles.

The folder holds tiles in the usual ``{zoom}/{x}/{y}.png`` layout of a tile server or a tile
cache (OpenStreetMap's numbering, Web Mercator). Nothing is downloaded: a map whose extent has
no tiles in the folder is drawn without a basemap, and stays readable so.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TILES_DIR_ENV = "RLDISPATCH_TILES_DIR"
"""Environment variable naming the tile folder when none is given."""
TILE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_TILES = 36
"""The most tiles one map draws: the zoom is the closest whose tiles cover it within this."""
LIGHTEN = 0.55
"""How far a tile is blended towards white, so routes stay the strongest ink on the map."""
ATTRIBUTION = "basemap tiles: © OpenStreetMap contributors"


@dataclass(frozen=True)
class Tile:
    """One map tile: its image file and the longitude/latitude box it covers."""

    path: Path
    west: float
    south: float
    east: float
    north: float


def tile_xy(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """The (fractional) tile column and row of a point at ``zoom`` (Web Mercator)."""
    n = 2.0**zoom
    lat_rad = math.radians(max(-85.05112878, min(85.05112878, lat)))
    x = (lon + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(lat_rad)) / math.pi) / 2.0 * n
    return x, y


def tile_lon_lat(x: float, y: float, zoom: int) -> tuple[float, float]:
    """The longitude and latitude of tile corner ``(x, y)`` at ``zoom``."""
    n = 2.0**zoom
    lon = x / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * y / n))))
    return lon, lat


def tiles_dir_from(option: str | Path | None) -> Path | None:
    """The tile folder: ``option``, else the ``RLDISPATCH_TILES_DIR`` variable, else None."""
    chosen = option if option is not None else os.environ.get(TILES_DIR_ENV) or None
    return Path(chosen) if chosen is not None else None


def covering_tiles(
    tiles_dir: Path, west: float, south: float, east: float, north: float
) -> list[Tile]:
    """The tiles of the folder covering the box, at the finest zoom that needs at most
    :data:`MAX_TILES` and has them all; an empty list when no zoom has."""
    if not tiles_dir.is_dir():
        return []
    zooms = sorted(
        (int(entry.name) for entry in tiles_dir.iterdir() if entry.name.isdigit()), reverse=True
    )
    for zoom in zooms:
        x0, y0 = tile_xy(west, north, zoom)
        x1, y1 = tile_xy(east, south, zoom)
        columns = range(int(math.floor(x0)), int(math.floor(x1)) + 1)
        rows = range(int(math.floor(y0)), int(math.floor(y1)) + 1)
        if len(columns) * len(rows) > MAX_TILES:
            continue
        tiles = []
        for x in columns:
            for y in rows:
                path = next(
                    (
                        tiles_dir / str(zoom) / str(x) / f"{y}{suffix}"
                        for suffix in TILE_SUFFIXES
                        if (tiles_dir / str(zoom) / str(x) / f"{y}{suffix}").is_file()
                    ),
                    None,
                )
                if path is None:
                    break
                tile_west, tile_north = tile_lon_lat(x, y, zoom)
                tile_east, tile_south = tile_lon_lat(x + 1, y + 1, zoom)
                tiles.append(Tile(path, tile_west, tile_south, tile_east, tile_north))
            else:
                continue
            break
        else:
            return tiles
    return []


def light_image(path: Path) -> np.ndarray:
    """A tile's pixels as RGB floats in [0, 1], blended towards white by :data:`LIGHTEN`."""
    from matplotlib.image import imread

    pixels = np.asarray(imread(path), dtype=float)
    if pixels.max() > 1.0:  # 8-bit JPEG
        pixels = pixels / 255.0
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    rgb = pixels[..., :3]
    return rgb * (1.0 - LIGHTEN) + LIGHTEN


def draw_basemap(axis: Any, tiles_dir: Path | None) -> int:
    """Draw the folder's tiles under everything on ``axis`` (longitude on x, latitude on y),
    keeping its extent; returns the number of tiles drawn (0: no basemap)."""
    if tiles_dir is None:
        return 0
    x_low, x_high = axis.get_xlim()
    y_low, y_high = axis.get_ylim()
    aspect = axis.get_aspect()
    tiles = covering_tiles(tiles_dir, x_low, y_low, x_high, y_high)
    for tile in tiles:
        # A tile is in Web Mercator; over a city-sized tile the error of spanning it linearly
        # in latitude is well under a pixel.
        axis.imshow(
            light_image(tile.path),
            extent=(tile.west, tile.east, tile.south, tile.north),
            origin="upper",
            interpolation="bilinear",
            zorder=0,
        )
    axis.set_aspect(aspect)
    axis.set_xlim(x_low, x_high)
    axis.set_ylim(y_low, y_high)
    if tiles:
        axis.text(
            0.995,
            0.005,
            ATTRIBUTION,
            transform=axis.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
            zorder=9,
        )
    return len(tiles)
