"""Where days come from: presets, scenario files, Cordeau instances, company history."""

from rldispatch.scenarios.files import load_scenario, save_scenario
from rldispatch.scenarios.presets import PRESETS, make_preset

__all__ = ["PRESETS", "load_scenario", "make_preset", "save_scenario"]
