"""The company's reward weights as a file: read, validated in one line, compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rldispatch.rewards import RewardConfig
from rldispatch.rewards_file import (
    RewardFileError,
    differing_weights,
    load_reward_file,
    reward_from_dict,
    reward_to_dict,
)


def test_a_file_sets_the_weights_it_names_and_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"late_pickup_penalty": 10, "km_cost": 0.25}))
    weights = load_reward_file(path)
    assert weights.late_pickup_penalty == 10.0
    assert weights.km_cost == 0.25
    assert weights.assignment_bonus == RewardConfig().assignment_bonus


def test_an_unknown_field_is_named_with_the_closest_known_one() -> None:
    with pytest.raises(
        RewardFileError, match="late_pickup_penalt'.*did you mean 'late_pickup_penalty'"
    ):
        reward_from_dict({"late_pickup_penalt": 3})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, r"in \[0, 1,000,000\]"),
        (float("nan"), "finite"),
        ("5", "must be a number"),
        (True, "must be a number"),
        (1e9, r"in \[0, 1,000,000\]"),
    ],
)
def test_a_weight_out_of_bounds_or_not_a_number_is_refused_naming_it(value, message) -> None:
    with pytest.raises(RewardFileError, match=rf"reward\.km_cost: .*{message}"):
        reward_from_dict({"km_cost": value})


def test_a_file_that_is_not_json_or_missing_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{late: 1")
    with pytest.raises(RewardFileError, match="not valid JSON"):
        load_reward_file(broken)
    with pytest.raises(RewardFileError, match="no such reward file"):
        load_reward_file(tmp_path / "absent.json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(RewardFileError, match="must be a JSON object"):
        load_reward_file(listed)


def test_the_weights_round_trip_and_their_differences_are_named() -> None:
    weights = RewardConfig(late_pickup_penalty=10.0)
    assert reward_from_dict(reward_to_dict(weights)) == weights
    assert differing_weights(RewardConfig(), weights) == ["late_pickup_penalty 5 -> 10"]
    assert differing_weights(weights, weights) == []
