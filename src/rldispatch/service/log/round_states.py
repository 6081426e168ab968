"""The state of a ``/rl/round``, logged once per round and compressed.

A round's rows in ``rl_suggestions`` (one per assignment, or one of no booking) do not each
hold the round's state: they name it (``request.round.state_key``), and the state itself is
one row of ``rl_round_states``: its JSON text, zlib-compressed, under a key that is the
SHA-256 of that text and of the UTC day it was logged on. The same state sent again on the
same day (a dispatcher's one-minute rounds while nothing changes: the request's own
``minute_of_day`` is kept in the rows, not in the state) is stored once, and a state row
lives on the UTC day of the rows naming it, so retention prunes and archives them
together. A state larger than :data:`MAX_LOGGED_STATE_BYTES` compressed is not logged: its
rows say so (``state_omitted``) and the count of such rounds is kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import date
from typing import Any

MAX_LOGGED_STATE_BYTES = 4 * 1024 * 1024
"""The most a round's compressed state may take in the log (a request body is 8 MiB at most;
its JSON compresses about tenfold)."""
COMPRESSION_LEVEL = 6
STATE_KEY = "state_key"
STATE_OMITTED = "state_omitted"
STATE_MINUTE_OF_DAY = "state_minute_of_day"
ROAD_NETWORK = "road_network"
"""The road network file a request travelled on (``serve --road-network``), when the service
has one: in a round's summary, and beside the fields of a suggestion's logged request."""
"""The request's own ``minute_of_day``, kept in the rows rather than in the state: rounds
sent every minute on an unchanged fleet then share one stored state."""


@dataclass(frozen=True)
class LoggedState:
    """A round's state ready for the log: its key, day, compressed text (base64, so every
    database and the archive's JSON lines carry it as text) and sizes."""

    key: str
    day: date
    compressed_b64: str
    json_bytes: int

    @property
    def size_bytes(self) -> int:
        return len(self.compressed_b64)


def state_key(state_json: bytes, day: date) -> str:
    """The key of a state's JSON text logged on UTC ``day``."""
    return hashlib.sha256(day.isoformat().encode() + b"\n" + state_json).hexdigest()


def logged_state(state_json: str, day: date) -> LoggedState:
    """Compress a round's state (its JSON text) for the log."""
    data = state_json.encode()
    compressed = zlib.compress(data, COMPRESSION_LEVEL)
    return LoggedState(
        state_key(data, day), day, base64.b64encode(compressed).decode("ascii"), len(data)
    )


def state_text(compressed_b64: str) -> str:
    """A logged state's JSON text again.

    :raises ValueError: not a state this module wrote.
    """
    try:
        return zlib.decompress(base64.b64decode(compressed_b64, validate=True)).decode()
    except (zlib.error, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"not a compressed round state ({error})") from None


def round_request(summary: dict[str, Any], logged: LoggedState | None) -> str:
    """The ``request`` a round's rows hold: the round's summary and its state's key (or
    ``state_omitted`` when the state was too large to log)."""
    reference = {STATE_KEY: logged.key} if logged is not None else {STATE_OMITTED: "too_large"}
    return json.dumps({"round": {**summary, **reference}})


def resolve_round_request(request: Any, states: dict[str, str]) -> Any:
    """A round row's request with its state put back (``states``: key to compressed text);
    other requests as they are.

    :raises KeyError: the state it names is not in ``states``.
    :raises ValueError: the state cannot be read.
    """
    if not isinstance(request, dict):
        return request
    summary = request.get("round")
    if not isinstance(summary, dict) or STATE_KEY not in summary or "state" in request:
        return request
    key = summary[STATE_KEY]
    if key not in states:
        raise KeyError(key)
    state = json.loads(state_text(states[key]))
    if STATE_MINUTE_OF_DAY in summary:
        state["minute_of_day"] = summary[STATE_MINUTE_OF_DAY]
    return {**request, "state": state}


def logged_road_network(request: Any) -> str | None:
    """The road network file a logged request (a round's or a suggestion's) travelled on
    (None: the travel formula, or a row of a service that did not log it)."""
    if not isinstance(request, dict):
        return None
    summary = request.get("round")
    value = (summary if isinstance(summary, dict) else request).get(ROAD_NETWORK)
    return value if isinstance(value, str) else None


def suggestion_body(request: Any) -> Any:
    """A suggestion's logged request without the road network logged beside its fields: the
    ``/rl/suggest`` body as it was sent, its ``travel`` block the one the service played."""
    if isinstance(request, dict) and ROAD_NETWORK in request:
        return {key: value for key, value in request.items() if key != ROAD_NETWORK}
    return request
