"""Learning ``guided-reopt``'s terms from the day's reward: evolution strategies over the last
layer of chosen heads, the solver in the loop.

Imitating full-information plans did not beat ``reopt`` (docs/guided_reopt.md): a label says
what an oracle would do, not what pays for a policy that does not know the future. Here the
signal is the reward itself. The hidden layers of each head stay as initialised (random
features of the state, fixed by the seed); the vector learned is the last layer of the chosen
heads (``hidden + 1`` weights each), which starts at zero, so the start is ``reopt`` exactly.

Each iteration draws ``pairs`` Gaussian directions ``e`` and plays ``theta + sigma * e`` and
``theta - sigma * e`` on the same ``days_per_iteration`` training days (common random numbers:
a day's own difficulty cancels in the pair's difference). The step is the antithetic estimate
``sum_k (F(theta + sigma e_k) - F(theta - sigma e_k)) e_k``, its differences divided by their
spread, times ``step_size * sigma / pairs``. Every ``select_every`` iterations ``theta`` plays the
selection days; the model kept is the best there, the start (``reopt``) included, so training
returns ``reopt`` unless some iterate beat it on the selection days.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rldispatch.agents.guided_reopt.network import ALL_TERMS, TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.training.evaluation import run_day
from rldispatch.training.threads import single_threaded_numerics


def head_layers(network: TermNetwork, heads: Sequence[str]) -> list[torch.nn.Linear]:
    """The last layer of each of ``heads``."""
    for head in heads:
        if head not in network.terms:
            raise ValueError(f"heads: {head!r} is not one of the network's terms {network.terms}")
    return [getattr(network, head)[-1] for head in heads]


def get_vector(network: TermNetwork, heads: Sequence[str]) -> np.ndarray:
    """The last layers of ``heads`` as one vector (weights then bias, head by head)."""
    parts = []
    for layer in head_layers(network, heads):
        parts += [layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy().ravel()]
    return np.concatenate(parts).astype(np.float64)


def set_vector(network: TermNetwork, heads: Sequence[str], vector: np.ndarray) -> None:
    """Write ``vector`` (as :func:`get_vector` lays it out) into the last layers of ``heads``."""
    layers = head_layers(network, heads)
    size = sum(layer.weight.numel() + layer.bias.numel() for layer in layers)
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (size,):
        raise ValueError(f"vector: needs {size} values for heads {list(heads)}, got {vector.shape}")
    at = 0
    with torch.no_grad():
        for layer in layers:
            for tensor in (layer.weight, layer.bias):
                n = tensor.numel()
                tensor.copy_(torch.as_tensor(vector[at : at + n].reshape(tensor.shape)))
                at += n


@dataclass(frozen=True)
class EvolutionSettings:
    """Evolution strategies' settings (module docstring).

    :param heads: the heads whose last layer is learned (``prize``, ``value``, ``gate``,
        ``take``).
    :param sigma: standard deviation of a perturbation of each weight.
    :param pairs: antithetic pairs of perturbations per iteration.
    :param days_per_iteration: training days each perturbation plays (the same for all).
    :param step_size: the step, in units of ``sigma``.
    :param iterations: iterations at most.
    :param max_seconds: wall-time budget (None: none); checked between iterations.
    :param select_every: iterations between plays of the selection days.
    :param jobs: worker processes playing days.
    :param seed: seed of the perturbations.
    """

    heads: tuple[str, ...] = ("value",)
    sigma: float = 0.2
    pairs: int = 3
    days_per_iteration: int = 2
    step_size: float = 0.5
    iterations: int = 20
    max_seconds: float | None = None
    select_every: int = 2
    jobs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.heads or not set(self.heads) <= set(ALL_TERMS):
            raise ValueError(f"heads: needs one or more of {ALL_TERMS}, got {self.heads!r}")
        for name in ("sigma", "step_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)!r}")
        for name in ("pairs", "days_per_iteration", "iterations", "select_every", "jobs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds: must be positive or None, got {self.max_seconds!r}")


@dataclass
class EvolutionResult:
    """What a run of :func:`evolve` gives: the best vector on the selection days (the start
    unless an iterate beat it), the last one, and a row per iteration."""

    best_vector: np.ndarray
    best_selection_reward: float
    start_selection_reward: float
    best_iteration: int
    final_vector: np.ndarray
    history: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0

    def summary(self) -> dict:
        return {
            "best_iteration": self.best_iteration,
            "best_selection_reward": self.best_selection_reward,
            "start_selection_reward": self.start_selection_reward,
            "iterations": len(self.history),
            "wall_time_s": self.wall_time_s,
            "history": self.history,
        }


def antithetic_step(
    plus: np.ndarray, minus: np.ndarray, directions: np.ndarray, sigma: float, step_size: float
) -> np.ndarray:
    """The step of one iteration: ``plus[k]``, ``minus[k]`` are the rewards of ``theta +- sigma *
    directions[k]`` (summed over the same days). Zero when every pair scores level."""
    diff = np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)
    spread = float(np.std(np.concatenate([plus, minus])))
    if spread == 0.0 or not np.any(diff):
        return np.zeros(directions.shape[1])
    weights = diff / (2.0 * spread)
    return step_size * sigma * (weights @ directions) / len(diff)


def _init_worker() -> None:
    single_threaded_numerics(1)


def _play(task: tuple[GuidedReoptPolicy, Scenario]) -> float:
    policy, day = task
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=len(day.drivers)))
    return float(run_day(policy, env, day).reward)


class _Players:
    """Plays (vector, day) tasks, in this process or over ``jobs`` worker processes."""

    def __init__(self, network: TermNetwork, heads: Sequence[str], jobs: int) -> None:
        self.network = copy.deepcopy(network)
        self.heads = tuple(heads)
        self.pool = ProcessPoolExecutor(jobs, initializer=_init_worker) if jobs > 1 else None

    def rewards(self, tasks: list[tuple[np.ndarray, Scenario]]) -> list[float]:
        played = []
        for vector, day in tasks:
            network = copy.deepcopy(self.network)
            set_vector(network, self.heads, vector)
            network.requires_grad_(False)
            played.append((GuidedReoptPolicy(network), day))
        if self.pool is None:
            return [_play(task) for task in played]
        return list(self.pool.map(_play, played))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def evolve(
    network: TermNetwork,
    training_days: Callable[[int], list[Scenario]],
    selection_days: Sequence[Scenario],
    settings: EvolutionSettings,
    log: Callable[[str], None] | None = None,
) -> EvolutionResult:
    """Evolution strategies on ``network``'s heads (module docstring); the network is left as
    it was. ``training_days(k)`` gives iteration ``k``'s days (``days_per_iteration`` of them).
    """
    started = time.perf_counter()
    heads = settings.heads
    theta = get_vector(network, heads)
    rng = np.random.default_rng([settings.seed, 31])
    players = _Players(network, heads, settings.jobs)
    selection = list(selection_days)
    try:

        def select(vector: np.ndarray) -> float:
            if not selection:
                return 0.0
            return float(np.mean(players.rewards([(vector, day) for day in selection])))

        start_reward = select(theta)
        best = (start_reward, 0, theta.copy())
        history: list[dict] = []
        for iteration in range(1, settings.iterations + 1):
            if (
                settings.max_seconds is not None
                and time.perf_counter() - started > settings.max_seconds
            ):
                break
            days = training_days(iteration - 1)
            if len(days) != settings.days_per_iteration:
                raise ValueError(
                    f"training_days: gave {len(days)} days, days_per_iteration is "
                    f"{settings.days_per_iteration}"
                )
            directions = rng.standard_normal((settings.pairs, theta.size))
            tasks = []
            for direction in directions:
                for sign in (1.0, -1.0):
                    vector = theta + sign * settings.sigma * direction
                    tasks += [(vector, day) for day in days]
            rewards = np.asarray(players.rewards(tasks)).reshape(settings.pairs, 2, len(days))
            plus, minus = rewards[:, 0].sum(axis=1), rewards[:, 1].sum(axis=1)
            theta = theta + antithetic_step(
                plus, minus, directions, settings.sigma, settings.step_size
            )
            row = {
                "iteration": iteration,
                "days": [day.name for day in days],
                "mean_reward": float(rewards.mean()),
                "pair_differences": (plus - minus).tolist(),
                "theta_norm": float(np.linalg.norm(theta)),
                "seconds": time.perf_counter() - started,
            }
            if iteration % settings.select_every == 0 and selection:
                row["selection_reward"] = select(theta)
                if row["selection_reward"] > best[0]:
                    best = (row["selection_reward"], iteration, theta.copy())
            history.append(row)
            if log is not None:
                log(
                    f"iteration {iteration}: mean {row['mean_reward']:.1f}, |theta| "
                    f"{row['theta_norm']:.3f}"
                    + (
                        f", selection {row['selection_reward']:.1f} (start {start_reward:.1f})"
                        if "selection_reward" in row
                        else ""
                    )
                )
    finally:
        players.close()
    return EvolutionResult(
        best_vector=best[2],
        best_selection_reward=best[0],
        start_selection_reward=start_reward,
        best_iteration=best[1],
        final_vector=theta,
        history=history,
        wall_time_s=time.perf_counter() - started,
    )


def settings_dict(settings: EvolutionSettings) -> dict:
    """``settings`` as plain values (for a model file's metadata)."""
    values = asdict(settings)
    values["heads"] = list(settings.heads)
    return values
