"""The flat DQN kind: the prototype's network of one fleet shape, behind the agent-kind
interface."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rldispatch.agents.double_dqn import ReplayLearner, linear_epsilon
from rldispatch.agents.dqn.agent import DQNAgent
from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.loading import load_q_model
from rldispatch.agents.dqn.model_file import FORMAT_NAME, ModelMetadata, load_model, save_model
from rldispatch.agents.dqn.onnx_export import export_checked
from rldispatch.agents.dqn.policy import DQNPolicy
from rldispatch.agents.dqn.replay import ReplayBuffer
from rldispatch.agents.dqn.search_space import DQN_SEARCH_SPACE
from rldispatch.agents.dqn.serving import FLAT_RUNTIMES, LoadedQModel
from rldispatch.agents.dqn.serving import FORMAT as ONNX_FORMAT
from rldispatch.agents.dqn.shaping import shaping_potential
from rldispatch.agents.kinds import AgentKind, LearnedModel, Learner
from rldispatch.agents.model_container import env_config_to_dict
from rldispatch.agents.search_space import Hyperparameter
from rldispatch.agents.serving import ProbeDay
from rldispatch.domain import Scenario
from rldispatch.env import DispatchEnv, EnvConfig


class DQNLearner(ReplayLearner):
    """The flat agent in training: masked epsilon-greedy, optional potential-based shaping,
    a day stored with n-step returns once it is over, ``gradient_steps`` every
    ``train_frequency`` decisions, the target updated every ``target_update_interval``."""

    def __init__(self, config: DQNConfig, env: DispatchEnv, seed: int) -> None:
        self.config = config
        agent_seed, buffer_seed = (int(v) for v in np.random.SeedSequence(seed).generate_state(2))
        observation_size = int(env.observation_space.shape[0])
        n_actions = int(env.action_space.n)
        self.agent = DQNAgent(
            observation_size,
            n_actions,
            config,
            seed=agent_seed,
            max_drivers=env.config.max_drivers,
            visible_slots=env.config.visible_slots,
        )
        self.buffer = ReplayBuffer(config.buffer_size, observation_size, n_actions, buffer_seed)
        self.greedy = DQNPolicy(self.agent.q_network)
        self.shaping = config.shape_lateness or config.shape_cancellations
        self.decisions = 0

    def _potential(self, env: DispatchEnv, terminated: bool = False) -> float:
        config = self.config
        if not self.shaping:
            return 0.0
        return shaping_potential(env, config.shape_lateness, config.shape_cancellations, terminated)

    def start_day(self, env: DispatchEnv) -> None:
        self.observations = [env.observation()]
        self.masks = [env.action_masks()]
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.losses: list[float] = []
        self.q_means: list[float] = []
        self.potential = self._potential(env)

    def act(self, env: DispatchEnv) -> int:
        epsilon = linear_epsilon(self.config, self.decisions)
        self.decisions += 1
        return self.agent.act(self.observations[-1], self.masks[-1], epsilon)

    def observe(self, env: DispatchEnv, action: int, reward: float, terminated: bool) -> None:
        config = self.config
        if self.shaping:
            potential = self._potential(env, terminated)
            reward += config.gamma * potential - self.potential
            self.potential = potential
        self.actions.append(action)
        self.rewards.append(reward * config.reward_scale)
        self.observations.append(env.observation())
        self.masks.append(env.action_masks())

    @property
    def gradient_steps(self) -> int:
        return self.config.gradient_steps

    def learn(self) -> None:
        super().learn()
        if self.decisions % self.config.target_update_interval == 0:
            self.agent.update_target()

    def day_steps(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.observations), np.asarray(self.masks)

    def save_model(
        self, path: str | Path, env_config: EnvConfig, preset: str | None, summary: dict
    ) -> Path:
        agent = self.agent
        metadata = ModelMetadata(
            observation_size=agent.observation_size,
            n_actions=agent.n_actions,
            env_config=env_config_to_dict(env_config),
            preset=preset,
            hyperparameters=self.config.to_dict(),
            training_summary=summary,
        )
        return save_model(path, agent.q_network, metadata)


class DQNKind(AgentKind):
    name = "dqn"
    summary = "the prototype's flat network: fixed driver and booking slots"
    config_type = DQNConfig
    model_format = FORMAT_NAME
    default_days = "preset"
    serving_runtimes = FLAT_RUNTIMES
    onnx_format = ONNX_FORMAT

    def train_env_config(self, max_drivers: int) -> EnvConfig:
        base = EnvConfig()
        return base if max_drivers <= base.max_drivers else EnvConfig(max_drivers=max_drivers)

    def play_env_config(self, trained: EnvConfig, days: Sequence[Scenario]) -> EnvConfig:
        most = max((len(day.drivers) for day in days), default=1)
        if most > trained.max_drivers:
            raise ValueError(
                f"a flat DQN model plays fleets of at most {trained.max_drivers} drivers; "
                f"a day here has {most} (train with --agent pairwise for any fleet size)"
            )
        return trained

    def new_learner(self, config: DQNConfig, env: DispatchEnv, seed: int) -> Learner:
        return DQNLearner(config, env, seed)

    def load_model(self, path: str | Path, name: str | None = None) -> LearnedModel:
        model = load_model(path)
        return LearnedModel(
            kind=self.name,
            policy=DQNPolicy(model, name=name or self.name),
            env_config=model.metadata.make_env_config(),
            preset=model.metadata.preset,
            version=model.metadata.version,
            path=Path(path),
            training_summary=model.metadata.training_summary,
        )

    def search_space(self) -> Sequence[Hyperparameter]:
        return DQN_SEARCH_SPACE

    def load_served(self, path: Path, runtime: str, probe_day: ProbeDay) -> LoadedQModel:
        """Its Q-function on NumPy, PyTorch or ONNX Runtime, probed with a forward pass on a
        zero observation (a flat model's state does not need a live day)."""
        return load_q_model(path, runtime)

    def export_onnx(self, path: Path, check_states: int, seed: int) -> tuple[bytes, int, float]:
        """Checked against eager PyTorch on states of its preset's days."""
        return export_checked(path, check_states, seed)


KIND = DQNKind()
