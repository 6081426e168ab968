"""The pairwise Q-network as an ONNX graph, and its forward pass on ONNX Runtime.

The graph scores one state. Its inputs are the state's sets, each of any size (dynamic axes):
``drivers`` ``(D, 11)``, ``bookings`` ``(M, 14)``, ``pairs`` ``(P, 16)`` float32, ``pair_driver``
and ``pair_slot`` ``(P,)`` int64, ``globals`` ``(9,)`` float32; it answers ``wait_q`` ``(1,)``
and ``pair_q`` ``(P,)``, the values :class:`~rldispatch.agents.pairwise.network.NumpyPairQ`
computes (a state without pairs included: its pools are zeros). The model's metadata travels
in the file's ``metadata_props`` under :data:`~rldispatch.agents.onnx_files.METADATA_KEY`
with ``format`` :data:`FORMAT`.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from rldispatch.agents.onnx_files import METADATA_KEY, OPSET_VERSION
from rldispatch.agents.pairwise.features import PairState
from rldispatch.agents.pairwise.model_file import LoadedPairwiseModel, PairwiseMetadata
from rldispatch.agents.pairwise.network import PairQNetwork
from rldispatch.agents.pairwise.policy import PairwisePolicy

FORMAT = "rldispatch-pairwise-onnx/1"
INPUTS = ("drivers", "bookings", "pairs", "pair_driver", "pair_slot", "globals")
OUTPUTS = ("wait_q", "pair_q")


class _OneState(nn.Module):
    """:class:`PairQNetwork`'s forward pass on one state's unpacked sets."""

    def __init__(self, network: PairQNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(
        self,
        drivers: torch.Tensor,
        bookings: torch.Tensor,
        pairs: torch.Tensor,
        pair_driver: torch.Tensor,
        pair_slot: torch.Tensor,
        globals_: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.network
        global_part = net.global_in(globals_[None, :])  # (1, H)
        h1 = torch.relu(
            net.driver_in(drivers).index_select(0, pair_driver)
            + net.booking_in(bookings).index_select(0, pair_slot)
            + net.pair_in(pairs)
            + global_part
        )
        count = torch.ones_like(pair_driver, dtype=torch.float32).sum()
        h1_pool = _pool(h1, count)
        h2 = torch.relu(net.pair_hidden(h1) + net.context(h1_pool))
        advantage = net.pair_out(h2)[:, 0]
        summary = torch.cat([_pool(h2, count), torch.relu(global_part)], dim=-1)
        head = net.head(summary)[0]
        value, wait_advantage = head[0], head[1]
        base = value - (advantage.sum() + wait_advantage) / (count + 1.0)
        wait_q = (base + wait_advantage + net.known_reward[3])[None]
        pair_q = base + advantage + net.known_pair_reward(pairs)
        return wait_q, pair_q


def _pool(rows: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``[mean, max]`` of non-negative rows, ``(1, 2H)``; zeros when there are none."""
    zero = torch.zeros(1, int(rows.shape[1]), dtype=rows.dtype)  # a constant: H is fixed
    total = rows.sum(0, keepdim=True)
    maximum = torch.cat([rows, zero], dim=0).amax(0, keepdim=True)
    return torch.cat([total / torch.clamp(count, min=1.0), maximum], dim=-1)


def export_pairwise_onnx_bytes(network: PairQNetwork, metadata: PairwiseMetadata) -> bytes:
    """The ONNX graph of ``network`` for one state, with ``metadata`` inside."""
    import onnx

    from rldispatch.agents.pairwise.features import (
        BOOKING_FEATURES,
        DRIVER_FEATURES,
        GLOBAL_FEATURES,
        PAIR_FEATURES,
    )

    example = (
        torch.zeros(3, len(DRIVER_FEATURES)),
        torch.zeros(2, len(BOOKING_FEATURES)),
        torch.zeros(4, len(PAIR_FEATURES)),
        torch.tensor([0, 1, 2, 0]),
        torch.tensor([0, 0, 1, 1]),
        torch.zeros(len(GLOBAL_FEATURES)),
    )
    buffer = io.BytesIO()
    module = _OneState(network).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated
        torch.onnx.export(
            module,
            example,
            buffer,
            dynamo=False,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={
                "drivers": {0: "D"},
                "bookings": {0: "M"},
                "pairs": {0: "P"},
                "pair_driver": {0: "P"},
                "pair_slot": {0: "P"},
                "pair_q": {0: "P"},
            },
            opset_version=OPSET_VERSION,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    entry = graph.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": FORMAT, **metadata.to_dict()})
    graph.producer_name = "rldispatch"
    onnx.checker.check_model(graph)
    return graph.SerializeToString()


def read_pairwise_onnx_metadata(model_bytes: bytes) -> PairwiseMetadata | None:
    """The metadata of a pairwise ONNX graph; None when the graph is not one."""
    import onnx

    graph = onnx.load_from_string(model_bytes)
    props = {entry.key: entry.value for entry in graph.metadata_props}
    try:
        data: Any = json.loads(props.get(METADATA_KEY, "{}"))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    data.pop("format")
    return PairwiseMetadata.from_dict(data)


class OnnxPairQ:
    """The pairwise forward pass on ONNX Runtime (one thread), called like
    :class:`~rldispatch.agents.pairwise.network.NumpyPairQ`: ``state -> (Q_wait, Q_pairs)``."""

    def __init__(self, model_bytes: bytes, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUTS):
            raise ValueError(f"the graph's inputs are {names}, expected {list(INPUTS)}")

    def __call__(self, state: PairState) -> tuple[float, np.ndarray]:
        feeds = {
            "drivers": np.ascontiguousarray(state.drivers, dtype=np.float32),
            "bookings": np.ascontiguousarray(state.bookings, dtype=np.float32),
            "pairs": np.ascontiguousarray(state.pairs, dtype=np.float32),
            "pair_driver": np.ascontiguousarray(state.pair_driver, dtype=np.int64),
            "pair_slot": np.ascontiguousarray(state.pair_slot, dtype=np.int64),
            "globals": np.ascontiguousarray(state.globals, dtype=np.float32),
        }
        wait_q, pair_q = self.session.run(list(OUTPUTS), feeds)
        return float(wait_q[0]), pair_q


def max_difference_on_days(
    model: LoadedPairwiseModel, scorer: OnnxPairQ, count: int, seed: int = 0
) -> tuple[int, float]:
    """``(states, max |dQ|)`` of ``scorer`` against the NumPy forward pass on ``count``
    states met on geneva days (the model's own play, and cheapest insertion)."""
    from rldispatch.env import DispatchEnv, EnvConfig
    from rldispatch.policies.baselines import make_baseline
    from rldispatch.scenarios.presets import make_preset

    policy = PairwisePolicy(model)
    checked, largest, day = 0, 0.0, 0
    while checked < count:
        scenario = make_preset("geneva", seed + day)
        player = policy if day % 2 == 0 else make_baseline("insertion")
        env = DispatchEnv(preset=None, scenario=scenario, config=EnvConfig(max_drivers=10))
        env.reset(options={"scenario": scenario})
        terminated = False
        while not terminated and checked < count:
            state = policy.state(env)
            wait_np, pairs_np = policy.q_function(state)
            wait_ort, pairs_ort = scorer(state)
            largest = max(largest, abs(wait_np - wait_ort), *np.abs(pairs_np - pairs_ort))
            checked += 1
            _, _, terminated, _, _ = env.step(player.act(env))
        day += 1
    return checked, float(largest)
