"""Places by kind, maximum ride times, breaks and shared rides in the scenario format."""

import json

import pytest

from rldispatch.cli import main
from rldispatch.domain import (
    Break,
    Places,
    ScenarioError,
    scenario_from_dict,
    scenario_to_dict,
)
from rldispatch.scenarios.files import load_scenario
from rldispatch.scenarios.presets import make_preset


def mixed_dict():
    data = scenario_to_dict(make_preset("classic", 0))
    data["shared_rides"] = True
    data["drivers"][0]["capacity"] = {"seated": 4, "wheelchair": 1, "stretcher": 0}
    data["drivers"][0]["breaks"] = [{"earliest": 200, "latest": 320, "duration": 30}]
    data["bookings"][0]["load"] = {"wheelchair": 1, "seated": 1}
    data["bookings"][0]["max_ride_min"] = 45
    return data


def test_places_by_kind_breaks_and_ride_limits_are_read():
    day = scenario_from_dict(mixed_dict())
    assert day.shared_rides and day.has_stops
    assert day.drivers[0].capacity == Places(seated=4, wheelchair=1)
    assert day.drivers[0].breaks == (Break(200.0, 320.0, 30.0),)
    assert day.bookings[0].load == Places(seated=1, wheelchair=1)
    assert day.bookings[0].max_ride_min == 45.0


def test_a_plain_integer_means_seated_places():
    day = scenario_from_dict(scenario_to_dict(make_preset("classic", 0)))
    assert day.drivers[1].capacity == Places(seated=1) == 1
    assert day.bookings[0].load.as_tuple() == (1, 0, 0)
    assert not day.has_stops


def test_the_json_form_reads_back_unchanged():
    day = scenario_from_dict(mixed_dict())
    again = scenario_from_dict(json.loads(json.dumps(scenario_to_dict(day))))
    assert again == day
    data = scenario_to_dict(day)
    assert data["drivers"][0]["capacity"] == {"seated": 4, "wheelchair": 1}
    assert data["drivers"][1]["capacity"] == 1, "seated places alone stay a plain integer"


def test_a_day_without_the_new_keys_writes_the_same_json_as_before():
    data = scenario_to_dict(make_preset("geneva", 3))
    assert "shared_rides" not in data
    assert all(set(d) == {"id", "lat", "lon", "shift", "capacity"} for d in data["drivers"])
    assert all("max_ride_min" not in b and isinstance(b["load"], int) for b in data["bookings"])


def broken(edit):
    data = mixed_dict()
    edit(data)
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["drivers"][0]["capacity"].__setitem__("wheelchiar", 1),
            "driver 'd1': capacity: unknown field 'wheelchiar' (did you mean 'wheelchair'?)",
        ),
        (
            lambda d: d["bookings"][0]["load"].__setitem__("strecher", 1),
            "booking 'b1': load: unknown field 'strecher' (did you mean 'stretcher'?)",
        ),
        (
            lambda d: d["drivers"][0]["capacity"].__setitem__("seated", -1),
            "driver 'd1': capacity.seated must be an integer from 0 to 1000",
        ),
        (
            lambda d: d["bookings"][0].__setitem__("load", {"wheelchair": 0}),
            "booking 'b1': load must hold at least one place",
        ),
        (
            lambda d: d["bookings"][0]["load"].__setitem__("seated", 1.5),
            "booking 'b1': load.seated: must be an integer",
        ),
        (
            lambda d: d["bookings"][0].__setitem__("max_ride_min", -3),
            "booking 'b1': max_ride_min: -3.0 is outside",
        ),
        (
            lambda d: d["bookings"][0].__setitem__("max_ride_min", "long"),
            "booking 'b1': max_ride_min: must be a number",
        ),
        (
            lambda d: d["drivers"][0]["breaks"][0].__setitem__("latest", 100),
            "driver 'd1': breaks[0].latest: 100 is before earliest (200)",
        ),
        (
            lambda d: d["drivers"][0]["breaks"][0].__setitem__("duration", 0),
            "driver 'd1': breaks[0].duration: must be positive",
        ),
        (
            lambda d: d["drivers"][0]["breaks"][0].__setitem__("latest", 10_000),
            "driver 'd1': breaks[0].latest: the break would end after the shift",
        ),
        (
            lambda d: d["drivers"][0]["breaks"][0].__setitem__("lenght", 5),
            "driver 'd1': breaks[0]: unknown field 'lenght'",
        ),
        (
            lambda d: d["drivers"][0]["breaks"].append(
                {"earliest": 100, "latest": 120, "duration": 10}
            ),
            "driver 'd1': breaks[1]: breaks must be listed in the order they are taken",
        ),
        (
            lambda d: d["drivers"][0].__setitem__("breaks", {"earliest": 1}),
            "driver 'd1': breaks must be a list",
        ),
        (lambda d: d.__setitem__("shared_rides", "yes"), "shared_rides: must be true or false"),
        (
            lambda d: d.__setitem__("shared_ride", True),
            "(did you mean 'shared_rides'?)",
        ),
    ],
    ids=[
        "unknown-capacity-kind",
        "unknown-load-kind",
        "negative-places",
        "no-place-at-all",
        "fractional-places",
        "negative-ride-limit",
        "text-ride-limit",
        "break-window-reversed",
        "break-of-no-length",
        "break-after-the-shift",
        "unknown-break-field",
        "breaks-out-of-order",
        "breaks-not-a-list",
        "shared-rides-not-a-bool",
        "shared-rides-misspelt",
    ],
)
def test_every_new_key_is_validated_in_one_line(edit, expected):
    assert expected in broken(edit)


def test_the_cli_refuses_an_unknown_kind_in_one_line_with_exit_2(tmp_path, capsys):
    data = mixed_dict()
    data["drivers"][0]["capacity"] = {"wheelchairs": 1}
    path = tmp_path / "day.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError):
        load_scenario(path)
    code = main(["simulate", "--scenario", str(path), "--policy", "insertion"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "did you mean 'wheelchair'?" in err[0] and "Traceback" not in err[0]
