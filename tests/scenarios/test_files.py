import json
import math

import pytest

from rldispatch.cli import main
from rldispatch.domain import ScenarioError, scenario_to_dict
from rldispatch.scenarios.files import load_scenario, load_scenario_source, save_scenario
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


def write_json_text(tmp_path, text: str):
    path = tmp_path / "day.json"
    path.write_text(text)
    return path


def refusal(path) -> str:
    """The one line ``simulate`` prints for a refused file; exit code 2 checked too."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_cli_refusal_is_one_line_and_exit_code_2(tmp_path, capsys):
    data = valid_dict()
    data["wether"] = "sunny"
    path = write_json_text(tmp_path, json.dumps(data))
    code = main(["simulate", "--scenario", str(path), "--policy", "nearest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "wether" in err[0] and str(path) in err[0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.__setitem__("wether", 1), "scenario: unknown field 'wether'"),
        (lambda d: d.__setitem__("horizon", 720), "(did you mean 'horizon_min'?)"),
        (
            lambda d: d["travel"].__setitem__("speed_kph", 30),
            "travel: unknown field 'speed_kph' (did you mean 'speed_kmh'?)",
        ),
        (
            lambda d: d["drivers"][1].__setitem__("shfit", [0, 10]),
            "driver 'd2': unknown field 'shfit' (did you mean 'shift'?)",
        ),
        (
            lambda d: d["bookings"][0].__setitem__("windwo", [0, 10]),
            "booking 'b1': unknown field 'windwo' (did you mean 'window'?)",
        ),
        (
            lambda d: d["drivers"][0].__setitem__("x", 1.0),
            "driver 'd1': field 'x' does not fit coords 'latlon'",
        ),
    ],
    ids=["top", "top-suggestion", "travel", "driver", "booking", "driver-xy-in-latlon"],
)
def test_unknown_key_is_refused_with_the_closest_known_key(tmp_path, mutate, expected):
    data = valid_dict()
    mutate(data)
    assert expected in refusal(write_json_text(tmp_path, json.dumps(data)))


@pytest.mark.parametrize(
    ("text_edit", "expected"),
    [
        (('"capacity": 1', '"capacity": 1e400'), "driver 'd1': capacity: must be a finite"),
        (('"capacity": 1', '"capacity": NaN'), "driver 'd1': capacity: must be a finite"),
        (('"capacity": 1', '"capacity": ' + "1" + "0" * 30), "driver 'd1': capacity"),
        (('"capacity": 1', '"capacity": 5000'), "capacity must be an integer from 1 to 1000"),
        (('"load": 1', '"load": 1e400'), "booking 'b1': load: must be a finite"),
        (('"load": 1', '"load": ' + "1" + "0" * 30), "booking 'b1': load"),
        (('"horizon_min": 720.0', '"horizon_min": ' + "7" * 400), "a 400-digit integer"),
        (('"horizon_min": 720.0', '"horizon_min": ' + "7" * 5000), "not valid JSON"),
        (('"service_min": 2.0', '"service_min": 1e300'), "service_min: 1e+300 is outside"),
        (('"start_hour": 7.0', '"start_hour": 99'), "travel.start_hour: must be a clock hour"),
        (('"speed_kmh": 30.0', '"speed_kmh": 1e9'), "travel.speed_kmh"),
        (('"speed_kmh": 30.0', '"speed_kmh": 1e-300'), "travel.speed_kmh: 1e-300 is outside"),
        (('"shift": [0.0', '"shift": [-1e200'), "driver 'd1': shift[0]"),
    ],
    ids=[
        "capacity-1e400",
        "capacity-nan",
        "capacity-10e30",
        "capacity-5000",
        "load-1e400",
        "load-10e30",
        "horizon-400-digits",
        "horizon-5000-digits",
        "service-1e300",
        "start-hour-99",
        "speed-1e9",
        "speed-1e-300",
        "shift-1e200",
    ],
)
def test_every_number_is_finite_and_bounded(tmp_path, text_edit, expected):
    text = json.dumps(valid_dict())
    old, new = text_edit
    assert old in text
    assert expected in refusal(write_json_text(tmp_path, text.replace(old, new, 1)))


def test_xy_coordinates_are_bounded(tmp_path):
    data = valid_dict()
    data["coords"] = "xy"
    for driver in data["drivers"]:
        driver["x"], driver["y"] = driver.pop("lat"), driver.pop("lon")
    data["bookings"][0]["pickup"] = [1e300, 0.0]
    assert "booking 'b1': pickup[0]: 1e+300 is outside" in refusal(
        write_json_text(tmp_path, json.dumps(data))
    )


def test_deeply_nested_json_is_one_line_not_a_recursion_error(tmp_path):
    path = write_json_text(tmp_path, "[" * 200_000 + "]" * 200_000)
    assert "nested too deeply" in refusal(path)


def test_json_nested_deeper_than_the_format_is_refused(tmp_path):
    data = valid_dict()
    data["bookings"][0]["pickup"] = [[[[[46.2]]]], 6.1]
    assert "nested" in refusal(write_json_text(tmp_path, json.dumps(data)))


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from rldispatch.scenarios import reading

    monkeypatch.setattr(reading, "MAX_SCENARIO_BYTES", 100)
    path = write_json_text(tmp_path, json.dumps(valid_dict()))
    with pytest.raises(ScenarioError, match="bytes is more than the 100"):
        load_scenario(path)


def test_binary_file_is_refused_as_not_utf8(tmp_path):
    path = tmp_path / "day.json"
    path.write_bytes(b"\xff\xfe{\x00}\x00\x80\x81")
    assert "not UTF-8 text" in refusal(path)


def test_integer_ids_are_read_as_strings(tmp_path):
    data = valid_dict()
    data["bookings"][0]["id"] = 1001
    scenario = load_scenario(write_json_text(tmp_path, json.dumps(data)))
    assert scenario.bookings[0].id == "1001"


def test_a_non_string_id_is_refused(tmp_path):
    data = valid_dict()
    data["drivers"][0]["id"] = {"nested": 1}
    assert "drivers[0]: id must be a non-empty string" in refusal(
        write_json_text(tmp_path, json.dumps(data))
    )


def test_a_source_object_is_kept_in_the_file_and_set_aside_when_loading(tmp_path):
    scenario = make_preset("geneva", 3)
    source = {"kind": "service_log", "provenance": {"suggestion_ids": [4, 7], "outcome_ids": []}}

    path = save_scenario(scenario, tmp_path / "day.json", source)

    assert load_scenario(path) == scenario
    assert load_scenario_source(path) == source
    assert load_scenario_source(save_scenario(scenario, tmp_path / "plain.json")) is None


def test_a_source_that_is_not_an_object_is_refused(tmp_path):
    data = scenario_to_dict(make_preset("geneva", 3)) | {"source": [1, 2]}
    path = tmp_path / "day.json"
    path.write_text(json.dumps(data))

    with pytest.raises(ScenarioError, match="source: must be a JSON object"):
        load_scenario(path)
