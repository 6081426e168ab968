"""The pairwise kind: one Q-network for any fleet, behind the agent-kind interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rldispatch.agents.double_dqn import ReplayLearner, linear_epsilon
from rldispatch.agents.kinds import AgentKind, LearnedModel, Learner
from rldispatch.agents.model_container import env_config_from_dict, env_config_to_dict
from rldispatch.agents.pairwise.agent import PairDQNAgent, greedy_candidate
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.agents.pairwise.features import FeatureBuilder, PairState
from rldispatch.agents.pairwise.lookahead import LookaheadPolicy
from rldispatch.agents.pairwise.model_file import (
    FORMAT_NAME,
    PairwiseMetadata,
    PairwiseModelError,
    load_pairwise_model,
    save_pairwise_model,
)
from rldispatch.agents.pairwise.onnx_export import FORMAT as ONNX_FORMAT
from rldispatch.agents.pairwise.onnx_export import (
    OnnxPairQ,
    export_pairwise_onnx_bytes,
    max_difference_on_days,
)
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.replay import PairReplayBuffer
from rldispatch.agents.pairwise.reward import TrainingReward
from rldispatch.agents.pairwise.search_space import PAIRWISE_SEARCH_SPACE
from rldispatch.agents.pairwise.serving import (
    PAIRWISE_RUNTIMES,
    LoadedPairwiseQModel,
    load_pairwise_q_model,
)
from rldispatch.agents.search_space import Hyperparameter
from rldispatch.agents.serving import ModelLoadError, ProbeDay
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig


class PairwiseLearner(ReplayLearner):
    """The pairwise agent in training: epsilon-greedy over waiting and the candidate pairs,
    a day stored with n-step returns once it is over, a gradient step every
    ``train_frequency`` decisions. The target network (a Polyak average of the online one)
    is the one evaluated and saved."""

    def __init__(self, config: PairwiseConfig, env: DispatchEnv, seed: int) -> None:
        self.config = config
        env_config = env.config
        agent_seed, buffer_seed, self.rng_seed = (
            int(v) for v in np.random.SeedSequence(seed).generate_state(3)
        )
        self.features = FeatureBuilder(config.candidates_per_booking)
        self.reward = TrainingReward(
            env_config.reward,
            config.shaping_weight,
            config.reward_scale,
            planned_late=self.features.planned_late,
        )
        known = self.reward.known_reward(config.known_reward_weight)
        self.agent = PairDQNAgent(config, seed=agent_seed, known_reward=known)
        max_pairs = env_config.visible_slots * config.candidates_per_booking
        self.buffer = PairReplayBuffer(
            config.buffer_size,
            env_config.max_drivers,
            env_config.visible_slots,
            max_pairs,
            seed=buffer_seed,
        )
        self.greedy = PairwisePolicy(
            self.agent.target_network, candidates_per_booking=config.candidates_per_booking
        )
        self.decisions = 0
        self._start_day()

    def _start_day(self) -> None:
        self.states: list[PairState] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.losses: list[float] = []
        self.q_means: list[float] = []
        self.state: PairState | None = None
        self.candidate = -1

    def pretrain(self, env: DispatchEnv, day: Callable[[int], Scenario]) -> None:
        """With ``imitation_days``, DAgger on the hindsight plans of the first training days
        (:mod:`rldispatch.agents.pairwise.imitation_loop`) before the reinforcement learning."""
        config = self.config
        if not config.imitation_days:
            return
        from rldispatch.agents.pairwise.imitation_loop import ImitationSettings, imitate

        settings = ImitationSettings(
            rounds=config.imitation_rounds,
            time_limit_s=config.imitation_time_limit_s,
            temperature=config.imitation_temperature,
            target=config.imitation_target,
            search=config.imitation_search,
            learning_rate=config.imitation_learning_rate,
            anchor=config.imitation_anchor,
            candidates=config.imitation_candidates,
            label_every=config.imitation_label_every,
        )
        days = [day(k) for k in range(config.imitation_days)]
        seed = int(self.rng_seed)
        self.imitation_stats = imitate(self.agent, self.features, env, days, settings, seed)

    def prepare(self, env: DispatchEnv, day: Scenario) -> None:
        """Start the state value at the discounted value of the average step of a greedy
        day (played on ``day``, not stored), so the first updates refine it rather than
        spend thousands of steps climbing to its scale."""
        env.reset(options={"scenario": day})
        self.reward.start(env)
        rewards = []
        terminated = env.sim.done
        while not terminated:
            state = self.features.build(env)
            action = state.action(greedy_candidate(self.agent.q_function, state))
            _, reward, terminated, _, _ = env.step(action)
            rewards.append(self.reward(env, action != 0, reward))
        if rewards:
            gamma = self.config.gamma
            self.agent.set_state_value(gamma * float(np.mean(rewards)) / (1.0 - gamma))

    def start_day(self, env: DispatchEnv) -> None:
        self._start_day()
        self.reward.start(env)

    def act(self, env: DispatchEnv) -> int:
        self.state = self.features.build(env)
        epsilon = linear_epsilon(self.config, self.decisions)
        self.candidate = self.agent.act(self.state, epsilon)
        self.decisions += 1
        return self.state.action(self.candidate)

    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        self.states.append(self.state)
        self.actions.append(self.candidate + 1)
        self.rewards.append(self.reward(env, action != 0, reward))

    def day_steps(self) -> tuple[list[PairState]]:
        return (self.states,)

    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        config = self.config
        metadata = PairwiseMetadata(
            hidden=config.hidden,
            head_hidden=config.head_hidden,
            candidates_per_booking=config.candidates_per_booking,
            env_config=env_config_to_dict(env_config),
            preset=preset,
            hyperparameters=config.to_dict(),
            training_summary=summary,
        )
        return save_pairwise_model(path, self.agent.target_network, metadata)


class PairwiseKind(AgentKind):
    name = "pairwise"
    summary = "one network for any fleet, scoring each (driver, booking) pair"
    untrained_start = "the greedy policy on the known part of each action's reward"
    config_type = PairwiseConfig
    model_format = FORMAT_NAME
    default_days = "fleets"
    serving_runtimes = PAIRWISE_RUNTIMES
    onnx_format = ONNX_FORMAT

    def train_env_config(self, max_drivers: int) -> EnvConfig:
        return EnvConfig(max_drivers=max_drivers)

    def play_env_config(self, trained: EnvConfig, days: Sequence[Scenario]) -> EnvConfig:
        most = max((len(day.drivers) for day in days), default=1)
        return replace(trained, max_drivers=most)

    def new_learner(self, config: PairwiseConfig, env: DispatchEnv, seed: int) -> Learner:
        return PairwiseLearner(config, env, seed)

    def load_model(self, path: str | Path, name: str | None = None) -> LearnedModel:
        loaded = load_pairwise_model(path)
        metadata = loaded.metadata
        return LearnedModel(
            kind=self.name,
            policy=PairwisePolicy(loaded, name=name or self.name),
            env_config=env_config_from_dict(metadata.env_config or {}),
            preset=metadata.preset,
            version=metadata.version,
            path=Path(path),
            training_summary=metadata.training_summary,
        )

    def search_space(self) -> Sequence[Hyperparameter]:
        return PAIRWISE_SEARCH_SPACE

    def lookahead_policy(self, model: LearnedModel, candidates: int) -> LookaheadPolicy:
        """The lookahead expert on the model's network: its ``candidates`` best pairs."""
        policy = model.policy
        assert isinstance(policy, PairwisePolicy)
        return LookaheadPolicy(
            policy.q_function,
            candidates,
            policy.features.candidates_per_booking,
            name=f"{policy.name}+lookahead",
        )

    def load_served(self, path: Path, runtime: str, probe_day: ProbeDay) -> LoadedPairwiseQModel:
        """Its network on NumPy or ONNX Runtime, probed with one decision on a tiny live day."""
        return load_pairwise_q_model(path, runtime, probe_day)

    def export_onnx(self, path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
        """Checked against the NumPy forward pass on states met on geneva days."""
        try:
            loaded = load_pairwise_model(path)
        except PairwiseModelError as error:
            raise ModelLoadError(f"model: {error}") from error
        model_bytes = export_pairwise_onnx_bytes(loaded.network, loaded.metadata)
        scorer = OnnxPairQ(model_bytes)
        checked, difference = max_difference_on_days(loaded, scorer, check_states, seed)
        return model_bytes, checked, difference


KIND = PairwiseKind()
