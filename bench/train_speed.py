"""Training speed: env steps per second with gradient updates, ours next to Stable-Baselines3.

    .venv/bin/python bench/train_speed.py [--steps 20000] [--repeats 2] [--json OUT]

Both agents train on ``DispatchEnv(preset="geneva")`` with the same settings: the classic
network (122 -> 512 -> 256 -> 128 -> 201, ReLU), batch 64, one gradient step every 4 env
steps, learning from step 1,000, a 100,000-transition buffer, a hard target update every
1,000 steps, the same learning rate, gamma and exploration schedule, one PyTorch thread and
one BLAS thread. Ours is ``rldispatch.training.train.train`` (dqn kind) without evaluation,
checkpoints or TensorBoard, so the timed loop is acting, stepping, storing and learning, as in SB3's
``learn``. SB3 is vanilla DQN (no masks: its invalid actions cost a penalty and are taken as
a wait); ours masks and computes Double-DQN targets (one forward pass more per update).
The two alternate (ours, SB3, ours, SB3, ...) so a busy machine slows both alike; each
figure is the median over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.env import DispatchEnv
from rldispatch.files import atomic_write_json
from rldispatch.training.days import PresetDays
from rldispatch.training.threads import single_threaded_numerics
from rldispatch.training.train import RunSettings, train

HIDDEN_SIZES = (512, 256, 128)
SETTINGS = DQNConfig(
    hidden_sizes=HIDDEN_SIZES,
    batch_size=64,
    train_frequency=4,
    gradient_steps=1,
    learning_starts=1_000,
    buffer_size=100_000,
    target_update_interval=1_000,
    learning_rate=1e-4,
    gamma=0.99,
    epsilon_start=1.0,
    epsilon_end=0.05,
    epsilon_decay_steps=10_000,
    max_grad_norm=10.0,
)


def ours_steps_per_second(steps: int, seed: int) -> tuple[float, int]:
    """Train about ``steps`` env steps (whole days, ~150 decisions each); steps per second of
    the loop, up to the end of the last day (writing the final files is not counted)."""
    with tempfile.TemporaryDirectory() as out_dir:
        settings = RunSettings(
            max_days=max(1, steps // 150),
            eval_every_days=0,
            checkpoint_every_days=0,
            seed=seed,
            save_replay_buffer=False,
        )
        result = train(
            "dqn",
            SETTINGS,
            Path(out_dir) / "run",
            PresetDays("geneva", selection=1),
            settings,
            progress=False,
            tensorboard=False,
        )
        days = json.loads(result.metrics_path.read_text())["days"]
    return result.decisions / days[-1]["wall_time_s"], result.decisions


def sb3_steps_per_second(steps: int, seed: int) -> float:
    from stable_baselines3 import DQN

    env = DispatchEnv(preset="geneva")
    model = DQN(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": list(HIDDEN_SIZES)},
        learning_rate=SETTINGS.learning_rate,
        buffer_size=SETTINGS.buffer_size,
        learning_starts=SETTINGS.learning_starts,
        batch_size=SETTINGS.batch_size,
        gamma=SETTINGS.gamma,
        train_freq=SETTINGS.train_frequency,
        gradient_steps=SETTINGS.gradient_steps,
        target_update_interval=SETTINGS.target_update_interval,
        exploration_initial_eps=SETTINGS.epsilon_start,
        exploration_final_eps=SETTINGS.epsilon_end,
        exploration_fraction=SETTINGS.epsilon_decay_steps / steps,
        max_grad_norm=SETTINGS.max_grad_norm,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements of each")
    parser.add_argument("--json", type=str, help="write the figures here")
    args = parser.parse_args()
    single_threaded_numerics()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    ours, theirs = [], []
    for repeat in range(args.repeats):
        sps, trained = ours_steps_per_second(args.steps, seed=repeat)
        ours.append(sps)
        print(f"run {repeat + 1}: rldispatch {sps:7.0f} steps/s ({trained} steps)", flush=True)
        sps = sb3_steps_per_second(trained, seed=repeat)
        theirs.append(sps)
        print(f"run {repeat + 1}: SB3 DQN    {sps:7.0f} steps/s ({trained} steps)", flush=True)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    ratio = ours_median / theirs_median
    print(
        f"\nrldispatch DQN: {ours_median:.0f} steps/s | Stable-Baselines3 DQN: "
        f"{theirs_median:.0f} steps/s | ratio {ratio:.2f}x"
    )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "settings": SETTINGS.to_dict(),
                "rldispatch_steps_per_second": ours,
                "sb3_steps_per_second": theirs,
                "rldispatch_median": ours_median,
                "sb3_median": theirs_median,
                "ratio": ratio,
            },
        )


if __name__ == "__main__":
    main()
