"""The one training loop, for every kind: files of a run, evaluation hook, deterministic resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rldispatch.agents.kinds import agent_kind
from rldispatch.agents.pairwise.config import PairwiseConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution
from rldispatch.training.callbacks import LABELLED_KIND_TAGS, TENSORBOARD_TAGS
from rldispatch.training.checkpoint import CheckpointError, load_checkpoint
from rldispatch.training.days import VALIDATION_SEEDS, FleetDays, PresetDays
from rldispatch.training.train import RunSettings, TrainingError, resume_training, train
from tests.helpers import TINY

KINDS = sorted(TINY)


def tiny_days(kind: str):
    if kind == "pairwise":
        return FleetDays(FleetDayDistribution(fleet_sizes=(5, 6)), selection=2)
    return PresetDays("geneva", selection=2)


def tiny_train(
    kind: str, out_dir: Path, days: int, config=None, resume=False, tensorboard=False, **settings
):
    options = {"eval_every_days": 2, "checkpoint_every_days": 2, "seed": 3}
    options.update(settings)
    hook = options.pop("on_evaluation", None)
    return train(
        kind,
        config or TINY[kind],
        out_dir,
        tiny_days(kind),
        RunSettings(max_days=days, **options),
        resume=resume,
        progress=False,
        tensorboard=tensorboard,
        on_evaluation=hook,
    )


def scalars(folder: Path) -> dict[str, list[int]]:
    """The steps of every scalar tag TensorBoard reads in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def weights(kind: str, path: Path) -> dict[str, torch.Tensor]:
    model = agent_kind(kind).load_model(path)
    return model.policy.network.state_dict()


def assert_same_weights(kind: str, first: Path, second: Path) -> None:
    a, b = weights(kind, first), weights(kind, second)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_leaves_models_metrics_and_a_checkpoint(kind: str, tmp_path: Path) -> None:
    result = tiny_train(kind, tmp_path, 4)
    assert result.days == 4 and result.kind == kind
    assert result.decisions > 4 * 40
    for name in (
        "config.json",
        "run.json",
        "training_metrics.json",
        "best_model.safetensors",
        "final_model.safetensors",
        "checkpoints/resume.pt",
        "checkpoints/day_000002.safetensors",
        "checkpoints/day_000004.safetensors",
    ):
        assert (tmp_path / name).exists(), name
    metrics = json.loads((tmp_path / "training_metrics.json").read_text())
    assert [record["day"] for record in metrics["days"]] == [1, 2, 3, 4]
    assert all(record["drivers"] >= 5 for record in metrics["days"])
    assert [record["day"] for record in metrics["evaluations"]] == [0, 2, 4]
    assert metrics["summary"]["decisions"] == result.decisions
    assert any(record["td_loss"] is not None for record in metrics["days"])
    best = agent_kind(kind).load_model(tmp_path / "best_model.safetensors")
    assert best.training_summary["best_eval_reward"] == result.best_eval_reward
    assert json.loads((tmp_path / "config.json").read_text()) == TINY[kind].to_dict()


@pytest.mark.parametrize("kind", KINDS)
def test_on_evaluation_gets_each_evaluation_and_its_exception_ends_training(
    kind: str, tmp_path: Path
) -> None:
    seen = []

    class Pruned(Exception):
        pass

    def on_evaluation(day: int, reward: float) -> None:
        seen.append((day, reward))
        if day == 2:
            raise Pruned

    with pytest.raises(Pruned):
        tiny_train(kind, tmp_path, 10, on_evaluation=on_evaluation)
    assert [day for day, _ in seen] == [0, 2]
    assert all(isinstance(reward, float) for _, reward in seen)


@pytest.mark.parametrize("kind", KINDS)
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(kind: str, tmp_path: Path) -> None:
    straight = tiny_train(kind, tmp_path / "straight", 6)
    tiny_train(kind, tmp_path / "split", 4)
    killed_write = tmp_path / "split" / "checkpoints" / ".resume.pt.x1y2z3.tmp"
    killed_write.write_bytes(b"the start of a checkpoint")  # as a kill -9 mid-write leaves it
    resumed = resume_training(tmp_path / "split", max_days=6, progress=False, tensorboard=False)
    assert not killed_write.exists()
    assert resumed.days == 6 and resumed.decisions == straight.decisions
    assert_same_weights(kind, straight.final_model_path, resumed.final_model_path)
    assert_same_weights(kind, straight.best_model_path, resumed.best_model_path)
    metrics = json.loads(resumed.metrics_path.read_text())
    assert [record["day"] for record in metrics["days"]] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("kind", KINDS)
def test_resume_without_the_replay_buffer_refills_it_first(kind: str, tmp_path: Path) -> None:
    tiny_train(kind, tmp_path, 2, save_replay_buffer=False)
    assert load_checkpoint(tmp_path / "checkpoints/resume.pt")["learner"]["buffer"] is None
    result = resume_training(tmp_path, max_days=4, progress=False, tensorboard=False)
    metrics = json.loads(result.metrics_path.read_text())
    assert result.days == 4
    assert metrics["days"][3]["td_loss"] is not None  # learning went on once refilled


@pytest.mark.parametrize("kind", KINDS)
def test_tensorboard_has_every_documented_tag_and_keeps_them_after_resume(
    kind: str, tmp_path: Path
) -> None:
    tiny_train(kind, tmp_path, 2, tensorboard=True)
    before = scalars(tmp_path / "tensorboard")
    assert set(TENSORBOARD_TAGS) - LABELLED_KIND_TAGS <= set(before)
    resume_training(tmp_path, max_days=4, progress=False)
    after = scalars(tmp_path / "tensorboard")
    assert set(before["eval/reward"]) <= set(after["eval/reward"])  # the checkpoint's too
    assert len(after["eval/reward"]) == 3  # days 0, 2 and 4, none twice
    assert len(after["charts/episodic_return"]) == 4


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    tiny_train("pairwise", tmp_path, 1)
    with pytest.raises(TrainingError, match="--resume"):
        tiny_train("pairwise", tmp_path, 2)


def test_resume_without_a_checkpoint_is_refused_not_restarted(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        resume_training(tmp_path / "nothing-here")
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        tiny_train("dqn", tmp_path / "fresh", 2, resume=True)
    assert not (tmp_path / "fresh" / "run.json").exists()


def test_resume_with_another_config_is_refused_naming_the_difference(tmp_path: Path) -> None:
    tiny_train("pairwise", tmp_path, 2)
    other = PairwiseConfig(**{**TINY["pairwise"].to_dict(), "gamma": 0.8})
    with pytest.raises(TrainingError, match="differs in gamma"):
        tiny_train("pairwise", tmp_path, 4, config=other, resume=True)


def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    tiny_train("pairwise", tmp_path, 2)
    path = tmp_path / "checkpoints" / "resume.pt"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(byte ^ 0xFF for byte in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch") as raised:
        resume_training(tmp_path, max_days=4, progress=False, tensorboard=False)
    assert "\n" not in str(raised.value)


def test_time_limit_stops_between_days(tmp_path: Path) -> None:
    result = train(
        "pairwise",
        TINY["pairwise"],
        tmp_path,
        tiny_days("pairwise"),
        RunSettings(max_seconds=1e-6, eval_every_days=0),
        progress=False,
        tensorboard=False,
    )
    assert result.stopped_by_time_limit and result.days == 0
    assert result.final_model_path.exists() and result.best_model_path.exists()


def test_a_config_of_another_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="a pairwise run takes a PairwiseConfig"):
        tiny_train("pairwise", tmp_path, 1, config=TINY["dqn"])


def test_selection_days_of_preset_training_are_fixed_and_apart_from_the_tuners() -> None:
    plain = [day.name for day in PresetDays("geneva", 3).selection_days]
    assert plain == [f"geneva-{seed}" for seed in VALIDATION_SEEDS[:3]]
    fleets = FleetDays(selection=3).selection_days
    assert plain != [day.name for day in fleets]
