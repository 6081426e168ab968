"""The network of ``guided-reopt``: a prize per open booking, a value per plan end, a
commit score per planned booking and a take score per booking the plan leaves out.

Small multilayer perceptrons, one per term, each ``features -> hidden -> hidden -> 1``
(ReLU). The prize and the value are bounded as ``term_scale * tanh(output)`` reward units: a
term can tip a close choice but never outweigh a booking's whole worth by much. The commit
score is a logit (commit when it is at least 0; :mod:`.gate`). The last layer of each starts
at zero, so the untrained network adds nothing and commits every planned booking: the policy
is then exactly ``reopt``. The gate's head exists only when ``gate`` is one of its terms; it
is a perceptron (``gate_form="mlp"``) or a linear score over :data:`.gate.LINEAR_GATE_FEATURES`
(``gate_form="linear"``: ``1 + weights @ row``, its weights starting at zero), which evolution
strategies train from the day's reward (:mod:`.es_learning`). The take head exists only with
``take`` (trained from the reward by :mod:`.es_learning` too).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rldispatch.agents.guided_reopt.features import (
    BOOKING_FEATURES,
    END_FEATURES,
    GATE_FEATURES,
    STATE_FEATURES,
)
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES, linear_gate_scores

TERMS = ("prize", "value", "gate")
"""The learned terms: ``prize`` (per open booking), ``value`` (per plan end), ``gate`` (commit
or hold each booking the plan gives to a driver)."""
TAKE_TERM = "take"
"""A term learned from the reward alone (:mod:`.es_learning`), not by imitation: ``take`` scores
each visible booking the plan leaves out when the policy would otherwise wait while an
assignment is possible; the best one is taken (by its cheapest driver) when its score is
above 0."""
ALL_TERMS = (*TERMS, TAKE_TERM)
"""Every term a network may have."""
DEFAULT_TERMS = ("prize", "value")
"""The terms a network has unless told otherwise."""
GATE_FORMS = ("mlp", "linear")
"""The commit gate's forms: a perceptron over the gate rows, or a linear score."""


def _mlp(inputs: int, hidden: int) -> nn.Sequential:
    layers = nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
    )
    head = nn.Linear(hidden, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    layers.append(head)
    return layers


class TermNetwork(nn.Module):
    """Prize and end-value heads (see the module docstring).

    :param hidden: width of the hidden layers.
    :param terms: the terms the network gives (the others are 0).
    :param term_scale: the bound of each term, in reward units.
    :param gate_form: ``"mlp"`` or ``"linear"`` (see the module docstring).
    """

    def __init__(
        self,
        hidden: int = 32,
        terms: tuple[str, ...] = DEFAULT_TERMS,
        term_scale: float = 15.0,
        gate_form: str = "mlp",
    ) -> None:
        super().__init__()
        if gate_form not in GATE_FORMS:
            raise ValueError(f"gate_form: one of {', '.join(GATE_FORMS)}, got {gate_form!r}")
        self.hidden = int(hidden)
        self.terms = tuple(terms)
        self.term_scale = float(term_scale)
        self.gate_form = gate_form
        self.prize = _mlp(len(BOOKING_FEATURES) + len(STATE_FEATURES), self.hidden)
        self.value = _mlp(len(END_FEATURES) + len(STATE_FEATURES), self.hidden)
        if "gate" in self.terms and gate_form == "mlp":
            self.gate = _mlp(len(GATE_FEATURES) + len(STATE_FEATURES), self.hidden)
        if TAKE_TERM in self.terms:
            self.take = _mlp(len(BOOKING_FEATURES) + len(STATE_FEATURES), self.hidden)
        if "gate" in self.terms and gate_form == "linear":
            self.gate_weights = nn.Parameter(
                torch.zeros(len(LINEAR_GATE_FEATURES), dtype=torch.float64), requires_grad=False
            )

    @property
    def linear_gate(self) -> bool:
        """Whether the commit gate is the linear score (trained by evolution strategies)."""
        return "gate" in self.terms and self.gate_form == "linear"

    def linear_weights(self) -> np.ndarray:
        """The linear gate's weights (:data:`.gate.LINEAR_GATE_FEATURES` order)."""
        return self.gate_weights.detach().numpy().astype(np.float64).copy()

    def set_linear_weights(self, weights: np.ndarray) -> None:
        """Replace the linear gate's weights."""
        values = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if values.shape != self.gate_weights.shape:
            raise ValueError(f"gate weights: {len(LINEAR_GATE_FEATURES)} values expected")
        with torch.no_grad():
            self.gate_weights.copy_(values)

    @property
    def objective_terms(self) -> bool:
        """Whether the network adds terms to the re-plan's objective (prize or value)."""
        return "prize" in self.terms or "value" in self.terms

    def gate_logits(self, rows: torch.Tensor) -> torch.Tensor:
        """Commit logit per gate row (0 without a gate: commit)."""
        if "gate" not in self.terms or rows.shape[0] == 0:
            return torch.zeros(rows.shape[0])
        if self.gate_form == "linear":
            return 1.0 + rows.to(torch.float64) @ self.gate_weights
        return self.gate(rows)[:, 0]

    def gate_scores(self, rows: np.ndarray) -> np.ndarray:
        """Commit logits as a NumPy array, computed in NumPy (commit when >= 0)."""
        if "gate" not in self.terms or rows.shape[0] == 0:
            return np.zeros(rows.shape[0])
        if self.gate_form == "linear":
            return linear_gate_scores(self.linear_weights(), rows)
        return self._linear_stack(self.gate, rows)

    def take_scores(self, rows: np.ndarray) -> np.ndarray:
        """Take scores of left-out bookings' rows (booking features), computed in NumPy
        (take the best when it is above 0; 0 without the term: wait, as ``reopt``)."""
        if TAKE_TERM not in self.terms or rows.shape[0] == 0:
            return np.zeros(rows.shape[0])
        return self._linear_stack(self.take, rows)

    def prizes(self, rows: torch.Tensor) -> torch.Tensor:
        """Prize per booking row, in reward units."""
        if "prize" not in self.terms or rows.shape[0] == 0:
            return torch.zeros(rows.shape[0])
        return torch.tanh(self.prize(rows)[:, 0]) * self.term_scale

    def values(self, rows: torch.Tensor) -> torch.Tensor:
        """Value per end row, in reward units."""
        if "value" not in self.terms or rows.shape[0] == 0:
            return torch.zeros(rows.shape[0])
        return torch.tanh(self.value(rows)[:, 0]) * self.term_scale

    def evaluate(self, booking: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prizes and end values as NumPy arrays, computed in NumPy (a re-plan's few dozen
        rows take microseconds there; PyTorch's call overhead and threads cost more)."""
        prizes = self._forward(self.prize, booking) if "prize" in self.terms else None
        values = self._forward(self.value, end) if "value" in self.terms else None
        return (
            np.zeros(booking.shape[0]) if prizes is None else prizes,
            np.zeros(end.shape[0]) if values is None else values,
        )

    def _forward(self, layers: nn.Sequential, rows: np.ndarray) -> np.ndarray:
        return np.tanh(self._linear_stack(layers, rows)) * self.term_scale

    def _linear_stack(self, layers: nn.Sequential, rows: np.ndarray) -> np.ndarray:
        out = np.asarray(rows, dtype=np.float32)
        linear = [layer for layer in layers if isinstance(layer, nn.Linear)]
        for k, layer in enumerate(linear):
            out = out @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
            if k < len(linear) - 1:
                out = np.maximum(out, 0.0)
        return out[:, 0].astype(np.float64)
