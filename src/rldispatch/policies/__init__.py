"""Dispatchers behind one interface: baselines here, the learned policy in ``agents``."""

from rldispatch.policies.base import Policy, assignment_action
from rldispatch.policies.baselines import BASELINES, make_baseline

__all__ = ["BASELINES", "Policy", "assignment_action", "make_baseline"]
