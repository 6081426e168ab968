"""``guided-reopt``'s terms learned from the day's reward: evolution strategies
(``GuidedReoptConfig(trainer="es")``) over the linear commit gate (``terms="gate"``) or the
last layer of the ``take`` head (``terms="take"``).

The vector searched starts at zero, so the start is ``reopt``'s decisions exactly: the linear
gate's weights (:data:`.gate.LINEAR_GATE_FEATURES`, score ``1 + weights @ row``, a planned
booking held open while its score is below 0), or the take head's last layer (``hidden + 1``
weights; the head's hidden layers stay at their initialisation, drawn from the seed). At the
first day of each batch of ``es_batch_days`` training days, ``es_pairs`` Gaussian directions
``eps`` are drawn; on every day of the batch each pair ``vector +- es_sigma * eps`` plays that
day (common random numbers: both twins meet the same bookings), and ``reopt`` plays it once
(deterministic, its reward cached by day, for the ``es/gain_vs_reopt`` record). A pair's
difference ``d = sum over the batch's days of (R(+) - R(-)) / 2`` is ``reopt``-free and the
days' difficulty cancels. At the end of the batch the vector steps by

    es_step * es_sigma * sum_i eps_i * d_i / (n * scale)

with ``scale`` the root mean square of the ``d`` (``es_scale="pair_rms"``) or the standard
deviation of the ``2 n`` twins' batch rewards (``"reward_std"``): the step is in units of the
perturbation whatever the reward's scale (no step when every pair played alike). The training
loop plays the ``+`` twin of the first pair itself; the other plays are spread over
``es_jobs`` processes. No gradient flows through the solver: only played days count, idle-wait
penalty included. ``es_features`` limits the gate's search to some of its features (the
others' perturbations are 0, so their weights stay 0). The loop's evaluations on the selection
days keep the best model, the start (``reopt``) included.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
from rldispatch.agents.guided_reopt.model_file import GuidedReoptMetadata, save_guided_model
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.kinds import Learner
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.parallel import parallel_map, parallel_submit
from rldispatch.policies.reopt import ReoptPolicy


def head_layers(network: TermNetwork, heads: Sequence[str]) -> list[torch.nn.Linear]:
    """The last layer of each of ``heads``."""
    for head in heads:
        if head not in network.terms or not hasattr(network, head):
            raise ValueError(f"heads: {head!r} is not one of the network's heads {network.terms}")
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


def es_vector(network: TermNetwork) -> np.ndarray:
    """The vector evolution strategies search: the linear gate's weights, else the last
    layers of the network's heads."""
    if network.linear_gate:
        return network.linear_weights()
    return get_vector(network, network.terms)


def set_es_vector(network: TermNetwork, vector: np.ndarray) -> None:
    """Write ``vector`` (as :func:`es_vector` lays it out) into ``network``."""
    if network.linear_gate:
        network.set_linear_weights(np.asarray(vector, dtype=np.float64))
    else:
        set_vector(network, network.terms, vector)


def gate_policy(
    weights: np.ndarray, horizon_min: float, floor_min: float, name: str = "guided-reopt"
) -> GuidedReoptPolicy:
    """``guided-reopt`` with a linear gate of ``weights`` and no objective terms."""
    network = TermNetwork(hidden=1, terms=("gate",), gate_form="linear")
    network.set_linear_weights(np.asarray(weights, dtype=np.float64))
    network.eval()
    return GuidedReoptPolicy(network, name=name, horizon_min=horizon_min, floor_min=floor_min)


@dataclass(frozen=True)
class EsPlay:
    """One day to play: the network (None: ``reopt``), the day and the env's config."""

    network: TermNetwork | None
    day: Scenario
    env_config: EnvConfig
    horizon_min: float
    floor_min: float
    take_driver: str = "insertion"


def play_es(task: EsPlay) -> tuple[float, float]:
    """Play ``task``'s day; its reward and the CPU seconds the play took (a module-level
    function: it runs in worker processes)."""
    started = time.process_time()
    if task.network is None:
        policy: Any = ReoptPolicy(horizon_min=task.horizon_min)
    else:
        policy = GuidedReoptPolicy(
            task.network,
            horizon_min=task.horizon_min,
            floor_min=task.floor_min,
            take_driver=task.take_driver,
        )
    env = DispatchEnv(preset=None, scenarios=[task.day], config=task.env_config)
    env.reset(options={"scenario": task.day})
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(policy.act(env))
    return float(env.metrics().reward), time.process_time() - started


def es_direction(
    eps: np.ndarray, differences: np.ndarray, scale: float | None = None
) -> np.ndarray:
    """The normalised antithetic estimate ``sum_i eps_i d_i / (n scale)``; ``scale`` defaults to
    the root mean square of the differences (zeros when it, or every difference, is 0)."""
    eps = np.asarray(eps, dtype=np.float64)
    d = np.asarray(differences, dtype=np.float64)
    if scale is None:
        scale = float(np.sqrt(np.mean(d**2))) if d.size else 0.0
    if scale == 0.0 or not np.any(d):
        return np.zeros(eps.shape[1])
    return (eps * (d / scale)[:, None]).sum(axis=0) / d.size


def es_scale(config: GuidedReoptConfig, plus: np.ndarray, minus: np.ndarray) -> float:
    """The normaliser of an update (``config.es_scale``; the module docstring)."""
    if config.es_scale == "reward_std":
        return float(np.std(np.concatenate([plus, minus])))
    d = (np.asarray(plus) - np.asarray(minus)) / 2.0
    return float(np.sqrt(np.mean(d**2))) if d.size else 0.0


class EsLearner(Learner):
    """Evolution strategies over the linear gate or the take head (the module docstring)."""

    def __init__(self, config: GuidedReoptConfig, env: DispatchEnv, seed: int) -> None:
        self.config = config
        torch_seed = int(np.random.SeedSequence([int(seed), 22]).generate_state(1)[0])
        torch.manual_seed(torch_seed)
        self.network = TermNetwork(
            config.hidden, config.term_names(), config.term_scale, config.gate_form
        )
        self.network.requires_grad_(False)
        self.network.eval()
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 21]))
        self.vector = es_vector(self.network)
        self.mask = np.asarray(config.es_mask()) if self.network.linear_gate else 1.0
        self.directions = np.zeros((config.es_pairs, self.vector.size))
        self.plus = np.zeros(config.es_pairs)
        self.minus = np.zeros(config.es_pairs)
        self.batch_days = 0
        self.reopt_reward: dict[str, float] = {}
        self.decisions = 0
        self.updates = 0
        self.worker_cpu_s = 0.0
        self.main_cpu_before_s = 0.0
        self.main_cpu_start = time.process_time()
        self.acting = self._policy(self.vector)
        self.tasks: list[EsPlay] = []
        self.pending: list[Any] = []

    @property
    def weights(self) -> np.ndarray:
        """The searched vector (the linear gate's weights with ``terms="gate"``)."""
        return self.vector

    def _network(self, vector: np.ndarray) -> TermNetwork:
        network = copy.deepcopy(self.network)
        set_es_vector(network, vector)
        return network

    def _policy(self, vector: np.ndarray, name: str = "guided-reopt") -> GuidedReoptPolicy:
        return GuidedReoptPolicy(
            self._network(vector),
            name=name,
            horizon_min=self.config.horizon_min,
            floor_min=self.config.gate_floor_min,
            take_driver=self.config.take_driver,
        )

    def start_day(self, env: DispatchEnv) -> None:
        """Draw the batch's pairs on its first day; the loop plays the first pair's ``+`` twin,
        the workers (if any) start on the others now."""
        if self.batch_days == 0:
            self.directions = self.rng.standard_normal((self.config.es_pairs, self.vector.size))
            self.directions *= self.mask
            self.plus = np.zeros(self.config.es_pairs)
            self.minus = np.zeros(self.config.es_pairs)
        self.acting = self._policy(self.vector + self.config.es_sigma * self.directions[0])
        self.tasks = self._day_tasks(env)
        self.pending = []
        if self.config.es_jobs > 1:
            self.pending = parallel_submit(play_es, self.tasks, self.config.es_jobs)

    def _day_tasks(self, env: DispatchEnv) -> list[EsPlay]:
        """The day's other plays: the first pair's ``-`` twin, the other pairs, ``reopt``
        when its reward on the day is not known yet."""
        config, day, sigma = self.config, env.scenario, self.config.es_sigma
        vectors = [self.vector - sigma * self.directions[0]]
        for eps in self.directions[1:]:
            vectors += [self.vector + sigma * eps, self.vector - sigma * eps]
        networks: list[TermNetwork | None] = [self._network(v) for v in vectors]
        if day.name not in self.reopt_reward:
            networks.append(None)
        return [
            EsPlay(
                n, day, env.config, config.horizon_min, config.gate_floor_min, config.take_driver
            )
            for n in networks
        ]

    def act(self, env: DispatchEnv) -> int:
        self.decisions += 1
        return self.acting.act(env)

    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        """Nothing per decision: a vector's fitness is its days' reward."""

    def learn(self) -> None:
        """Updates happen at the end of a batch of days (:meth:`end_day`)."""

    def end_day(self, env: DispatchEnv) -> dict[str, float | None]:
        config = self.config
        day = env.scenario
        first = float(env.metrics().reward)
        if self.pending:
            results = [future.result() for future in self.pending]
            self.worker_cpu_s += sum(cpu for _, cpu in results)
        else:
            results = parallel_map(play_es, self.tasks, 1)
        self.pending = []
        plays = 2 * config.es_pairs - 1
        rewards = [first] + [reward for reward, _ in results[:plays]]
        if day.name not in self.reopt_reward:
            self.reopt_reward[day.name] = results[-1][0]
        baseline = self.reopt_reward[day.name]
        pairs = np.asarray(rewards).reshape(config.es_pairs, 2)
        self.plus = self.plus + pairs[:, 0]
        self.minus = self.minus + pairs[:, 1]
        self.batch_days += 1
        if self.batch_days >= config.es_batch_days:
            self._update()
        return {
            "epsilon": None,
            "td_loss": None,
            "q_mean": None,
            "es_gain": float(np.mean(rewards) - baseline),
            "es_spread": float(np.mean(np.abs(pairs[:, 0] - pairs[:, 1]))),
            "es_weight_norm": float(np.linalg.norm(self.vector)),
            "es_updates": self.updates,
            "cpu_minutes": self.cpu_seconds() / 60.0,
        }

    def _update(self) -> None:
        differences = (self.plus - self.minus) / 2.0
        scale = es_scale(self.config, self.plus, self.minus)
        step = es_direction(self.directions, differences, scale)
        self.vector = self.vector + self.config.es_step * self.config.es_sigma * step
        set_es_vector(self.network, self.vector)
        self.batch_days = 0
        self.updates += 1

    def cpu_seconds(self) -> float:
        """CPU time of the training so far: this process and the worker processes' plays."""
        main = self.main_cpu_before_s + time.process_time() - self.main_cpu_start
        return main + self.worker_cpu_s

    def policy(self, name: str) -> GuidedReoptPolicy:
        return self._policy(self.vector.copy(), name)

    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        config = self.config
        network = self._network(self.vector)
        linear = network.linear_gate
        training_summary = {
            **summary,
            "trainer": "es",
            "es_updates": self.updates,
            "cpu_minutes": self.cpu_seconds() / 60.0,
        }
        if linear:
            training_summary["gate_weights"] = dict(
                zip(LINEAR_GATE_FEATURES, self.vector.tolist(), strict=True)
            )
        metadata = GuidedReoptMetadata(
            hidden=config.hidden,
            terms=list(network.terms),
            term_scale=config.term_scale,
            horizon_min=config.horizon_min,
            gate_floor_min=config.gate_floor_min,
            take_driver=config.take_driver,
            gate_form=network.gate_form if "gate" in network.terms else "mlp",
            linear_gate_features=list(LINEAR_GATE_FEATURES) if linear else [],
            env_config=env_config_to_dict(env_config),
            preset=preset,
            hyperparameters=config.to_dict(),
            training_summary=training_summary,
        )
        return save_guided_model(path, network, metadata)

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """The vector, the generator, the batch's directions and rewards so far, ``reopt``'s
        cached rewards and the counters (plain values: a resumed run goes on as an
        uninterrupted one; the take head's hidden layers come from the seed)."""
        return {
            "vector": self.vector.tolist(),
            "rng": self.rng.bit_generator.state,
            "directions": self.directions.tolist(),
            "plus": self.plus.tolist(),
            "minus": self.minus.tolist(),
            "batch_days": self.batch_days,
            "reopt_reward": dict(self.reopt_reward),
            "decisions": self.decisions,
            "updates": self.updates,
            "cpu_s": self.cpu_seconds(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vector = np.asarray(state["vector"], dtype=np.float64)
        if vector.shape != self.vector.shape:
            raise ValueError(f"es vector: {self.vector.size} values expected")
        directions = np.asarray(state["directions"], dtype=np.float64)
        if directions.shape != self.directions.shape:
            raise ValueError(f"es directions: shape {self.directions.shape} expected")
        self.vector = vector
        set_es_vector(self.network, vector)
        self.rng.bit_generator.state = state["rng"]
        self.directions = directions
        self.plus = np.asarray(state["plus"], dtype=np.float64)
        self.minus = np.asarray(state["minus"], dtype=np.float64)
        self.batch_days = int(state["batch_days"])
        self.reopt_reward = {str(k): float(v) for k, v in state["reopt_reward"].items()}
        self.decisions = int(state["decisions"])
        self.updates = int(state["updates"])
        self.main_cpu_before_s = float(state["cpu_s"])
        self.main_cpu_start = time.process_time()
        self.worker_cpu_s = 0.0
