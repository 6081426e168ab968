import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rldispatch
from rldispatch.domain import ScenarioError
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import make_preset


def test_classic_shapes_match_the_prototype():
    env = gym.make("rldispatch/Dispatch-v0", preset="classic")
    assert env.observation_space.shape == (122,)
    assert env.action_space.n == 201


def test_passes_gymnasium_check_env():
    gymnasium_check_env(DispatchEnv(preset="classic"), skip_render_check=True)


def test_passes_stable_baselines3_check_env():
    sb3_check_env(DispatchEnv(preset="classic"), warn=False)


def test_mask_in_info_equals_action_masks_and_wait_is_always_valid():
    env = DispatchEnv(preset="geneva")
    _, info = env.reset(seed=3)
    assert np.array_equal(info["action_mask"], env.action_masks())
    assert info["action_mask"][0]
    assert info["action_mask"][1:].any(), "reset stops at the first real decision"


def test_invalid_action_is_penalised_and_taken_as_a_wait_every_time():
    env = DispatchEnv(preset="geneva")
    env.reset(seed=1)
    invalid = int(np.flatnonzero(~env.action_masks())[0])
    clock = env.sim.now_min
    _, reward, _, _, info = env.step(invalid)
    assert info["invalid_action"] is True
    assert reward <= -env.config.invalid_action_penalty
    assert env.sim.now_min > clock
    assert env.invalid_actions == 1


def test_assignment_gives_the_slot_booking_to_the_driver():
    env = DispatchEnv(preset="geneva")
    env.reset(seed=2)
    action = int(np.flatnonzero(env.action_masks()[1:])[0]) + 1
    driver, slot = divmod(action - 1, env.config.visible_slots)
    booking = int(env.visible[slot])
    env.step(action)
    assert env.sim.assigned_driver[booking] == driver


def test_same_seed_same_day_same_trajectory():
    def play(seed):
        env = DispatchEnv(preset="geneva")
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        observations, rewards = [obs], []
        terminated = False
        while not terminated:
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            obs, reward, terminated, _, info = env.step(action)
            observations.append(obs)
            rewards.append(reward)
        return np.array(observations), np.array(rewards), info["metrics"]

    first, second, other = play(7), play(7), play(8)
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert first[2] != other[2]


def test_episode_reward_equals_the_sum_of_step_rewards():
    env = DispatchEnv(preset="classic")
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    total, terminated = 0.0, False
    while not terminated:
        _, reward, terminated, truncated, info = env.step(
            rng.choice(np.flatnonzero(info["action_mask"]))
        )
        assert not truncated
        total += reward
    assert info["metrics"]["reward"] == pytest.approx(total)


def test_a_fleet_larger_than_the_driver_slots_is_refused_naming_the_field():
    day = make_preset("geneva", 0)
    with pytest.raises(ScenarioError, match="drivers"):
        DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=5))


def test_package_exports_the_env():
    assert rldispatch.ENV_ID in gym.registry


def test_continuing_from_a_simulator_is_resuming_it_without_the_first_observation():
    played = DispatchEnv(preset="geneva")
    played.reset(seed=4)
    for _ in range(5):
        played.step(int(np.flatnonzero(played.action_masks()[1:])[0]) + 1)
    resumed = DispatchEnv(preset="geneva")
    observation, info = resumed.resume(played.sim.copy())
    continued = DispatchEnv(preset="geneva")
    continued.continue_from(played.sim.copy())
    assert np.array_equal(continued.action_masks(), info["action_mask"])
    assert np.array_equal(continued.visible, resumed.visible)
    assert np.array_equal(continued.observation(), observation)
    assert np.array_equal(observation, played.observation())
