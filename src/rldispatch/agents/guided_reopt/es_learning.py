"""The commit gate learned from the day's reward: evolution strategies over the linear gate's
weights (``GuidedReoptConfig(trainer="es", terms="gate")``).

The gate (:data:`.gate.LINEAR_GATE_FEATURES`, score ``1 + weights @ row``, a planned booking
held open while its score is below 0) starts at zero weights: ``reopt``'s decisions. Each
training day, ``es_pairs`` antithetic pairs of perturbed gates ``weights +- es_sigma * eps``
play that same day (common random numbers: both twins of a pair meet the same bookings), and
``reopt`` plays it once (deterministic, cached by day). The fitness of a gate is its reward
minus ``reopt``'s on the day; a pair's difference ``d = (f(+) - f(-)) / 2`` is ``reopt``-free
and its day's difficulty cancels. Every ``es_batch_days`` days the weights step along

    sum_i eps_i * d_i / (n * rms(d))

times ``es_step``: the antithetic estimate of the gradient of the expected reward,
normalised by the spread of the differences so that the step is in units of the
perturbation whatever the reward's scale (no step when every pair played alike). The
training loop plays the ``+`` twin of the day's first pair itself; the other plays are spread
over ``es_jobs`` processes. No gradient flows through the solver: only played days count,
idle-wait penalty included. ``es_features`` limits the search to some of the features (the
others' perturbations are 0, so their weights stay 0).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
from rldispatch.agents.guided_reopt.model_file import GuidedReoptMetadata, save_guided_model
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.kinds import Learner
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.training.evaluation import run_day
from rldispatch.training.parallel import parallel_map, parallel_submit


@dataclass(frozen=True)
class GatePlay:
    """One day to play: the gate's weights (None: ``reopt``), the day and the env's config."""

    weights: tuple[float, ...] | None
    day: Scenario
    env_config: EnvConfig
    horizon_min: float
    floor_min: float


def gate_policy(
    weights: np.ndarray, horizon_min: float, floor_min: float, name: str = "guided-reopt"
) -> GuidedReoptPolicy:
    """``guided-reopt`` with a linear gate of ``weights`` and no objective terms."""
    network = TermNetwork(hidden=1, terms=("gate",), gate_form="linear")
    network.set_linear_weights(np.asarray(weights, dtype=np.float64))
    network.eval()
    return GuidedReoptPolicy(network, name=name, horizon_min=horizon_min, floor_min=floor_min)


def play_gate(task: GatePlay) -> tuple[float, float]:
    """Play ``task``'s day; its reward and the CPU seconds the play took (a module-level
    function: it runs in worker processes)."""
    started = time.process_time()
    if task.weights is None:
        policy: Any = ReoptPolicy(horizon_min=task.horizon_min)
    else:
        policy = gate_policy(np.asarray(task.weights), task.horizon_min, task.floor_min)
    env = DispatchEnv(preset=None, scenarios=[task.day], config=task.env_config)
    played = run_day(policy, env, task.day)
    return float(played.reward), time.process_time() - started


def es_direction(eps: np.ndarray, differences: np.ndarray) -> np.ndarray:
    """The normalised antithetic estimate ``sum_i eps_i d_i / (n rms(d))`` (zeros when every
    difference is 0)."""
    eps = np.asarray(eps, dtype=np.float64)
    d = np.asarray(differences, dtype=np.float64)
    rms = float(np.sqrt(np.mean(d**2))) if d.size else 0.0
    if rms == 0.0:
        return np.zeros(eps.shape[1])
    return (eps * (d / rms)[:, None]).sum(axis=0) / d.size


class EsGateLearner(Learner):
    """Evolution strategies over the linear gate's weights (the module docstring)."""

    def __init__(self, config: GuidedReoptConfig, env: DispatchEnv, seed: int) -> None:
        self.config = config
        self.network = TermNetwork(config.hidden, ("gate",), config.term_scale, "linear")
        self.network.eval()
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 21]))
        self.weights = np.zeros(len(LINEAR_GATE_FEATURES))
        self.eps_batch: list[list[float]] = []
        self.diff_batch: list[float] = []
        self.reopt_reward: dict[str, float] = {}
        self.decisions = 0
        self.updates = 0
        self.worker_cpu_s = 0.0
        self.main_cpu_before_s = 0.0
        self.main_cpu_start = time.process_time()
        self.day_eps = np.zeros((config.es_pairs, len(LINEAR_GATE_FEATURES)))
        self.acting = self._policy(self.weights)
        self.pending: list[Any] = []

    def _policy(self, weights: np.ndarray, name: str = "guided-reopt") -> GuidedReoptPolicy:
        return gate_policy(weights, self.config.horizon_min, self.config.gate_floor_min, name)

    def start_day(self, env: DispatchEnv) -> None:
        """Draw the day's pairs; the loop plays the first pair's ``+`` twin, the workers (if
        any) start on the others now."""
        self.day_eps = self.rng.standard_normal((self.config.es_pairs, self.weights.size))
        self.day_eps *= np.asarray(self.config.es_mask())
        self.acting = self._policy(self.weights + self.config.es_sigma * self.day_eps[0])
        self.tasks = self._day_tasks(env)
        self.pending = []
        if self.config.es_jobs > 1:
            self.pending = parallel_submit(play_gate, self.tasks, self.config.es_jobs)

    def _day_tasks(self, env: DispatchEnv) -> list[GatePlay]:
        """The day's other plays: the first pair's ``-`` twin, the other pairs, ``reopt``
        when its reward on the day is not known yet."""
        config, day, sigma = self.config, env.scenario, self.config.es_sigma
        plays = [self.weights - sigma * self.day_eps[0]]
        for eps in self.day_eps[1:]:
            plays += [self.weights + sigma * eps, self.weights - sigma * eps]
        weights: list[tuple[float, ...] | None] = [tuple(w.tolist()) for w in plays]
        if day.name not in self.reopt_reward:
            weights.append(None)
        return [
            GatePlay(w, day, env.config, config.horizon_min, config.gate_floor_min) for w in weights
        ]

    def act(self, env: DispatchEnv) -> int:
        self.decisions += 1
        return self.acting.act(env)

    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        """Nothing per decision: a gate's fitness is its day's reward."""

    def learn(self) -> None:
        """Updates happen at the end of a day (:meth:`end_day`)."""

    def end_day(self, env: DispatchEnv) -> dict[str, float | None]:
        config = self.config
        day = env.scenario
        first = float(env.metrics().reward)
        if self.pending:
            results = [future.result() for future in self.pending]
            self.worker_cpu_s += sum(cpu for _, cpu in results)
        else:
            results = parallel_map(play_gate, self.tasks, 1)
        self.pending = []
        plays = 2 * config.es_pairs - 1
        rewards = [first] + [reward for reward, _ in results[:plays]]
        if day.name not in self.reopt_reward:
            self.reopt_reward[day.name] = results[-1][0]
        baseline = self.reopt_reward[day.name]
        pairs = np.asarray(rewards).reshape(config.es_pairs, 2)
        for eps, (plus, minus) in zip(self.day_eps, pairs, strict=True):
            self.eps_batch.append(eps.tolist())
            self.diff_batch.append((plus - minus) / 2.0)
        if len(self.diff_batch) >= config.es_pairs * config.es_batch_days:
            self._update()
        return {
            "epsilon": None,
            "td_loss": None,
            "q_mean": None,
            "es_gain": float(np.mean(rewards) - baseline),
            "es_spread": float(np.mean(np.abs(pairs[:, 0] - pairs[:, 1]))),
            "es_weight_norm": float(np.linalg.norm(self.weights)),
            "es_updates": self.updates,
            "cpu_minutes": self.cpu_seconds() / 60.0,
        }

    def _update(self) -> None:
        step = es_direction(np.asarray(self.eps_batch), np.asarray(self.diff_batch))
        self.weights = self.weights + self.config.es_step * self.config.es_sigma * step
        self.network.set_linear_weights(self.weights)
        self.eps_batch, self.diff_batch = [], []
        self.updates += 1

    def cpu_seconds(self) -> float:
        """CPU time of the training so far: this process and the worker processes' plays."""
        main = self.main_cpu_before_s + time.process_time() - self.main_cpu_start
        return main + self.worker_cpu_s

    def policy(self, name: str) -> GuidedReoptPolicy:
        return self._policy(self.weights.copy(), name)

    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        config = self.config
        metadata = GuidedReoptMetadata(
            hidden=config.hidden,
            terms=["gate"],
            term_scale=config.term_scale,
            horizon_min=config.horizon_min,
            gate_floor_min=config.gate_floor_min,
            gate_form="linear",
            linear_gate_features=list(LINEAR_GATE_FEATURES),
            env_config=env_config_to_dict(env_config),
            preset=preset,
            hyperparameters=config.to_dict(),
            training_summary={
                **summary,
                "trainer": "es",
                "es_updates": self.updates,
                "cpu_minutes": self.cpu_seconds() / 60.0,
                "gate_weights": dict(zip(LINEAR_GATE_FEATURES, self.weights.tolist(), strict=True)),
            },
        )
        network = copy.deepcopy(self.network)
        network.set_linear_weights(self.weights)
        return save_guided_model(path, network, metadata)

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """The weights, the generator, the update's pairs so far, ``reopt``'s cached rewards
        and the counters (plain values: a resumed run goes on as an uninterrupted one)."""
        return {
            "weights": self.weights.tolist(),
            "rng": self.rng.bit_generator.state,
            "eps_batch": [list(e) for e in self.eps_batch],
            "diff_batch": list(self.diff_batch),
            "reopt_reward": dict(self.reopt_reward),
            "decisions": self.decisions,
            "updates": self.updates,
            "cpu_s": self.cpu_seconds(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = np.asarray(state["weights"], dtype=np.float64)
        if weights.shape != self.weights.shape:
            raise ValueError(f"gate weights: {self.weights.size} values expected")
        self.weights = weights
        self.network.set_linear_weights(weights)
        self.rng.bit_generator.state = state["rng"]
        self.eps_batch = [list(e) for e in state["eps_batch"]]
        self.diff_batch = [float(d) for d in state["diff_batch"]]
        self.reopt_reward = {str(k): float(v) for k, v in state["reopt_reward"].items()}
        self.decisions = int(state["decisions"])
        self.updates = int(state["updates"])
        self.main_cpu_before_s = float(state["cpu_s"])
        self.main_cpu_start = time.process_time()
        self.worker_cpu_s = 0.0
