"""Lateness shaping: charged at the assignment, refunded when the env charges it."""

from __future__ import annotations

import pytest

from rldispatch.agents.dqn.shaping import (
    shaping_potential,
    unservable_bookings,
)
from rldispatch.env import DispatchEnv
from rldispatch.policies.baselines import make_baseline


def play(policy_name: str, day_seed: int):
    env = DispatchEnv(preset="geneva")
    env.reset(options={"day_seed": day_seed})
    policy = make_baseline(policy_name, seed=0)
    potential = shaping_potential(env, lateness=True, cancellations=True)
    assert potential == 0.0  # nothing planned at the start of the day
    terminated = False
    while not terminated:
        _, reward, terminated, _, _ = env.step(policy.act(env))
        next_potential = shaping_potential(env, True, True, terminated)
        yield env, reward, next_potential - potential
        potential = next_potential


@pytest.mark.parametrize("policy_name", ["random", "nearest"])
def test_shaping_terms_sum_to_zero_over_a_day(policy_name: str) -> None:
    steps = list(play(policy_name, day_seed=11))
    env = steps[-1][0]
    assert sum(shaping for _, _, shaping in steps) == pytest.approx(0.0)
    assert sum(reward for _, reward, _ in steps) == pytest.approx(env.episode_reward)


def test_a_late_pickup_is_charged_before_the_env_charges_it() -> None:
    steps = list(play("random", day_seed=12))
    charged_early = sum(1 for _, _, shaping in steps if shaping < 0)
    assert charged_early > 0
    assert steps[-1][0].sim.late_pickups > 0


def test_planned_late_pickups_counts_only_late_planned_bookings() -> None:
    env = DispatchEnv(preset="geneva")
    env.reset(options={"day_seed": 13})
    policy = make_baseline("random", seed=1)
    for _ in range(40):
        env.step(policy.act(env))
    sim = env.sim
    by_hand = sum(
        1
        for driver, plan in enumerate(sim.plans)
        for k, booking in enumerate(plan)
        if sim.plan_start[driver][k] > sim.requested_min[booking] + 5.0
    )
    assert env.sim.planned_late_count() == by_hand


def test_unservable_bookings_are_visible_ones_with_every_driver_masked() -> None:
    env = DispatchEnv(preset="geneva")
    env.reset(options={"day_seed": 14})
    policy = make_baseline("random", seed=2)
    counts = []
    terminated = False
    while not terminated:
        grid = env.action_masks()[1:].reshape(10, 20)[:, : env.visible.size]
        counts.append(unservable_bookings(env))
        assert counts[-1] == int((~grid.any(axis=0)).sum())
        _, _, terminated, _, _ = env.step(policy.act(env))
    assert max(counts) > 0
