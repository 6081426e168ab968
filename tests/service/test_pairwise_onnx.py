"""A pairwise model on ONNX Runtime: exported with dynamic set sizes, the same decisions as
the NumPy forward pass on held-out days, served from an ``.onnx`` file or exported at start."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rldispatch.agents.onnx_files import export_onnx
from rldispatch.agents.pairwise.model_file import load_pairwise_model
from rldispatch.agents.pairwise.onnx_export import OnnxPairQ, export_pairwise_onnx_bytes
from rldispatch.agents.pairwise.policy import PairwisePolicy
from rldispatch.agents.pairwise.serving import LoadedPairwiseQModel
from rldispatch.agents.serving import ModelLoadError
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.models.loading import load_served_model
from tests.service.helpers import live_request, make_pairwise_model_file

RL_ON = ToggleState(enabled=True, ab_ratio=1.0)


@pytest.fixture(scope="module")
def pairwise_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pairwise_model_file(tmp_path_factory.mktemp("pw") / "pairwise.safetensors")


@pytest.mark.parametrize("preset", ["geneva", "geneva-mix"])
def test_onnx_decides_as_numpy_on_held_out_days(pairwise_path: Path, preset: str) -> None:
    loaded = load_pairwise_model(pairwise_path)
    numpy_policy = PairwisePolicy(loaded)
    scorer = OnnxPairQ(export_pairwise_onnx_bytes(loaded.network, loaded.metadata))
    onnx_policy = PairwisePolicy.from_scorer(scorer, loaded.metadata)
    decisions = differing = 0
    largest = 0.0
    for k in range(2):
        day = make_preset(preset, HELD_OUT_SEEDS.start + 100 + k)
        env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=10))
        env.reset(options={"scenario": day})
        terminated = False
        while not terminated:
            state = numpy_policy.state(env)
            wait_np, pairs_np = numpy_policy.q_function(state)
            wait_ort, pairs_ort = scorer(state)
            largest = max(largest, abs(wait_np - wait_ort), *np.abs(pairs_np - pairs_ort))
            action = numpy_policy.act(env)
            differing += onnx_policy.act(env) != action
            decisions += 1
            _, _, terminated, _, _ = env.step(action)
    assert decisions > 100
    assert differing == 0
    assert largest < 1e-4


def test_a_state_without_candidates_scores_as_numpy(pairwise_path: Path) -> None:
    loaded = load_pairwise_model(pairwise_path)
    policy = PairwisePolicy(loaded)
    day = make_preset("geneva", HELD_OUT_SEEDS.start)
    env = DispatchEnv(preset=None, scenario=day, config=EnvConfig(max_drivers=10))
    env.reset(options={"scenario": day})
    state = policy.state(env)
    empty = replace(
        state,
        pairs=state.pairs[:0],
        pair_driver=state.pair_driver[:0],
        pair_slot=state.pair_slot[:0],
        pair_order=state.pair_order[:0],
    )
    scorer = OnnxPairQ(export_pairwise_onnx_bytes(loaded.network, loaded.metadata))
    wait_np, _ = policy.q_function(empty)
    wait_ort, pairs_ort = scorer(empty)
    assert wait_ort == pytest.approx(wait_np, abs=1e-5) and pairs_ort.shape == (0,)


def test_onnx_file_and_onnx_runtime_serve_the_numpy_answer(
    pairwise_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pairwise.onnx"
    result = export_onnx(pairwise_path, out, check_states=200)
    assert result.max_abs_diff < 1e-4 and out.stat().st_size == result.size_bytes
    served = load_served_model(out)
    assert isinstance(served, LoadedPairwiseQModel)
    assert (served.kind, served.runtime, served.model) == ("pairwise", "onnx", None)
    numpy_manager = RLDispatchManager(pairwise_path, state=RL_ON)
    for manager in (
        RLDispatchManager(out, state=RL_ON),
        RLDispatchManager(pairwise_path, runtime="onnx", state=RL_ON),
    ):
        assert manager.model_status()["runtime"] == "onnx"
        for seed in range(4):
            request = live_request(n_drivers=24, n_open=10, seed=seed, booking_id=f"o{seed}")
            ours, theirs = manager.suggest(request), numpy_manager.suggest(request)
            assert ours.source == "rl" and ours.driver_id == theirs.driver_id
            assert [c.driver_id for c in ours.candidates] == [
                c.driver_id for c in theirs.candidates
            ]


def test_onnx_file_refuses_the_numpy_runtime(pairwise_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairwise.onnx"
    export_onnx(pairwise_path, out, check_states=50)
    with pytest.raises(ModelLoadError, match="runtime"):
        load_served_model(out, "numpy")
