"""The Q-network: an MLP from an observation to one value per action, optionally dueling.

:class:`NumpyQFunction` runs the same network in plain NumPy on views of the torch weights:
a batch-1 forward pass costs a fraction of eager PyTorch's, which is what acting (one
decision at a time) needs. The views follow in-place weight updates, so no copy is needed
after an optimizer step or a ``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rldispatch.agents.dqn.config import DQNConfig
from rldispatch.env import BOOKING_FEATURES, DRIVER_FEATURES, GLOBAL_FEATURES


class QNetwork(nn.Module):
    """``observation_size -> hidden_sizes... -> n_actions`` with ReLU between layers.

    :param dueling: the last hidden layer feeds a state value ``V(s)`` and advantages
        ``A(s, a)``, combined as ``V + A - mean(A)``.
    """

    def __init__(
        self,
        observation_size: int,
        n_actions: int,
        hidden_sizes: Sequence[int] = (512, 256, 128),
        dueling: bool = False,
    ) -> None:
        super().__init__()
        self.observation_size = int(observation_size)
        self.n_actions = int(n_actions)
        self.hidden_sizes = tuple(int(width) for width in hidden_sizes)
        self.dueling = bool(dueling)
        layers: list[nn.Module] = []
        width_in = self.observation_size
        for width in self.hidden_sizes:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, self.n_actions)
        self.value_head = nn.Linear(width_in, 1) if self.dueling else None

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        features = self.body(observations)
        q_values = self.head(features)
        if self.value_head is not None:
            q_values = self.value_head(features) + q_values - q_values.mean(dim=-1, keepdim=True)
        return q_values

    def q_of_actions(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)`` of one action per observation, ``(batch,)``."""
        return self(observations).gather(1, actions[:, None]).squeeze(1)

    def masked_q_values(self, observations: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Q-values with ``-inf`` for the actions ``masks`` marks invalid."""
        return self(observations).masked_fill(~masks, -torch.inf)


class PairScorerQNetwork(nn.Module):
    """One shared scorer for every (driver, slot) pair, plus a score for waiting.

    The observation is read with :class:`rldispatch.env.DispatchEnv`'s layout: ``D`` drivers
    of 4 features, ``M`` booking slots of 4 features, 2 global features. The Q-value of
    giving slot ``j`` to driver ``i`` is an MLP (``hidden_sizes``, ReLU) of

    | features                                                     | count        |
    |--------------------------------------------------------------|--------------|
    | driver ``i``'s features                                      | 4            |
    | slot ``j``'s features                                        | 4            |
    | offset and distance from where ``i`` will be free to ``j``'s pickup | 3     |
    | slack: hours until ``j``'s window closes - hours until ``i`` is free | 1    |
    | the global features                                          | 2            |
    | a context vector computed from the whole observation         | context_size |

    and the Q-value of waiting is a linear function of the context. The same weights score
    every pair, so what is learnt about one driver and slot applies to all of them. The first
    layer is computed in parts (per driver, per slot, per pair, per state) and summed, which
    equals the layer applied to the concatenated features at a fraction of the cost.
    """

    def __init__(
        self,
        max_drivers: int,
        visible_slots: int,
        hidden_sizes: Sequence[int] = (64,),
        context_size: int = 32,
        dueling: bool = False,
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("pair-scorer network: needs at least one hidden layer")
        self.max_drivers = int(max_drivers)
        self.visible_slots = int(visible_slots)
        self.observation_size = (
            self.max_drivers * DRIVER_FEATURES
            + self.visible_slots * BOOKING_FEATURES
            + GLOBAL_FEATURES
        )
        self.n_actions = 1 + self.max_drivers * self.visible_slots
        self.hidden_sizes = tuple(int(width) for width in hidden_sizes)
        self.context_size = int(context_size)
        self.dueling = bool(dueling)
        self.context = nn.Sequential(
            nn.Linear(self.observation_size, 2 * self.context_size),
            nn.ReLU(),
            nn.Linear(2 * self.context_size, self.context_size),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        width_in = PAIR_FEATURES + self.context_size
        for width in self.hidden_sizes:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        self.pair_scorer = nn.Sequential(*layers)
        self.wait_head = nn.Linear(self.context_size, 1)
        self.value_head = nn.Linear(self.context_size, 1) if self.dueling else None

    def split(
        self, observations: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Drivers ``(B, D, 4)``, slots ``(B, M, 4)``, pair features ``(B, D, M, 4)`` (offset,
        distance, slack) and global features ``(B, 2)``."""
        batch = observations.shape[0]
        d, m = self.max_drivers, self.visible_slots
        drivers = observations[:, : d * DRIVER_FEATURES].reshape(batch, d, DRIVER_FEATURES)
        slots = observations[:, d * DRIVER_FEATURES : -GLOBAL_FEATURES].reshape(
            batch, m, BOOKING_FEATURES
        )
        offset = slots[:, None, :, 0:2] - drivers[:, :, None, 0:2]
        distance = torch.sqrt((offset * offset).sum(-1, keepdim=True) + 1e-6)
        slack = slots[:, None, :, 2:3] - drivers[:, :, None, 2:3]
        pair = torch.cat([offset, distance, slack], dim=-1)
        return drivers, slots, pair, observations[:, -GLOBAL_FEATURES:]

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        single = observations.dim() == 1
        if single:
            observations = observations[None, :]
        context = self.context(observations)
        drivers, slots, pair, global_features = self.split(observations)
        first = self.pair_scorer[0]
        weight = first.weight
        per_driver = F.linear(drivers, weight[:, DRIVER_COLUMNS])
        state = torch.cat([global_features, context], dim=1)
        per_slot_and_state = (
            F.linear(slots, weight[:, SLOT_COLUMNS])
            + F.linear(state, weight[:, STATE_COLUMNS:], first.bias)[:, None, :]
        )
        hidden = F.linear(pair, weight[:, PAIR_COLUMNS])  # (B, D, M, H)
        hidden += per_driver[:, :, None, :]  # in place: no 3 MB temporary per sum
        hidden += per_slot_and_state[:, None, :, :]
        pair_q = self.pair_scorer[1:](hidden)
        q_values = torch.cat([self.wait_head(context), pair_q.flatten(1)], dim=1)
        if self.value_head is not None:
            q_values = self.value_head(context) + q_values - q_values.mean(dim=-1, keepdim=True)
        return q_values[0] if single else q_values

    def q_of_actions(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)`` of one action per observation, ``(batch,)``: scores only those pairs
        (200 times less work than :meth:`forward` on the classic shapes)."""
        if self.value_head is not None:  # the dueling mean needs every action
            return self(observations).gather(1, actions[:, None]).squeeze(1)
        context = self.context(observations)
        rows = torch.arange(observations.shape[0])
        pair_q = self._score_pairs(observations, context, rows, (actions - 1).clamp(min=0))
        wait_q = self.wait_head(context).squeeze(1)
        return torch.where(actions == 0, wait_q, pair_q)

    def masked_q_values(self, observations: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Q-values with ``-inf`` for invalid actions; only the valid pairs are scored (about
        10 of 200 on Geneva days)."""
        if self.value_head is not None:
            return self(observations).masked_fill(~masks, -torch.inf)
        context = self.context(observations)
        q_values = torch.full((observations.shape[0], self.n_actions), -torch.inf)
        q_values[:, 0] = self.wait_head(context).squeeze(1).masked_fill(~masks[:, 0], -torch.inf)
        rows, pair_index = masks[:, 1:].nonzero(as_tuple=True)
        if rows.numel():
            q_values[rows, pair_index + 1] = self._score_pairs(
                observations, context, rows, pair_index
            )
        return q_values

    def _score_pairs(
        self,
        observations: torch.Tensor,
        context: torch.Tensor,
        rows: torch.Tensor,
        pair_index: torch.Tensor,
    ) -> torch.Tensor:
        """Scores of the pairs ``pair_index`` (``driver * M + slot``) of observations ``rows``."""
        d, m = self.max_drivers, self.visible_slots
        observed = observations[rows]
        driver = observed[:, : d * DRIVER_FEATURES].reshape(-1, d, DRIVER_FEATURES)
        driver = driver[torch.arange(rows.numel()), pair_index // m]
        slot = observed[:, d * DRIVER_FEATURES : -GLOBAL_FEATURES].reshape(-1, m, BOOKING_FEATURES)[
            torch.arange(rows.numel()), pair_index % m
        ]
        offset = slot[:, 0:2] - driver[:, 0:2]
        distance = torch.sqrt((offset * offset).sum(-1, keepdim=True) + 1e-6)
        slack = slot[:, 2:3] - driver[:, 2:3]
        features = torch.cat(
            [driver, slot, offset, distance, slack, observed[:, -GLOBAL_FEATURES:], context[rows]],
            dim=1,
        )
        return self.pair_scorer(features).squeeze(1)


PAIR_FEATURES = DRIVER_FEATURES + BOOKING_FEATURES + 4 + GLOBAL_FEATURES
"""Features per pair before the context: driver, slot, offset (2), distance, slack, global."""
DRIVER_COLUMNS = slice(0, DRIVER_FEATURES)
SLOT_COLUMNS = slice(DRIVER_FEATURES, DRIVER_FEATURES + BOOKING_FEATURES)
PAIR_COLUMNS = slice(DRIVER_FEATURES + BOOKING_FEATURES, DRIVER_FEATURES + BOOKING_FEATURES + 4)
STATE_COLUMNS = DRIVER_FEATURES + BOOKING_FEATURES + 4
"""First-layer columns from here on: the global features, then the context."""


def build_q_network(
    config: DQNConfig, observation_size: int, n_actions: int, max_drivers: int, visible_slots: int
) -> QNetwork | PairScorerQNetwork:
    """The Q-network ``config.architecture`` names, for an env of these shapes."""
    if config.architecture == "pair_scorer":
        network = PairScorerQNetwork(
            max_drivers, visible_slots, config.hidden_sizes, config.context_size, config.dueling
        )
        if (network.observation_size, network.n_actions) != (observation_size, n_actions):
            raise ValueError(
                f"pair-scorer network for {max_drivers} drivers and {visible_slots} slots reads "
                f"{network.observation_size} floats and scores {network.n_actions} actions, "
                f"not {observation_size} and {n_actions}"
            )
        return network
    return QNetwork(observation_size, n_actions, config.hidden_sizes, config.dueling)


class NumpyQFunction:
    """The forward pass of a :class:`QNetwork` in NumPy, sharing the network's weights."""

    def __init__(self, network: QNetwork) -> None:
        linears = [layer for layer in network.body if isinstance(layer, nn.Linear)]
        linears.append(network.head)
        # ``weight.T`` of a (out, in) tensor view: x @ W.T + b without copying.
        self.layers = [
            (layer.weight.detach().numpy().T, layer.bias.detach().numpy()) for layer in linears
        ]
        self.value_layer = (
            (
                network.value_head.weight.detach().numpy().T,
                network.value_head.bias.detach().numpy(),
            )
            if network.value_head is not None
            else None
        )

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a batch ``(n, observation_size)`` or of one observation."""
        features = np.asarray(observations, dtype=np.float32)
        *hidden, (head_weight, head_bias) = self.layers
        for weight, bias in hidden:
            features = features @ weight
            features += bias
            np.maximum(features, 0.0, out=features)
        q_values = features @ head_weight + head_bias
        if self.value_layer is not None:
            value_weight, value_bias = self.value_layer
            value = features @ value_weight + value_bias
            q_values = value + q_values - q_values.mean(axis=-1, keepdims=True)
        return q_values

    def masked(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Q-values with ``-inf`` for invalid actions."""
        return _masked(self(observations), masks)


def _masked(q_values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.where(masks, q_values, -np.inf)


def _numpy_linear(layer: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    """``(W.T, b)`` as NumPy views of the layer's tensors."""
    return layer.weight.detach().numpy().T, layer.bias.detach().numpy()


class NumpyPairScorerQFunction:
    """The forward pass of a :class:`PairScorerQNetwork` in NumPy, sharing its weights."""

    def __init__(self, network: PairScorerQNetwork) -> None:
        self.max_drivers = network.max_drivers
        self.visible_slots = network.visible_slots
        self.context_layers = [
            _numpy_linear(layer) for layer in network.context if isinstance(layer, nn.Linear)
        ]
        scorer = [
            _numpy_linear(layer) for layer in network.pair_scorer if isinstance(layer, nn.Linear)
        ]
        first_weight, self.first_bias = scorer[0]  # (features, hidden)
        self.driver_weight = first_weight[DRIVER_COLUMNS]
        self.slot_weight = first_weight[SLOT_COLUMNS]
        self.pair_weight = first_weight[PAIR_COLUMNS]
        self.state_weight = first_weight[STATE_COLUMNS:]
        self.scorer_layers = scorer[1:]
        self.wait_layer = _numpy_linear(network.wait_head)
        self.value_layer = (
            _numpy_linear(network.value_head) if network.value_head is not None else None
        )

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.float32)
        single = observations.ndim == 1
        if single:
            observations = observations[None, :]
        batch = observations.shape[0]
        d, m = self.max_drivers, self.visible_slots
        context = observations
        for weight, bias in self.context_layers:
            context = np.maximum(context @ weight + bias, 0.0)
        drivers = observations[:, : d * DRIVER_FEATURES].reshape(batch, d, DRIVER_FEATURES)
        slots = observations[:, d * DRIVER_FEATURES : -GLOBAL_FEATURES].reshape(
            batch, m, BOOKING_FEATURES
        )
        offset = slots[:, None, :, 0:2] - drivers[:, :, None, 0:2]
        distance = np.sqrt((offset * offset).sum(-1, keepdims=True) + np.float32(1e-6))
        slack = slots[:, None, :, 2:3] - drivers[:, :, None, 2:3]
        pair = np.concatenate([offset, distance, slack], axis=-1).reshape(-1, 4)
        state = np.concatenate([observations[:, -GLOBAL_FEATURES:], context], axis=1)
        hidden = (pair @ self.pair_weight).reshape(batch, d, m, -1)
        hidden += (drivers.reshape(-1, DRIVER_FEATURES) @ self.driver_weight).reshape(
            batch, d, 1, -1
        )
        hidden += (slots.reshape(-1, BOOKING_FEATURES) @ self.slot_weight).reshape(batch, 1, m, -1)
        hidden += (state @ self.state_weight + self.first_bias).reshape(batch, 1, 1, -1)
        hidden = hidden.reshape(batch * d * m, -1)
        np.maximum(hidden, 0.0, out=hidden)
        *middle, (head_weight, head_bias) = self.scorer_layers
        for weight, bias in middle:
            hidden = hidden @ weight
            hidden += bias
            np.maximum(hidden, 0.0, out=hidden)
        pair_q = (hidden @ head_weight + head_bias).reshape(batch, d * m)
        wait_weight, wait_bias = self.wait_layer
        q_values = np.concatenate([context @ wait_weight + wait_bias, pair_q], axis=1)
        if self.value_layer is not None:
            value_weight, value_bias = self.value_layer
            value = context @ value_weight + value_bias
            q_values = value + q_values - q_values.mean(axis=-1, keepdims=True)
        return q_values[0] if single else q_values

    def masked(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Q-values with ``-inf`` for invalid actions; only the valid pairs are scored."""
        if self.value_layer is not None:
            return _masked(self(observations), masks)
        observations = np.asarray(observations, dtype=np.float32)
        single = observations.ndim == 1
        if single:
            observations, masks = observations[None, :], np.asarray(masks)[None, :]
        d, m = self.max_drivers, self.visible_slots
        context = observations
        for weight, bias in self.context_layers:
            context = np.maximum(context @ weight + bias, 0.0)
        wait_weight, wait_bias = self.wait_layer
        q_values = np.full(masks.shape, -np.inf, dtype=np.float32)
        q_values[:, 0] = np.where(masks[:, 0], (context @ wait_weight + wait_bias)[:, 0], -np.inf)
        rows, pair_index = np.nonzero(masks[:, 1:])
        if rows.size:
            observed = observations[rows]
            driver = observed[:, : d * DRIVER_FEATURES].reshape(-1, d, DRIVER_FEATURES)
            driver = driver[np.arange(rows.size), pair_index // m]
            slot = observed[:, d * DRIVER_FEATURES : -GLOBAL_FEATURES].reshape(
                -1, m, BOOKING_FEATURES
            )[np.arange(rows.size), pair_index % m]
            offset = slot[:, 0:2] - driver[:, 0:2]
            distance = np.sqrt((offset * offset).sum(-1, keepdims=True) + np.float32(1e-6))
            slack = slot[:, 2:3] - driver[:, 2:3]
            state = np.concatenate([observed[:, -GLOBAL_FEATURES:], context[rows]], axis=1)
            hidden = (
                driver @ self.driver_weight
                + slot @ self.slot_weight
                + np.concatenate([offset, distance, slack], axis=1) @ self.pair_weight
                + state @ self.state_weight
                + self.first_bias
            )
            np.maximum(hidden, 0.0, out=hidden)
            *middle, (head_weight, head_bias) = self.scorer_layers
            for weight, bias in middle:
                hidden = np.maximum(hidden @ weight + bias, 0.0)
            q_values[rows, pair_index + 1] = (hidden @ head_weight + head_bias)[:, 0]
        return q_values[0] if single else q_values


class TorchQFunction:
    """Batch or single forward pass in eager PyTorch (inference mode)."""

    def __init__(self, network: nn.Module) -> None:
        self.network = network

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            tensor = torch.as_tensor(np.asarray(observations, dtype=np.float32))
            return self.network(tensor).numpy()

    def masked(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return _masked(self(observations), masks)


def make_q_function(
    network: nn.Module,
) -> NumpyQFunction | NumpyPairScorerQFunction | TorchQFunction:
    """The fastest forward pass available for ``network`` on NumPy observations."""
    if isinstance(network, QNetwork):
        return NumpyQFunction(network)
    if isinstance(network, PairScorerQNetwork):
        return NumpyPairScorerQFunction(network)
    return TorchQFunction(network)


def masked_argmax(q_values: np.ndarray, mask: np.ndarray) -> int:
    """The valid action with the highest Q-value (the first one on ties)."""
    return int(np.argmax(np.where(mask, q_values, -np.inf)))
