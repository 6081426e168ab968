"""DQNConfig: defaults, validation naming the field, JSON round trip."""

from __future__ import annotations

import json

import pytest

from rldispatch.agents.dqn.config import DQNConfig, load_config, save_config


def test_defaults_are_valid_and_describe_the_prototype_network() -> None:
    config = DQNConfig()
    assert config.hidden_sizes == (512, 256, 128)
    assert config.buffer_size == 100_000
    assert config.double_dqn


def test_every_field_has_a_help_string() -> None:
    for name in DQNConfig().to_dict():
        assert DQNConfig.help(name)


def test_dict_round_trip_keeps_every_field() -> None:
    config = DQNConfig(learning_rate=1e-3, hidden_sizes=(64, 32), dueling=True, n_step=3)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["hidden_sizes"] == [64, 32]
    assert DQNConfig.from_dict(data) == config


def test_unknown_key_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dqn.learning_rat: unknown hyperparameter"):
        DQNConfig.from_dict({"learning_rat": 1e-3})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 1.5),
        ("batch_size", 0),
        ("batch_size", 3.5),
        ("learning_rate", 0.0),
        ("tau", 0.0),
        ("epsilon_end", -0.1),
        ("hidden_sizes", (64, 0)),
        ("dueling", "yes"),
        ("n_step", 0),
        ("max_grad_norm", float("nan")),
    ],
)
def test_bad_value_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"dqn.{field}:"):
        DQNConfig.from_dict({field: value})


def test_batch_larger_than_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DQNConfig(batch_size=64, buffer_size=32)


def test_integral_floats_from_json_become_ints() -> None:
    config = DQNConfig.from_dict({"batch_size": 32.0})
    assert config.batch_size == 32 and isinstance(config.batch_size, int)


def test_saved_config_loads_back(tmp_path) -> None:
    config = DQNConfig(gamma=0.95, target_update_interval=500)
    path = save_config(tmp_path / "optimal_config.json", config)
    assert load_config(path) == config


def test_config_file_errors_name_the_file_and_field(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"gamma": 2}')
    with pytest.raises(ValueError, match=r"bad.json: dqn.gamma"):
        load_config(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON config"):
        load_config(path)
