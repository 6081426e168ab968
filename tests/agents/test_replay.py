"""Replay buffer and n-step returns."""

from __future__ import annotations

import numpy as np
import pytest

from rldispatch.agents.dqn.replay import NStepAccumulator, ReplayBuffer


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


def test_n_step_returns_discount_and_shorten_at_the_end_of_the_day() -> None:
    gamma = 0.5
    accumulator = NStepAccumulator(n_step=3, gamma=gamma)
    mask = np.ones(2, dtype=bool)
    out = []
    rewards = [1.0, 2.0, 4.0, 8.0]
    for k, reward in enumerate(rewards):
        out += accumulator.push(
            np.array([k]), k, reward, np.array([k + 1]), mask, terminated=k == len(rewards) - 1
        )
    assert [item[1] for item in out] == [0, 1, 2, 3]
    assert [item[2] for item in out] == pytest.approx(
        [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8, 8]
    )
    assert [item[6] for item in out] == [3, 3, 2, 1]  # bootstrap steps
    assert [item[3][0] for item in out] == [3, 4, 4, 4]  # bootstrap observation
    assert [item[5] for item in out] == [False, True, True, True]


def test_one_step_comes_straight_back() -> None:
    accumulator = NStepAccumulator(n_step=1, gamma=0.9)
    (item,) = accumulator.push(np.zeros(1), 4, 2.5, np.ones(1), np.ones(3, bool), False)
    assert item[1:3] == (4, 2.5) and item[6] == 1
