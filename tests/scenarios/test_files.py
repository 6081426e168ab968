import json
import math

import pytest

from rldispatch.cli import main
from rldispatch.domain import ScenarioError, scenario_to_dict
from rldispatch.scenarios.files import load_scenario, save_scenario
from rldispatch.scenarios.presets import make_preset


def test_save_then_load_gives_the_same_scenario(tmp_path):
    day = make_preset("geneva", 11)
    path = save_scenario(day, tmp_path / "day.json")
    assert load_scenario(path) == day
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def valid_dict():
    return scenario_to_dict(make_preset("classic", 0))


def break_missing_field(data):
    del data["bookings"][3]["window"]
    return f"booking '{data['bookings'][3]['id']}'", "window"


def break_nan_coordinate(data):
    data["bookings"][0]["pickup"][0] = math.nan
    return f"booking '{data['bookings'][0]['id']}'", "pickup"


def break_window_order(data):
    data["bookings"][2]["window"] = [100, 50]
    return f"booking '{data['bookings'][2]['id']}'", "window"


def break_unknown_coords(data):
    data["coords"] = "utm"
    return "coords", "coords"


def break_negative_capacity(data):
    data["drivers"][1]["capacity"] = -2
    return "driver 'd2'", "capacity"


def break_empty_fleet(data):
    data["drivers"] = []
    return "drivers", "empty"


def break_latitude(data):
    data["drivers"][0]["lat"] = 91.0
    return "driver 'd1'", "latitude"


def break_duplicate_booking(data):
    data["bookings"][1]["id"] = data["bookings"][0]["id"]
    return f"booking '{data['bookings'][0]['id']}'", "twice"


def break_string_time(data):
    data["bookings"][4]["requested_min"] = "noon"
    return f"booking '{data['bookings'][4]['id']}'", "requested_min"


def break_priority(data):
    data["bookings"][5]["priority"] = 7
    return f"booking '{data['bookings'][5]['id']}'", "priority"


def break_horizon(data):
    data["horizon_min"] = -5
    return "horizon_min", "positive"


BREAKERS = [
    break_missing_field,
    break_nan_coordinate,
    break_window_order,
    break_unknown_coords,
    break_negative_capacity,
    break_empty_fleet,
    break_latitude,
    break_duplicate_booking,
    break_string_time,
    break_priority,
    break_horizon,
]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__)
def test_malformed_file_gives_one_clear_line_and_exit_code_2(breaker, tmp_path, capsys):
    data = valid_dict()
    record, detail = breaker(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))  # json writes NaN as the NaN literal, as a bad exporter
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert record in str(caught.value) and detail in str(caught.value)
    code = main(["simulate", "--scenario", str(path), "--policy", "nearest", "--episodes", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and record in err[0] and "Traceback" not in err[0]


def test_not_json_at_all(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.json")
