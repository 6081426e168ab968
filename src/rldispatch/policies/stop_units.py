"""The integer units of the OR-Tools models of days of stops (the hindsight plan and
``reopt``'s re-plan): times and costs scaled to integers, and the slack on upper bounds."""

TIME_SCALE = 1000
"""Solver units per minute."""
COST_SCALE = 1000
"""Solver units per reward unit."""
SLACK_UNITS = 100
"""Integer units added to every upper bound (windows, ride limits, shifts, breaks), so that
rounding travel up never makes a plan the simulator accepts look infeasible; the simulator's
replay judges the plan exactly."""
LATE_SPREAD_MIN = 10.0
"""The late-pickup penalty is charged linearly, in full at this many minutes late."""
