"""The basemap: tiles of a local folder under a latitude/longitude map, none when the folder
does not cover it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imsave

from rldispatch.reports.basemap import (
    LIGHTEN,
    covering_tiles,
    draw_basemap,
    light_image,
    tile_lon_lat,
    tile_xy,
    tiles_dir_from,
)

GENEVA = (6.14, 46.20)  # lon, lat


def write_tiles(folder: Path, zoom: int, lon: float, lat: float, around: int = 1) -> int:
    """Solid-colour PNG tiles around a point, in the ``{z}/{x}/{y}.png`` layout."""
    x, y = (int(math.floor(v)) for v in tile_xy(lon, lat, zoom))
    count = 0
    for column in range(x - around, x + around + 1):
        for row in range(y - around, y + around + 1):
            path = folder / str(zoom) / str(column) / f"{row}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            imsave(path, np.full((256, 256, 3), [0.2, 0.4, 0.8]))
            count += 1
    return count


def test_tile_numbers_and_corners_are_inverse() -> None:
    assert tuple(int(v) for v in tile_xy(13.40, 52.52, 10)) == (550, 335)  # Berlin, 10/550/335
    x, y = tile_xy(*GENEVA, 12)
    lon, lat = tile_lon_lat(x, y, 12)
    assert lon == pytest.approx(GENEVA[0]) and lat == pytest.approx(GENEVA[1])


def test_the_finest_zoom_that_covers_the_map_is_chosen(tmp_path: Path) -> None:
    write_tiles(tmp_path, 11, *GENEVA, around=2)
    write_tiles(tmp_path, 13, *GENEVA, around=0)  # too few to cover the box
    tiles = covering_tiles(tmp_path, 6.10, 46.17, 6.18, 46.23)
    assert tiles and all(tile.path.parts[-3] == "11" for tile in tiles)
    assert min(t.west for t in tiles) <= 6.10 and max(t.east for t in tiles) >= 6.18
    assert min(t.south for t in tiles) <= 46.17 and max(t.north for t in tiles) >= 46.23


def test_no_tiles_no_basemap(tmp_path: Path) -> None:
    figure = Figure()
    axis = figure.subplots()
    axis.plot([6.10, 6.18], [46.17, 46.23])
    limits = (axis.get_xlim(), axis.get_ylim())
    assert draw_basemap(axis, tmp_path / "missing") == 0
    assert draw_basemap(axis, None) == 0
    write_tiles(tmp_path, 11, 2.35, 48.85)  # Paris: not this map
    assert draw_basemap(axis, tmp_path) == 0
    assert not axis.images and (axis.get_xlim(), axis.get_ylim()) == limits


def test_tiles_are_drawn_light_under_the_map_keeping_its_extent(tmp_path: Path) -> None:
    write_tiles(tmp_path, 11, *GENEVA, around=2)
    figure = Figure()
    axis = figure.subplots()
    axis.plot([6.10, 6.18], [46.17, 46.23], zorder=2)
    axis.set_aspect(1.5)
    limits = (axis.get_xlim(), axis.get_ylim())
    drawn = draw_basemap(axis, tmp_path)
    assert drawn == len(axis.images) > 0
    assert (axis.get_xlim(), axis.get_ylim()) == limits and axis.get_aspect() == 1.5
    assert all(image.get_zorder() < 1 for image in axis.images)
    pixels = light_image(next(tmp_path.rglob("*.png")))
    np.testing.assert_allclose(pixels[0, 0], np.array([0.2, 0.4, 0.8]) * (1 - LIGHTEN) + LIGHTEN)


def test_the_tile_folder_comes_from_the_option_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RLDISPATCH_TILES_DIR", raising=False)
    assert tiles_dir_from(None) is None
    monkeypatch.setenv("RLDISPATCH_TILES_DIR", str(tmp_path))
    assert tiles_dir_from(None) == tmp_path
    assert tiles_dir_from("elsewhere") == Path("elsewhere")
