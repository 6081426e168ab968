"""Environment steps per second with masked random actions, next to CartPole in the same run.

    python bench/env_speed.py [--seconds 10] [--json OUT]

Runs on one core (the process is pinned to CPU 0 where the OS allows it). Resets are part of
the measured time, as in training; each preset draws a new day per episode.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json


def masked_random_steps_per_second(env: DispatchEnv, seconds: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                _, info = env.reset()
    return steps / (time.perf_counter() - started)


def cartpole_steps_per_second(seconds: float, seed: int = 0) -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    # Compile the simulator's kernels before timing.
    masked_random_steps_per_second(DispatchEnv(preset="classic"), 0.5)
    results = {"cartpole": cartpole_steps_per_second(args.seconds)}
    for preset in ("classic", "geneva"):
        results[preset] = masked_random_steps_per_second(DispatchEnv(preset=preset), args.seconds)
    print(f"{'environment':<22}{'steps/s':>12}{'vs CartPole':>14}")
    for name, rate in results.items():
        label = "CartPole-v1" if name == "cartpole" else f"Dispatch-v0 {name}"
        print(f"{label:<22}{rate:>12,.0f}{rate / results['cartpole']:>13.3f}x")
    if args.json:
        atomic_write_json(args.json, results)  # its folder created if need be


if __name__ == "__main__":
    main()
