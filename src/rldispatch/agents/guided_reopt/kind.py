"""The ``guided-reopt`` kind: ``reopt`` with learned terms in its objective, behind the
agent-kind interface. Training is DAgger on the policy's own days: each day is played by
the current policy, one re-plan in ``label_every`` is kept as a state to label, the day's
states are labelled with their full-information plans (over ``label_jobs`` processes, with a
disk cache), and ``updates_per_day`` Fenchel-Young steps are taken on the states of every
day so far (:mod:`.learning`). With ``trainer="es"`` a linear commit gate (``terms="gate"``)
or the take head (``terms="take"``) learns from the day's reward by evolution strategies
instead (:mod:`.es_learning`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.es_learning import EsLearner
from rldispatch.agents.guided_reopt.features import build_features
from rldispatch.agents.guided_reopt.gate import gate_rows, gate_targets, plan_rank
from rldispatch.agents.guided_reopt.labels import LabelBudget, Labeller, LabelRequest
from rldispatch.agents.guided_reopt.learning import LabelledState, fenchel_young_step, gate_step
from rldispatch.agents.guided_reopt.lookahead import GuidedLookaheadPolicy
from rldispatch.agents.guided_reopt.model_file import (
    FORMAT_NAME,
    GuidedReoptMetadata,
    load_guided_model,
    save_guided_model,
)
from rldispatch.agents.guided_reopt.network import TermNetwork
from rldispatch.agents.guided_reopt.policy import GuidedReoptPolicy
from rldispatch.agents.guided_reopt.search_space import GUIDED_REOPT_SEARCH_SPACE
from rldispatch.agents.guided_reopt.serving import (
    SERVING_RUNTIMES,
    LoadedGuidedModel,
    load_guided_served_model,
)
from rldispatch.agents.kinds import AgentKind, LearnedModel, Learner
from rldispatch.agents.model_container import env_config_from_dict, env_config_to_dict
from rldispatch.agents.search_space import Hyperparameter
from rldispatch.agents.serving import ModelLoadError, ProbeDay
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.policies.ride_model import RideModel, RideProblem
from rldispatch.sim.simulator import OPEN


class GuidedReoptLearner(Learner):
    """DAgger with Fenchel-Young steps through the re-optimiser (see the module docstring)."""

    def __init__(self, config: GuidedReoptConfig, env: DispatchEnv, seed: int) -> None:
        self.config = config
        self.reward = env.config.reward
        torch_seed, rng_seed = (int(v) for v in np.random.SeedSequence(seed).generate_state(2))
        torch.manual_seed(torch_seed)
        self.network = TermNetwork(config.hidden, config.term_names(), config.term_scale)
        self.network.eval()
        self.optimizer = torch.optim.Adam(
            self.network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.rng = np.random.default_rng(rng_seed)
        self.labeller = Labeller(
            self.reward,
            LabelBudget(config.label_solution_limit, config.label_time_limit_s),
            jobs=config.label_jobs,
            cache_dir=config.label_cache or None,
        )
        self.acting = GuidedReoptPolicy(
            self.network,
            horizon_min=config.horizon_min,
            floor_min=config.gate_floor_min,
            take_driver=config.take_driver,
        )
        self.acting.on_replan = self._on_replan
        self.states: list[LabelledState] = []
        self.day_states: list[LabelledState] = []
        self.decisions = 0
        self.replans = 0
        self.updates = 0

    def _on_replan(
        self,
        env: DispatchEnv,
        problem: RideProblem,
        warm_routes: list[list[int]],
        model: RideModel,
        solution: Any,
    ) -> None:
        self.replans += 1
        if solution is None or self.replans % self.config.label_every:
            return
        features = build_features(env.sim, problem)
        if not features.free.size:
            return
        routes = model.booking_routes(solution)
        sim = env.sim
        pickup_of = model.planned_pickup_min(solution)
        driver_of = {b: d for d, route in enumerate(routes) for b in route}
        floor = sim.now_min + self.config.gate_floor_min
        asked = [
            b
            for b in env.visible.tolist()
            if b in driver_of and sim.status[b] == OPEN and pickup_of[b] > floor
        ]
        rows = gate_rows(sim, asked, driver_of, pickup_of, plan_rank(sim, routes))
        state = LabelledState(sim.copy(), features, routes)
        state.gate_bookings = tuple(asked)
        state.gate_drivers = tuple(driver_of[b] for b in asked)
        state.gate_rows = rows
        self.day_states.append(state)
        del warm_routes

    def start_day(self, env: DispatchEnv) -> None:
        self.day_states = []

    def act(self, env: DispatchEnv) -> int:
        self.decisions += 1
        return self.acting.act(env)

    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        """Nothing to store per decision: the states that matter were kept at re-plans."""

    def learn(self) -> None:
        """Learning happens at the end of each day, once its states are labelled."""

    def end_day(self, env: DispatchEnv) -> dict[str, float | None]:
        requests = [
            LabelRequest(state.sim, state.features.end_bookings, state.warm_routes)
            for state in self.day_states
        ]
        for state, label in zip(self.day_states, self.labeller.label(requests), strict=True):
            state.label = label
        self.states += self.day_states
        losses, shares = [], []
        gate_loss = self._gate_steps()
        if self.states and self.config.updates_per_day and self.network.objective_terms:
            fresh = list(range(len(self.states) - len(self.day_states), len(self.states)))
            older = self.rng.integers(0, len(self.states), self.config.updates_per_day)
            order = (fresh + older.tolist())[: self.config.updates_per_day]
            for index in order:
                result = fenchel_young_step(
                    self.acting,
                    self.network,
                    self.optimizer,
                    self.states[index],
                    self.reward,
                    self.config.noise,
                    self.rng,
                )
                self.updates += 1
                losses.append(result.loss)
                shares.append(result.disagreement)
        self.day_states = []
        return {
            "epsilon": None,
            "td_loss": float(np.mean(losses)) if losses else None,
            "q_mean": None,
            "disagreement": float(np.mean(shares)) if shares else None,
            "labelled_states": len(self.states),
            "gate_loss": gate_loss,
        }

    def _gate_steps(self) -> float | None:
        """``gate_steps_per_day`` full-batch steps on the gate rows of every day so far."""
        if "gate" not in self.network.terms or not self.config.gate_steps_per_day:
            return None
        rows, targets = [], []
        for state in self.states:
            if state.label is None or state.gate_rows is None or not state.gate_bookings:
                continue
            driver_of = dict(zip(state.gate_bookings, state.gate_drivers, strict=True))
            rows.append(state.gate_rows)
            targets.append(gate_targets(state.gate_bookings, driver_of, state.label))
        if not rows:
            return None
        table, wanted = np.vstack(rows), np.concatenate(targets)
        losses = [
            gate_step(self.network, self.optimizer, table, wanted, self.config.gate_hold_weight)
            for _ in range(self.config.gate_steps_per_day)
        ]
        return losses[0]

    def policy(self, name: str) -> GuidedReoptPolicy:
        network = copy.deepcopy(self.network)
        network.eval()
        return GuidedReoptPolicy(
            network,
            name=name,
            horizon_min=self.config.horizon_min,
            floor_min=self.config.gate_floor_min,
            take_driver=self.config.take_driver,
        )

    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        config = self.config
        metadata = GuidedReoptMetadata(
            hidden=config.hidden,
            terms=list(config.term_names()),
            term_scale=config.term_scale,
            horizon_min=config.horizon_min,
            gate_floor_min=config.gate_floor_min,
            take_driver=config.take_driver,
            env_config=env_config_to_dict(env_config),
            preset=preset,
            hyperparameters=config.to_dict(),
            training_summary=summary,
        )
        return save_guided_model(path, self.network, metadata)

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        """Network, optimizer, generator and counters. The labelled states hold simulator
        copies, which a checkpoint (tensors and plain values only) cannot: a resumed run
        starts a new aggregate (the labels themselves stay in the disk cache)."""
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "decisions": self.decisions,
            "replans": self.replans,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.decisions = int(state["decisions"])
        self.replans = int(state["replans"])
        self.updates = int(state["updates"])


class GuidedReoptKind(AgentKind):
    name = "guided-reopt"
    summary = "reopt's OR-Tools re-plans with learned booking prizes and plan-end values"
    untrained_start = "reopt exactly"
    config_type = GuidedReoptConfig
    model_format = FORMAT_NAME
    default_days = "fleets"

    def train_env_config(self, max_drivers: int) -> EnvConfig:
        return EnvConfig(max_drivers=max_drivers)

    def play_env_config(self, trained: EnvConfig, days: Sequence[Scenario]) -> EnvConfig:
        most = max((len(day.drivers) for day in days), default=1)
        return replace(trained, max_drivers=most)

    def new_learner(self, config: GuidedReoptConfig, env: DispatchEnv, seed: int) -> Learner:
        if config.trainer == "es":
            return EsLearner(config, env, seed)
        return GuidedReoptLearner(config, env, seed)

    def load_model(self, path: str | Path, name: str | None = None) -> LearnedModel:
        loaded = load_guided_model(path)
        metadata = loaded.metadata
        return LearnedModel(
            kind=self.name,
            policy=GuidedReoptPolicy(
                loaded.network,
                name=name or self.name,
                horizon_min=metadata.horizon_min,
                floor_min=metadata.gate_floor_min,
                take_driver=metadata.take_driver,
            ),
            env_config=env_config_from_dict(metadata.env_config or {}),
            preset=metadata.preset,
            version=metadata.version,
            path=Path(path),
            training_summary=metadata.training_summary,
        )

    def search_space(self) -> Sequence[Hyperparameter]:
        return GUIDED_REOPT_SEARCH_SPACE

    def lookahead_policy(self, model: LearnedModel, candidates: int) -> GuidedLookaheadPolicy:
        """Its own action against the known reward's ``candidates`` best assignments, each
        played on (:mod:`.lookahead`)."""
        policy = model.policy
        assert isinstance(policy, GuidedReoptPolicy)
        return GuidedLookaheadPolicy(policy, candidates)

    serving_runtimes = SERVING_RUNTIMES

    def load_served(self, path: Path, runtime: str, probe_day: ProbeDay) -> LoadedGuidedModel:
        """Its re-plans with the network on NumPy (no probe: a zero network is ``reopt``,
        and the loader checks the weights are finite)."""
        return load_guided_served_model(path, runtime)

    def export_onnx(self, path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
        raise ModelLoadError(
            f"onnx: {path} is a guided-reopt model: its decisions are OR-Tools re-plans, which "
            "ONNX cannot hold (its small network runs on NumPy)"
        )


KIND = GuidedReoptKind()
