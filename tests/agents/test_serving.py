"""What a served model says of the travel it was trained on."""

from __future__ import annotations

from rldispatch.agents.serving import road_network_difference, trained_road_network


def test_a_model_names_the_road_network_of_its_training_summary() -> None:
    assert trained_road_network({"road_network": "maps/town.osm.pbf"}) == "maps/town.osm.pbf"
    assert trained_road_network({"days": 3}) is None
    assert trained_road_network(None) is None


def test_the_same_network_under_another_folder_is_the_same() -> None:
    assert road_network_difference("/train/town.osm.pbf", "/srv/town.osm.pbf") is None
    assert road_network_difference(None, None) is None
    assert road_network_difference(None, [None, None]) is None


def test_another_travel_is_one_line_naming_both() -> None:
    assert road_network_difference("a/town.osm.pbf", None) == (
        "trained on the road network town.osm.pbf, played on the travel formula"
    )
    assert road_network_difference(None, "a/town.osm.pbf") == (
        "trained on the travel formula, played on the road network town.osm.pbf"
    )
    assert road_network_difference("town.osm.pbf", ["city.osm.pbf", "town.osm.pbf"]) == (
        "trained on the road network town.osm.pbf, played on the road network "
        "city.osm.pbf and the road network town.osm.pbf"
    )
