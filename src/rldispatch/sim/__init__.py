"""The simulation of one service day: travel model, fleet state, events, metrics."""

from rldispatch.sim.metrics import DayMetrics
from rldispatch.sim.simulator import DaySimulator, InsertionTable
from rldispatch.sim.travel import TravelModel

__all__ = ["DayMetrics", "DaySimulator", "InsertionTable", "TravelModel"]
