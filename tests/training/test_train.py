"""The training loop: files of a run, evaluation callback, deterministic resume."""

from __future__ import annotations

import json

import pytest
import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.agents.dqn.model_file import load_model
from rldispatch.scenarios.presets import make_preset
from rldispatch.training.checkpoint import load_checkpoint
from rldispatch.training.train import (
    VALIDATION_SEEDS,
    TrainingError,
    train,
    tuning_days,
    validation_days,
)

TINY = DQNConfig(
    hidden_sizes=(16,),
    buffer_size=1_000,
    batch_size=16,
    learning_starts=50,
    train_frequency=2,
    target_update_interval=100,
    epsilon_decay_steps=500,
)
EVAL_DAYS = [make_preset("geneva", seed) for seed in VALIDATION_SEEDS[:2]]


def tiny_train(out_dir, episodes: int, config: DQNConfig = TINY, **kwargs):
    options = {
        "seed": 3,
        "eval_days": EVAL_DAYS,
        "eval_every": 2,
        "checkpoint_every": 2,
        "progress": False,
        "tensorboard": False,
    }
    options.update(kwargs)
    return train(config, out_dir, episodes, **options)


def test_a_run_leaves_models_metrics_and_a_checkpoint(tmp_path) -> None:
    result = tiny_train(tmp_path, 4, tensorboard=True)
    assert result.episodes == 4
    assert result.total_steps > 4 * 50
    for name in (
        "config.json",
        "run.json",
        "training_metrics.json",
        "best_model.safetensors",
        "final_model.safetensors",
        "checkpoints/resume.pt",
        "checkpoints/episode_000002.safetensors",
        "checkpoints/episode_000004.safetensors",
    ):
        assert (tmp_path / name).exists(), name
    assert any((tmp_path / "tensorboard").iterdir())
    metrics = json.loads((tmp_path / "training_metrics.json").read_text())
    assert [e["episode"] for e in metrics["episodes"]] == [1, 2, 3, 4]
    assert [e["episode"] for e in metrics["evaluations"]] == [2, 4]
    assert metrics["summary"]["total_steps"] == result.total_steps
    assert any(e["td_loss"] is not None for e in metrics["episodes"])
    best = load_model(tmp_path / "best_model.safetensors")
    assert best.metadata.training_summary["eval_reward"] == result.best_eval_reward
    assert best.metadata.preset == "geneva"
    assert best.metadata.hyperparameters == TINY.to_dict()


def test_on_evaluation_gets_each_evaluation_and_its_exception_ends_training(tmp_path) -> None:
    seen = []

    class Pruned(Exception):
        pass

    def on_evaluation(episode: int, reward: float) -> None:
        seen.append((episode, reward))
        if episode == 4:
            raise Pruned

    with pytest.raises(Pruned):
        tiny_train(tmp_path, 10, on_evaluation=on_evaluation)
    assert [episode for episode, _ in seen] == [2, 4]
    assert all(isinstance(reward, float) for _, reward in seen)


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path) -> None:
    straight = tiny_train(tmp_path / "straight", 6)
    tiny_train(tmp_path / "split", 3, checkpoint_every=3)
    killed_write = tmp_path / "split" / "checkpoints" / ".resume.pt.x1y2z3.tmp"
    killed_write.write_bytes(b"the start of a checkpoint")  # as a kill -9 mid-write leaves it
    resumed = tiny_train(tmp_path / "split", 6, resume=True)
    assert not killed_write.exists()
    assert resumed.episodes == 6
    assert resumed.total_steps == straight.total_steps
    a = load_model(straight.final_model_path).network.state_dict()
    b = load_model(resumed.final_model_path).network.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    metrics = json.loads(resumed.metrics_path.read_text())
    assert [e["episode"] for e in metrics["episodes"]] == [1, 2, 3, 4, 5, 6]


def test_resume_without_the_replay_buffer_refills_it_first(tmp_path) -> None:
    tiny_train(tmp_path, 2, save_replay_buffer=False)
    assert load_checkpoint(tmp_path / "checkpoints/resume.pt")["replay_buffer"] is None
    result = tiny_train(tmp_path, 3, save_replay_buffer=False, resume=True)
    metrics = json.loads(result.metrics_path.read_text())
    third = metrics["episodes"][2]
    assert third["episode"] == 3 and result.episodes == 3
    assert third["td_loss"] is not None  # learning went on once the buffer held 50 again


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path) -> None:
    tiny_train(tmp_path, 2)
    with pytest.raises(TrainingError, match="--resume"):
        tiny_train(tmp_path, 2)


def test_resume_with_another_config_is_refused_naming_the_difference(tmp_path) -> None:
    tiny_train(tmp_path, 2)
    other = DQNConfig(**{**TINY.to_dict(), "gamma": 0.9, "hidden_sizes": (16,)})
    with pytest.raises(TrainingError, match="differs in gamma"):
        tiny_train(tmp_path, 4, resume=True, config=other)


def test_time_limit_stops_between_episodes(tmp_path) -> None:
    result = tiny_train(tmp_path, 50, max_wall_time_s=0.0)
    assert result.stopped_by_time_limit
    assert result.episodes == 0
    assert result.final_model_path.exists()


def test_pair_scorer_network_trains_too(tmp_path) -> None:
    config = DQNConfig(
        **{**TINY.to_dict(), "architecture": "pair_scorer", "hidden_sizes": (8,), "context_size": 4}
    )
    result = tiny_train(tmp_path, 2, config=config)
    loaded = load_model(result.final_model_path)
    assert loaded.metadata.hyperparameters["architecture"] == "pair_scorer"


def test_evaluation_days_of_training_and_tuning_are_fixed_and_apart() -> None:
    plain = [day.name for day in validation_days("geneva", 3)]
    tuner = [day.name for day in tuning_days("geneva", 3)]
    assert plain == [day.name for day in validation_days("geneva", 3)]
    assert not set(plain) & set(tuner)
    assert tuner[0] == "geneva-1000000"
