"""Replay buffer and n-step returns."""

from __future__ import annotations

import numpy as np
import pytest

from rldispatch.agents.dqn.replay import ReplayBuffer


def fill(buffer: ReplayBuffer, count: int) -> None:
    for k in range(count):
        mask = np.zeros(buffer.n_actions, dtype=bool)
        mask[k % buffer.n_actions] = True
        buffer.add(
            np.full(3, k, np.float32),
            k,
            float(k),
            np.full(3, k + 1, np.float32),
            mask,
            terminated=k % 2 == 0,
        )


def test_buffer_is_a_ring_that_keeps_the_newest_transitions() -> None:
    buffer = ReplayBuffer(capacity=4, observation_size=3, n_actions=5, seed=0)
    fill(buffer, 6)
    assert len(buffer) == 4
    assert sorted(buffer.actions.tolist()) == [2, 3, 4, 5]
    assert buffer.observations.dtype == np.float32 and buffer.observations.shape == (4, 3)


def test_samples_carry_the_next_state_mask_of_their_transition() -> None:
    buffer = ReplayBuffer(capacity=10, observation_size=3, n_actions=5, seed=0)
    fill(buffer, 10)
    sample = buffer.sample(32)
    actions = sample.actions.numpy()
    masks = sample.next_action_masks.numpy()
    assert masks.dtype == bool
    assert np.all(masks[np.arange(32), actions % 5])
    assert np.all(masks.sum(axis=1) == 1)
    np.testing.assert_array_equal(sample.next_observations.numpy()[:, 0], actions + 1)
    np.testing.assert_array_equal(sample.terminated.numpy(), (actions % 2 == 0).astype(float))


def test_state_dict_round_trip_restores_contents_and_sampler() -> None:
    buffer = ReplayBuffer(capacity=8, observation_size=3, n_actions=201, seed=3)
    fill(buffer, 11)
    state = buffer.state_dict()
    copy = ReplayBuffer(capacity=8, observation_size=3, n_actions=201, seed=99)
    copy.load_state_dict(state)
    np.testing.assert_array_equal(copy.next_action_masks, buffer.next_action_masks)
    np.testing.assert_array_equal(copy.observations, buffer.observations)
    assert (copy.position, copy.size) == (buffer.position, buffer.size)
    np.testing.assert_array_equal(copy.sample(16).actions, buffer.sample(16).actions)


def test_sampling_an_empty_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, 3, 5).sample(2)


def test_a_day_is_stored_with_n_step_returns_shortened_at_its_end() -> None:
    gamma = 0.5
    buffer = ReplayBuffer(8, observation_size=1, n_actions=2)
    observations = np.arange(5, dtype=np.float32)[:, None]  # 4 decisions, then the last state
    masks = np.ones((5, 2), dtype=bool)
    buffer.add_day(observations, masks, [0, 1, 0, 1], [1.0, 2.0, 4.0, 8.0], gamma, n_step=3)
    assert len(buffer) == 4
    np.testing.assert_allclose(
        buffer.rewards[:4], [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8, 8]
    )
    np.testing.assert_array_equal(buffer.bootstrap_steps[:4], [3, 3, 2, 1])
    np.testing.assert_array_equal(buffer.next_observations[:4, 0], [3, 4, 4, 4])
    np.testing.assert_array_equal(buffer.terminated[:4], [0, 1, 1, 1])


def test_one_step_returns_are_the_rewards() -> None:
    buffer = ReplayBuffer(4, observation_size=1, n_actions=3)
    observations = np.zeros((3, 1), dtype=np.float32)
    buffer.add_day(observations, np.ones((3, 3), bool), [4 % 3, 1], [2.5, -1.0], 0.9, n_step=1)
    np.testing.assert_allclose(buffer.rewards[:2], [2.5, -1.0])
    np.testing.assert_array_equal(buffer.bootstrap_steps[:2], [1, 1])
