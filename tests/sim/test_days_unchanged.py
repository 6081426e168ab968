"""Days without shared rides, breaks or ride limits play exactly as before plans of stops.

``data/figures_before_stops.json`` holds the figures and served routes of three geneva and
three classic days under four policies, from a run of the code before plans of stops (main at
a6d1708, the parent of the change, by ``run_day`` as below); every figure and every route
must come out the same.
"""

import json
from pathlib import Path

import pytest

from rldispatch.cli.common import env_config_for
from rldispatch.env import DispatchEnv
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import make_preset
from rldispatch.sim.stop_simulator import StopDaySimulator
from rldispatch.training.evaluation import run_day

EXPECTED = json.loads((Path(__file__).parent / "data" / "figures_before_stops.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("day_key", sorted({key.rsplit("/", 1)[0] for key in EXPECTED}))
def test_preset_days_play_exactly_as_before(day_key):
    preset, seed = day_key.split("/")
    day = make_preset(preset, int(seed))
    env = DispatchEnv(env_config_for([day]))
    for policy in ("nearest", "insertion", "matching", "reopt"):
        expected = EXPECTED[f"{day_key}/{policy}"]
        played = run_day(make_baseline(policy), env, day)
        assert not isinstance(env.sim, StopDaySimulator)
        assert [list(route) for route in played.routes] == expected["routes"], policy
        figures = played.as_dict()
        for name, value in expected["figures"].items():
            assert figures[name] == pytest.approx(value, rel=1e-9, abs=1e-9), (policy, name)
