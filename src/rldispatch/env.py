"""``DispatchEnv``: one service day behind the Gymnasium API, with action masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rldispatch.domain import Scenario, ScenarioError
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.presets import TRAINING_SEEDS, make_preset
from rldispatch.sim import DaySimulator, InsertionTable
from rldispatch.sim.frame import LocalFrame
from rldispatch.sim.kernels import fill_observation
from rldispatch.sim.noise import Uncertainty
from rldispatch.sim.simulator import Assignment
from rldispatch.sim.stop_simulator import day_simulator

ENV_ID = "rldispatch/Dispatch-v0"
DRIVER_FEATURES = 4
BOOKING_FEATURES = 4
GLOBAL_FEATURES = 2


@dataclass(frozen=True)
class EnvConfig:
    """Shapes and rules of the environment.

    :param max_drivers: driver slots in the observation and the action space.
    :param visible_slots: booking slots; the most pressing visible bookings fill them.
    :param lookahead_min: a booking becomes visible this long before its window opens.
    :param invalid_action_penalty: paid for a masked-out action, which is then taken as a wait.
    :param uncertainty: an uncertain day (:mod:`rldispatch.sim.noise`); None: the day goes
        as planned.
    """

    max_drivers: int = 10
    visible_slots: int = 20
    lookahead_min: float = 90.0
    invalid_action_penalty: float = 5.0
    reward: RewardConfig = field(default_factory=RewardConfig)
    uncertainty: Uncertainty | None = None

    def __post_init__(self) -> None:
        if self.max_drivers < 1:
            raise ValueError("env.max_drivers: must be at least 1")
        if self.visible_slots < 1:
            raise ValueError("env.visible_slots: must be at least 1")
        if not np.isfinite(self.lookahead_min) or self.lookahead_min < 0:
            raise ValueError("env.lookahead_min: must be a finite number >= 0")

    @property
    def observation_size(self) -> int:
        return (
            self.max_drivers * DRIVER_FEATURES
            + self.visible_slots * BOOKING_FEATURES
            + GLOBAL_FEATURES
        )

    @property
    def n_actions(self) -> int:
        return 1 + self.max_drivers * self.visible_slots


class DispatchEnv(gym.Env):
    """One dispatch day: give each booking to a driver, or wait.

    **Days.** Each ``reset`` plays one day: from ``scenario`` if one was given, else one of
    ``scenarios`` drawn with the env's seeded generator, else the day of preset ``preset``
    whose seed the generator draws. ``reset(options={"scenario": s})`` plays day ``s`` and
    ``reset(options={"day_seed": k})`` plays day ``k`` of the preset.

    **Actions** (``Discrete(1 + D * M)``, ``D = max_drivers``, ``M = visible_slots``):

    | action          | meaning                                                         |
    |-----------------|-----------------------------------------------------------------|
    | 0               | wait: move the clock to the next event                          |
    | 1 + i * M + j   | give the booking in visible slot ``j`` to driver ``i``           |

    The driver takes the booking at the cheapest feasible place in its plan.
    ``action_masks()`` and ``info["action_mask"]`` mark the valid actions: wait always, an
    assignment when the driver can pick the booking up inside its window, finish before its
    shift ends and carry its load. A masked-out action is never remapped: it costs
    ``invalid_action_penalty``, is taken as a wait and sets ``info["invalid_action"]``. When no
    assignment is possible the env moves the clock on by itself, so every step is a decision.

    **Observation** (``Box(D * 4 + M * 4 + 2)``, float32). Positions are km east and north of
    the day's centre divided by 10 (``xy`` days: units from the centre divided by 10;
    see :mod:`rldispatch.sim.frame`).

    | index              | observation                                    | min  | max  |
    |--------------------|------------------------------------------------|------|------|
    | 4i + 0             | driver i: east position where it will be free  | -inf | inf  |
    | 4i + 1             | driver i: north position where it will be free | -inf | inf  |
    | 4i + 2             | driver i: hours until it is free               | 0    | inf  |
    | 4i + 3             | driver i: rides done today / 10                | 0    | inf  |
    | 4D + 4j + 0        | slot j: east position of the pickup            | -inf | inf  |
    | 4D + 4j + 1        | slot j: north position of the pickup           | -inf | inf  |
    | 4D + 4j + 2        | slot j: hours left until the window closes     | 0    | inf  |
    | 4D + 4j + 3        | slot j: 1 if urgent                            | 0    | 1    |
    | 4D + 4M + 0        | time of day, fraction of the horizon           | 0    | inf  |
    | 4D + 4M + 1        | visible bookings / M                           | 0    | inf  |

    Empty driver and booking slots are all zeros (and their actions masked). With the
    ``classic`` shapes (10 drivers, 20 slots) that is 122 floats and 201 actions.

    **Reward** (weights in :class:`rldispatch.rewards.RewardConfig`): ``+assignment_bonus``
    and ``-km_cost`` per km the assignment adds to the plan; ``-late_pickup_penalty`` when a
    booking is picked up more than 5 minutes after its requested time;
    ``-cancellation_penalty`` per booking whose window closes unassigned;
    ``-idle_wait_penalty`` for waiting while an assignment was possible; at the end of the day
    the workload-balance bonus.

    **Episode end.** Terminated once every booking is assigned, served or cancelled and the
    drivers have finished their plans; never truncated (each step assigns a booking or moves
    the clock forward, so a day has finitely many steps). ``info["metrics"]`` then holds the
    day's figures.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        preset: str | None = "classic",
        scenario: Scenario | None = None,
        scenarios: Sequence[Scenario] | None = None,
        config: EnvConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or EnvConfig()
        self.preset = preset
        self.fixed_scenario = scenario
        self.scenarios = list(scenarios) if scenarios else []
        if scenario is None and not self.scenarios and preset is None:
            raise ValueError("DispatchEnv needs a preset, a scenario or a list of scenarios")
        for day in ([scenario] if scenario else []) + self.scenarios:
            self._check_fits(day)
        self._observation_space: spaces.Box | None = None
        self._action_space: spaces.Discrete | None = None
        self.sim: DaySimulator | None = None
        self._mask = np.zeros(self.config.n_actions, dtype=bool)
        self._table: InsertionTable | None = None
        self._visible = np.empty(0, dtype=np.int64)

    # The spaces are made when first read: a server builds an env per request and never
    # reads them.
    @property
    def observation_space(self) -> spaces.Box:
        if self._observation_space is None:
            size = self.config.observation_size
            self._observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space: spaces.Box) -> None:
        self._observation_space = space

    @property
    def action_space(self) -> spaces.Discrete:
        if self._action_space is None:
            self._action_space = spaces.Discrete(self.config.n_actions)
        return self._action_space

    @action_space.setter
    def action_space(self, space: spaces.Discrete) -> None:
        self._action_space = space

    def _check_fits(self, scenario: Scenario) -> None:
        if len(scenario.drivers) > self.config.max_drivers:
            raise ScenarioError(
                f"drivers: the day has {len(scenario.drivers)} drivers but the env has "
                f"{self.config.max_drivers} driver slots (EnvConfig.max_drivers)"
            )

    # --- Gymnasium API ---------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        scenario = self._pick_day(options or {})
        self._check_fits(scenario)
        self.scenario = scenario
        self.sim = day_simulator(
            scenario, lookahead_min=self.config.lookahead_min, uncertainty=self.config.uncertainty
        )
        self._set_frame(scenario)
        self.episode_reward = 0.0
        self.decisions = 0
        self.idle_waits = 0
        self.invalid_actions = 0
        reward = self._skip_to_decision()
        self.episode_reward += reward
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self._terminated:
            # A day can be over at reset (nothing anyone could serve): stepping it is a no-op.
            return self._observation(), 0.0, True, False, self._info()
        weights = self.config.reward
        action = int(action)
        reward = 0.0
        invalid = not (0 <= action < self.config.n_actions and self._mask[action])
        self.decisions += 1
        if invalid:
            self.invalid_actions += 1
            reward -= self.config.invalid_action_penalty
            action = 0
        if action == 0:
            if self._mask[1:].any():
                reward -= weights.idle_wait_penalty
                self.idle_waits += 1
            reward += self._advance_reward(self.sim.advance())
        else:
            driver, slot = divmod(action - 1, self.config.visible_slots)
            assignment = self.sim.assign(driver, int(self._visible[slot]))
            reward += weights.assignment_bonus - weights.km_cost * assignment.added_km
        reward += self._skip_to_decision()
        self.episode_reward += reward
        info = self._info()
        if invalid:
            info["invalid_action"] = True
        return self._observation(), float(reward), self._terminated, False, info

    def resume(self, sim: DaySimulator) -> tuple[np.ndarray, dict[str, Any]]:
        """Play on from a simulator already at a moment of its day (a live state, see
        :func:`rldispatch.sim.state.restore_day`) instead of a new day. The clock does not
        move, even when no assignment is possible; rewards count from here."""
        self.continue_from(sim)
        return self._observation(), self._info()

    def continue_from(self, sim: DaySimulator) -> None:
        """:meth:`resume` without making the first observation (for a caller that reads
        the mask and table, or asks for the observation when it needs it)."""
        self._check_fits(sim.scenario)
        self.scenario = sim.scenario
        self.sim = sim
        self._set_frame(sim.scenario)
        self.episode_reward = 0.0
        self.decisions = 0
        self.idle_waits = 0
        self.invalid_actions = 0
        self._update_mask()

    def assign(self, action: int) -> Assignment:
        """Take an assignment action without moving the clock afterwards (one step of a
        dispatch round of a live state): the mask then shows what can still be assigned now.

        :raises ValueError: for wait or a masked-out action.
        """
        if self.sim is None:
            raise RuntimeError("call reset() or resume() before assign()")
        action = int(action)
        if action == 0 or not (0 < action < self.config.n_actions and self._mask[action]):
            raise ValueError(f"assign: action {action} is not a valid assignment")
        driver, slot = divmod(action - 1, self.config.visible_slots)
        assignment = self.sim.assign(driver, int(self._visible[slot]))
        self.decisions += 1
        if self.sim.done:
            self._mask[:] = False
            self._mask[0] = True
            self._visible = np.empty(0, dtype=np.int64)
            self._table = None
        else:
            self._update_mask()
        return assignment

    @property
    def visible(self) -> np.ndarray:
        """Booking indices in the visible slots, slot order."""
        return self._visible

    @property
    def table(self) -> InsertionTable | None:
        """Insertion costs of the visible bookings for every driver (None when none)."""
        return self._table

    def observation(self) -> np.ndarray:
        """The observation of the current state (what ``reset`` and ``step`` return)."""
        return self._observation()

    def action_masks(self) -> np.ndarray:
        """Valid actions of the current state (the sb3-contrib convention)."""
        return self._mask.copy()

    # --- internals -------------------------------------------------------------------------

    def _pick_day(self, options: dict[str, Any]) -> Scenario:
        if "scenario" in options:
            return options["scenario"]
        if "day_seed" in options:
            if self.preset is None:
                raise ValueError("reset option day_seed needs an env built from a preset")
            return make_preset(self.preset, int(options["day_seed"]))
        if self.fixed_scenario is not None:
            return self.fixed_scenario
        if self.scenarios:
            return self.scenarios[int(self.np_random.integers(len(self.scenarios)))]
        day_seed = int(self.np_random.integers(TRAINING_SEEDS.start, TRAINING_SEEDS.stop))
        return make_preset(self.preset, day_seed)

    def _set_frame(self, scenario: Scenario) -> None:
        self._frame: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._terminated = False

    def _positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Driver starts, pickups and drop-offs in the day's frame (what the observation
        reads), made when first asked for."""
        if self._frame is None:
            sim = self.sim
            to_frame = LocalFrame(sim.frame_centre, sim.scenario.coords).scaled
            self._frame = (
                to_frame(sim.driver_start_xy),
                to_frame(sim.pickup_xy),
                to_frame(sim.dropoff_xy),
            )
        return self._frame

    def _advance_reward(self, outcome: Any) -> float:
        weights = self.config.reward
        reward = -(
            weights.late_pickup_penalty * outcome.late_pickups
            + weights.cancellation_penalty * outcome.cancelled
        )
        if outcome.km_change:  # an uncertain day: km driven other than planned
            reward -= weights.km_cost * outcome.km_change
        return reward

    def _skip_to_decision(self) -> float:
        """Move the clock on until an assignment is possible or the day is over."""
        sim = self.sim
        reward = 0.0
        while True:
            if sim.done:
                reward += self._advance_reward(sim.finish())
                reward += self.config.reward.balance_reward(sim.rides)
                self._terminated = True
                self._mask[:] = False
                self._mask[0] = True
                self._visible = np.empty(0, dtype=np.int64)
                self._table = None
                return reward
            self._update_mask()
            if self._mask[1:].any():
                return reward
            reward += self._advance_reward(sim.advance())

    def _update_mask(self) -> None:
        sim = self.sim
        slots = self.config.visible_slots
        visible = sim.visible_bookings()[:slots]
        self._visible = visible
        mask = self._mask
        mask[:] = False
        mask[0] = True
        if visible.size == 0:
            self._table = None
            return
        table = sim.best_insertions(visible)
        self._table = table
        grid = np.zeros((self.config.max_drivers, slots), dtype=bool)
        grid[: sim.n_drivers, : visible.size] = table.feasible
        mask[1:] = grid.reshape(-1)

    def _observation(self) -> np.ndarray:
        sim = self.sim
        config = self.config
        observation = np.zeros(config.observation_size, dtype=np.float32)
        driver_xy, pickup, dropoff = self._positions()
        fill_observation(
            observation,
            config.max_drivers,
            driver_xy,
            dropoff,
            pickup,
            sim.plan_end_booking,
            sim.plan_end_min,
            sim.rides,
            sim.now_min,
            self._visible,
            sim.latest_min,
            sim.priority,
            sim.horizon_min,
            sim.visible_bookings().size / config.visible_slots,
        )
        return observation

    def _info(self) -> dict[str, Any]:
        sim = self.sim
        info: dict[str, Any] = {"action_mask": self._mask.copy(), "time_min": sim.now_min}
        if self._terminated:
            info["metrics"] = sim.metrics(self.episode_reward, self.decisions).as_dict()
        return info

    def metrics(self):
        """The figures of the day so far (complete once the episode has terminated)."""
        return self.sim.metrics(self.episode_reward, self.decisions)


def register_env() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="rldispatch.env:DispatchEnv")
