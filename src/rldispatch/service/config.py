"""How the service is configured: command-line options over environment variables.

==============================  ============================================================
environment variable            meaning (default)
==============================  ============================================================
``RLDISPATCH_MODEL``            model file (none: the fallback answers everything)
``RLDISPATCH_RUNTIME``          ``auto``, ``numpy``, ``torch`` or ``onnx`` (``auto``)
``RLDISPATCH_FALLBACK_POLICY``  heuristic of the fallback (``insertion``)
``RLDISPATCH_FALLBACK_TIME_LIMIT_S``
                                wall-clock cap of a ``reopt`` fallback's re-plan, seconds;
                                0: none (``1``)
``RLDISPATCH_LOOKAHEAD``        candidates a pairwise model's decisions (rounds and
                                suggestions) play on in copies of the live day; 0: none
                                (``0``)
``RLDISPATCH_LOOKAHEAD_BUDGET_MS``
                                wall-clock budget of one such decision, ms; 0: none
                                (``1000``)
``RLDISPATCH_TRAVEL``           the fleet's travel model: a JSON file holding the scenario
                                format's ``travel`` block, or a scenario file (its block)
                                (none: the model's preset's)
``RLDISPATCH_ROAD_NETWORK``     an OpenStreetMap extract (``.osm.pbf``): travel on its roads
                                instead of the formula, for every request (none)
``RLDISPATCH_REWARD``           the reward weights, a JSON file (none: the model's own)
``RLDISPATCH_REQUEST_BUDGET_MS``
                                wall-clock budget of one suggestion or round, ms from its
                                arrival; past it a round ends, a suggestion falls back
                                (``10000``)
``RLDISPATCH_DATA_DIR``         data folder: SQLite file, local admin token
                                (``$XDG_DATA_HOME/rldispatch`` or ``~/.local/share/rldispatch``)
``RLDISPATCH_DATABASE_URL``     SQLAlchemy URL of the decision log (SQLite in the data folder)
``RLDISPATCH_MODELS_DIR``       the folder models swapped in by an admin must lie in
                                (the model's folder, else ``<data folder>/models``)
``RLDISPATCH_RETAIN_DAYS``      prune suggestions and outcomes older than this many days
                                (none: kept forever)
``RLDISPATCH_ARCHIVE_DIR``      write pruned rows here first, a JSON-lines file per day
``RLDISPATCH_TOKENS``           read tokens, comma separated
``RLDISPATCH_ADMIN_TOKENS``     admin tokens, comma separated
``RLDISPATCH_TOKENS_FILE``      JSON token file (see :mod:`rldispatch.service.http.auth`)
``RLDISPATCH_TILE_URL``         map tiles of the dispatcher's page, a ``{z}/{x}/{y}`` URL
                                template; ``none``: no basemap (OpenStreetMap's)
==============================  ============================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rldispatch.agents.serving import Lookahead
from rldispatch.domain import ScenarioError, TravelConfig, travel_from_dict
from rldispatch.rewards import RewardConfig
from rldispatch.rewards_file import load_reward_file
from rldispatch.service.decisions.request_budget import DEFAULT_REQUEST_BUDGET_MS

ENV_MODEL = "RLDISPATCH_MODEL"
ENV_RUNTIME = "RLDISPATCH_RUNTIME"
ENV_FALLBACK = "RLDISPATCH_FALLBACK_POLICY"
ENV_FALLBACK_TIME_LIMIT = "RLDISPATCH_FALLBACK_TIME_LIMIT_S"
ENV_LOOKAHEAD = "RLDISPATCH_LOOKAHEAD"
ENV_LOOKAHEAD_BUDGET = "RLDISPATCH_LOOKAHEAD_BUDGET_MS"
ENV_REQUEST_BUDGET = "RLDISPATCH_REQUEST_BUDGET_MS"
ENV_DATA_DIR = "RLDISPATCH_DATA_DIR"
ENV_DATABASE_URL = "RLDISPATCH_DATABASE_URL"
ENV_MODELS_DIR = "RLDISPATCH_MODELS_DIR"
ENV_RETAIN_DAYS = "RLDISPATCH_RETAIN_DAYS"
ENV_ARCHIVE_DIR = "RLDISPATCH_ARCHIVE_DIR"
ENV_TRAVEL = "RLDISPATCH_TRAVEL"
ENV_ROAD_NETWORK = "RLDISPATCH_ROAD_NETWORK"
ENV_REWARD = "RLDISPATCH_REWARD"
ENV_TILE_URL = "RLDISPATCH_TILE_URL"
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_FALLBACK_TIME_LIMIT_S = 1.0
"""The cap on a ``reopt`` fallback's re-plan: several times the slowest measured on geneva
states (docs/service.md), so it bounds a request's time without being reached in practice (a
cap that is reached makes the answer depend on the machine's speed)."""


DEFAULT_LOOKAHEAD_BUDGET_MS = 1000.0
"""The budget of one lookahead decision: about the slowest measured on held-out geneva days of
24 drivers (docs/pairwise.md), so it bounds a round's time and is seldom reached."""


def _duration(
    value: str | float | None, field: str, default: float, unit: str, zero: str
) -> float | None:
    """A duration in ``unit`` from an option or variable: ``default`` when not given, None
    for ``0``; a ``ValueError`` naming ``field`` for anything but a number >= 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        amount = float(value)
    except ValueError:
        raise ValueError(f"{field}: must be a number of {unit}, got {value!r}") from None
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{field}: must be 0 ({zero}) or a number of {unit}, got {value!r}")
    return amount or None


def fallback_time_limit(value: str | float | None, field: str) -> float | None:
    """A re-plan cap in seconds from an option or variable: the default when not given, None
    (no cap) for ``0``; a ``ValueError`` naming ``field`` for anything but seconds >= 0."""
    return _duration(value, field, DEFAULT_FALLBACK_TIME_LIMIT_S, "seconds", "no cap")


def _lookahead(value: int | str | None, field: str) -> int:
    """Lookahead candidates: a whole number >= 0 (0: none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    try:
        candidates = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: must be a whole number of candidates, got {value!r}") from None
    if candidates < 0:
        raise ValueError(f"{field}: must be 0 (none) or more, got {candidates}")
    return candidates


def _lookahead_budget(value: float | str | None, field: str) -> float | None:
    """A decision's budget in ms >= 0 from an option or variable (the default when not
    given); None for ``0`` (no budget)."""
    return _duration(value, field, DEFAULT_LOOKAHEAD_BUDGET_MS, "milliseconds", "none")


def request_budget_ms_of(value: float | str | None, field: str) -> float:
    """A request's budget in ms > 0 from an option or variable (the default when not given);
    a ``ValueError`` naming ``field`` otherwise (the server always enforces one)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_REQUEST_BUDGET_MS
    try:
        amount = float(value)
    except ValueError:
        raise ValueError(f"{field}: must be a number of milliseconds, got {value!r}") from None
    if not (math.isfinite(amount) and amount > 0):
        raise ValueError(f"{field}: must be a positive number of milliseconds, got {value!r}")
    return amount


def _retain_days(value: int | str | None) -> int | None:
    """A number of days >= 1, or None (kept forever)."""
    if value is None or value == "":
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"retain-days ({ENV_RETAIN_DAYS}): must be a whole number of days, got {value!r}"
        ) from None
    if days < 1:
        raise ValueError(f"retain-days ({ENV_RETAIN_DAYS}): must be at least 1, got {days}")
    return days


def _tile_url(value: str | None, field: str) -> str:
    """A tile URL template with ``{z}``, ``{x}`` and ``{y}`` (http, https or a path), or ``""``
    for ``none`` (no basemap); the default when not given."""
    if value is None or not value.strip():
        return DEFAULT_TILE_URL
    value = value.strip()
    if value.lower() == "none":
        return ""
    if any(part not in value for part in ("{z}", "{x}", "{y}")):
        raise ValueError(f"{field}: a tile URL template needs {{z}}, {{x}} and {{y}}: {value!r}")
    if not value.startswith(("http://", "https://", "/")) or any(c in value for c in "<>\"'"):
        raise ValueError(f"{field}: must be an http(s) URL or a path on this server: {value!r}")
    return value


def default_data_dir(environ: Mapping[str, str]) -> Path:
    if environ.get(ENV_DATA_DIR):
        return Path(environ[ENV_DATA_DIR])
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rldispatch"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything ``create_app`` needs; :meth:`from_env` fills the gaps from the environment."""

    model_path: Path | None = None
    runtime: str = "auto"
    fallback_policy: str = "insertion"
    fallback_time_limit_s: float | None = DEFAULT_FALLBACK_TIME_LIMIT_S
    lookahead: int = 0
    lookahead_budget_ms: float | None = DEFAULT_LOOKAHEAD_BUDGET_MS
    request_budget_ms: float = DEFAULT_REQUEST_BUDGET_MS
    data_dir: Path = field(default_factory=lambda: default_data_dir(os.environ))
    database_url: str | None = None
    tokens_file: Path | None = None
    models_dir: Path | None = None
    retain_days: int | None = None
    archive_dir: Path | None = None
    travel_path: Path | None = None
    road_network_path: Path | None = None
    reward_path: Path | None = None
    tile_url: str = DEFAULT_TILE_URL
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        model_path: str | Path | None = None,
        runtime: str | None = None,
        fallback_policy: str | None = None,
        fallback_time_limit_s: float | None = None,
        lookahead: int | None = None,
        lookahead_budget_ms: float | None = None,
        request_budget_ms: float | None = None,
        data_dir: str | Path | None = None,
        database_url: str | None = None,
        tokens_file: str | Path | None = None,
        models_dir: str | Path | None = None,
        retain_days: int | None = None,
        archive_dir: str | Path | None = None,
        travel_path: str | Path | None = None,
        reward_path: str | Path | None = None,
        tile_url: str | None = None,
        road_network_path: str | Path | None = None,
    ) -> ServiceConfig:
        """The configuration of the options given (None: not given), the environment's for
        the others. ``fallback_time_limit_s=0`` means no cap, ``lookahead_budget_ms=0`` no
        budget.

        :raises ValueError: a setting that cannot be used (the message names it).
        """
        environ = dict(os.environ if environ is None else environ)
        model = model_path or environ.get(ENV_MODEL) or None
        return cls(
            model_path=Path(model) if model else None,
            runtime=runtime or environ.get(ENV_RUNTIME) or "auto",
            fallback_policy=fallback_policy or environ.get(ENV_FALLBACK) or "insertion",
            fallback_time_limit_s=(
                fallback_time_limit(environ.get(ENV_FALLBACK_TIME_LIMIT), ENV_FALLBACK_TIME_LIMIT)
                if fallback_time_limit_s is None
                else fallback_time_limit(fallback_time_limit_s, "fallback-time-limit")
            ),
            lookahead=_lookahead(
                environ.get(ENV_LOOKAHEAD) if lookahead is None else lookahead,
                "lookahead" if lookahead is not None else ENV_LOOKAHEAD,
            ),
            lookahead_budget_ms=_lookahead_budget(
                environ.get(ENV_LOOKAHEAD_BUDGET)
                if lookahead_budget_ms is None
                else lookahead_budget_ms,
                "lookahead-budget-ms" if lookahead_budget_ms is not None else ENV_LOOKAHEAD_BUDGET,
            ),
            request_budget_ms=request_budget_ms_of(
                environ.get(ENV_REQUEST_BUDGET) if request_budget_ms is None else request_budget_ms,
                "request-budget-ms" if request_budget_ms is not None else ENV_REQUEST_BUDGET,
            ),
            data_dir=Path(data_dir) if data_dir else default_data_dir(environ),
            database_url=database_url or environ.get(ENV_DATABASE_URL) or None,
            tokens_file=Path(tokens_file) if tokens_file else None,
            models_dir=Path(models)
            if (models := models_dir or environ.get(ENV_MODELS_DIR))
            else None,
            retain_days=_retain_days(
                retain_days if retain_days is not None else environ.get(ENV_RETAIN_DAYS)
            ),
            archive_dir=Path(archive)
            if (archive := archive_dir or environ.get(ENV_ARCHIVE_DIR))
            else None,
            travel_path=Path(travel)
            if (travel := travel_path or environ.get(ENV_TRAVEL))
            else None,
            road_network_path=Path(roads)
            if (roads := road_network_path or environ.get(ENV_ROAD_NETWORK))
            else None,
            reward_path=Path(reward)
            if (reward := reward_path or environ.get(ENV_REWARD))
            else None,
            tile_url=_tile_url(
                environ.get(ENV_TILE_URL) if tile_url is None else tile_url,
                "tile-url" if tile_url is not None else ENV_TILE_URL,
            ),
            environ=environ,
        )

    def travel(self) -> TravelConfig | None:
        """The travel model of ``travel_path`` (None: not given).

        :raises ValueError: naming the file and the field when it cannot be used.
        """
        if self.travel_path is None:
            return None
        return load_travel_file(self.travel_path)

    def road_network(self) -> str | None:
        """The road network file every request travels on (None: the formula), read once
        here so that a missing or broken file is refused before the service starts.

        :raises ValueError: naming the file when it cannot be used.
        """
        if self.road_network_path is None:
            return None
        from rldispatch.sim.road_network import load_road_network

        try:
            load_road_network(self.road_network_path)
        except ValueError as error:
            raise ValueError(f"road-network: {error}") from None
        return str(self.road_network_path)

    def reward(self) -> RewardConfig | None:
        """The reward weights of ``reward_path`` (None: not given).

        :raises ValueError: naming the file and the field when it cannot be used.
        """
        if self.reward_path is None:
            return None
        try:
            return load_reward_file(self.reward_path)
        except ValueError as error:
            raise ValueError(f"reward: {error}") from None

    @property
    def lookahead_settings(self) -> Lookahead | None:
        """How a pairwise model's answers look ahead (None: they do not)."""
        if not self.lookahead:
            return None
        budget = self.lookahead_budget_ms
        return Lookahead(self.lookahead, None if budget is None else budget / 1e3)

    @property
    def resolved_database_url(self) -> str:
        from rldispatch.service.log.store import default_database_url

        return self.database_url or default_database_url(self.data_dir)

    @property
    def resolved_models_dir(self) -> Path:
        """Where swapped-in model files must lie: ``models_dir``, else the folder of the
        model the service starts with, else ``<data folder>/models``."""
        if self.models_dir is not None:
            return self.models_dir
        if self.model_path is not None:
            return self.model_path.parent
        return self.data_dir / "models"


def config_environ(config: ServiceConfig) -> dict[str, str]:
    """The environment variables that make :meth:`ServiceConfig.from_env` give ``config``
    again (how ``serve --workers N`` hands its options to each worker process)."""
    values = {
        ENV_RUNTIME: config.runtime,
        ENV_FALLBACK: config.fallback_policy,
        ENV_FALLBACK_TIME_LIMIT: str(config.fallback_time_limit_s or 0),
        ENV_LOOKAHEAD: str(config.lookahead),
        ENV_LOOKAHEAD_BUDGET: str(config.lookahead_budget_ms or 0),
        ENV_REQUEST_BUDGET: str(config.request_budget_ms),
        ENV_DATA_DIR: str(config.data_dir),
        ENV_DATABASE_URL: config.resolved_database_url,
        ENV_MODELS_DIR: str(config.resolved_models_dir),
        ENV_TILE_URL: config.tile_url or "none",
    }
    if config.model_path is not None:
        values[ENV_MODEL] = str(config.model_path)
    if config.retain_days is not None:
        values[ENV_RETAIN_DAYS] = str(config.retain_days)
    if config.archive_dir is not None:
        values[ENV_ARCHIVE_DIR] = str(config.archive_dir)
    if config.travel_path is not None:
        values[ENV_TRAVEL] = str(config.travel_path)
    if config.road_network_path is not None:
        values[ENV_ROAD_NETWORK] = str(config.road_network_path)
    if config.reward_path is not None:
        values[ENV_REWARD] = str(config.reward_path)
    if config.tokens_file is not None:
        values["RLDISPATCH_TOKENS_FILE"] = str(config.tokens_file)
    return values


MAX_TRAVEL_FILE_BYTES = 64 * 1024 * 1024


def load_travel_file(path: Path) -> TravelConfig:
    """The travel model of a JSON file: the scenario format's ``travel`` block, or a scenario
    file (its ``travel`` block).

    :raises ValueError: naming the file and the field when it cannot be used.
    """
    import json

    if not path.is_file():
        raise ValueError(f"travel: {path}: no such file")
    if path.stat().st_size > MAX_TRAVEL_FILE_BYTES:
        raise ValueError(f"travel: {path}: too large for a travel or scenario file")
    try:
        data: Any = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError(f"travel: {path}: not valid UTF-8 JSON") from None
    if isinstance(data, dict) and "drivers" in data:
        data = data.get("travel", {})
    try:
        return travel_from_dict(data)
    except ScenarioError as error:
        raise ValueError(f"travel: {path}: {error}") from None
