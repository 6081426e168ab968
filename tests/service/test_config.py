"""Service configuration: options over environment variables, bad values named."""

from __future__ import annotations

import pytest

from rldispatch.service.config import (
    DEFAULT_FALLBACK_TIME_LIMIT_S,
    DEFAULT_LOOKAHEAD_BUDGET_MS,
    ENV_FALLBACK_TIME_LIMIT,
    Lookahead,
    ServiceConfig,
    config_environ,
)


def test_fallback_time_limit_defaults_and_zero_means_no_cap() -> None:
    assert ServiceConfig.from_env({}).fallback_time_limit_s == DEFAULT_FALLBACK_TIME_LIMIT_S
    assert ServiceConfig.from_env({ENV_FALLBACK_TIME_LIMIT: "0"}).fallback_time_limit_s is None
    assert ServiceConfig.from_env({ENV_FALLBACK_TIME_LIMIT: "2.5"}).fallback_time_limit_s == 2.5


def test_fallback_time_limit_option_wins_over_the_environment() -> None:
    environ = {ENV_FALLBACK_TIME_LIMIT: "2.5"}
    assert ServiceConfig.from_env(environ, fallback_time_limit_s=0.3).fallback_time_limit_s == 0.3
    assert ServiceConfig.from_env(environ, fallback_time_limit_s=0).fallback_time_limit_s is None


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_bad_fallback_time_limit_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match=ENV_FALLBACK_TIME_LIMIT):
        ServiceConfig.from_env({ENV_FALLBACK_TIME_LIMIT: value})
    with pytest.raises(ValueError, match="fallback-time-limit"):
        ServiceConfig.from_env({}, fallback_time_limit_s=float(value) if value != "soon" else -2)


@pytest.mark.parametrize("seconds", [None, 0.75])
def test_workers_get_the_same_fallback_time_limit(seconds: float | None) -> None:
    config = ServiceConfig(fallback_time_limit_s=seconds)
    assert ServiceConfig.from_env(config_environ(config)).fallback_time_limit_s == seconds


def test_lookahead_is_off_by_default_and_its_budget_has_a_default() -> None:
    config = ServiceConfig.from_env({})
    assert config.lookahead == 0 and config.lookahead_settings is None
    on = ServiceConfig.from_env({"RLDISPATCH_LOOKAHEAD": "3"})
    assert on.lookahead_settings == Lookahead(3, DEFAULT_LOOKAHEAD_BUDGET_MS / 1e3)
    unbounded = ServiceConfig.from_env({}, lookahead=2, lookahead_budget_ms=0)
    assert unbounded.lookahead_settings == Lookahead(2, None)


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"RLDISPATCH_LOOKAHEAD": "three"}, "RLDISPATCH_LOOKAHEAD"),
        ({"RLDISPATCH_LOOKAHEAD": "-1"}, "RLDISPATCH_LOOKAHEAD"),
        ({"RLDISPATCH_LOOKAHEAD_BUDGET_MS": "soon"}, "RLDISPATCH_LOOKAHEAD_BUDGET_MS"),
        ({"RLDISPATCH_LOOKAHEAD_BUDGET_MS": "nan"}, "RLDISPATCH_LOOKAHEAD_BUDGET_MS"),
        ({"RLDISPATCH_LOOKAHEAD_BUDGET_MS": "-5"}, "RLDISPATCH_LOOKAHEAD_BUDGET_MS"),
    ],
)
def test_bad_lookahead_settings_are_refused_by_name(environ: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ServiceConfig.from_env(environ)


def test_workers_get_the_same_lookahead() -> None:
    config = ServiceConfig.from_env({}, lookahead=4, lookahead_budget_ms=250)
    again = ServiceConfig.from_env(config_environ(config))
    assert again.lookahead_settings == Lookahead(4, 0.25)
