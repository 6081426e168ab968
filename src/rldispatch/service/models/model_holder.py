"""The models a service answers with: a champion and, beside it, an optional challenger.

The manager asks :meth:`ModelHolder.for_booking` which model answers a booking: the
challenger for a share ``challenger_ratio`` of bookings (by a salted hash of the id,
:func:`~rldispatch.service.decisions.ab.serves_challenger`), the champion otherwise. Both are
swapped without a restart: a new file is loaded and checked first (:func:`load_checked`), and only a
model that loaded replaces the one serving; a file that fails leaves the old model serving and
says why. Requests read the pair of models once, as one immutable value, so a swap never
mixes two models in one answer.

A model file named by the switch row must lie inside the models folder (``models_dir``): an
admin token can choose among the files an operator put there, never read any other file.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rldispatch.agents.serving import MAX_MODEL_BYTES, ModelLoadError, ServedModel
from rldispatch.service.decisions.ab import ToggleState, serves_challenger
from rldispatch.service.models.loading import load_served_model

logger = logging.getLogger("rldispatch.service")

MODEL_SUFFIXES = (".safetensors", ".onnx")


@dataclass(frozen=True)
class ModelSlot:
    """A role's model (champion or challenger): what serves, from which file, and the error
    of the last file that could not replace it (None once one loads)."""

    model: ServedModel | None = None
    path: Path | None = None
    error: str | None = None
    failed: tuple[str, str | None] | None = None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None


@dataclass(frozen=True)
class ServedModels:
    """The champion, the challenger (if any) and the challenger's share, read together."""

    champion: ModelSlot = field(default_factory=ModelSlot)
    challenger: ModelSlot | None = None
    challenger_ratio: float = 0.0


class ModelPathRefused(ModelLoadError):
    """A model path outside the models folder, or not a model file name."""


def resolve_model_path(models_dir: Path, path: str | Path) -> Path:
    """``path`` (absolute, or relative to ``models_dir``) resolved, links followed; refused
    unless it lies inside ``models_dir`` and ends in ``.safetensors`` or ``.onnx``."""
    folder = Path(models_dir).resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else folder / candidate).resolve()
    if not resolved.is_relative_to(folder):
        raise ModelPathRefused(f"path: {path} is outside the models folder {folder}")
    if resolved.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelPathRefused(f"path: {path} is not a model file (.safetensors or .onnx)")
    return resolved


def load_checked(path: Path, runtime: str, max_bytes: int = MAX_MODEL_BYTES) -> ServedModel:
    """Load and check a model file (:func:`load_served_model`); any failure, whatever the
    file holds, is a :class:`ModelLoadError` naming the file and why."""
    try:
        return load_served_model(path, runtime, max_bytes)
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - a broken file must never stop the service
        reason = f"{type(error).__name__}: {error}"
        raise ModelLoadError(f"model: {path}: cannot be loaded ({reason})") from error


class ModelHolder:
    """The served models of one process, swapped atomically (safe across threads).

    :param runtime: the runtime every model is loaded on (see :func:`load_served_model`).
    :param models_dir: the folder model files named by the switch must lie in.
    """

    def __init__(
        self,
        runtime: str = "auto",
        *,
        models_dir: Path | None = None,
        max_model_bytes: int = MAX_MODEL_BYTES,
    ) -> None:
        self.runtime = runtime
        self.models_dir = models_dir
        self.max_model_bytes = max_model_bytes
        self._served = ServedModels()
        self._lock = threading.RLock()

    @property
    def served(self) -> ServedModels:
        return self._served

    def for_booking(self, booking_id: str) -> ModelSlot:
        """The model answering ``booking_id``: the challenger for its share, else the
        champion."""
        served = self._served
        if served.challenger is not None and serves_challenger(booking_id, served.challenger_ratio):
            return served.challenger
        return served.champion

    def load(self, path: str | Path, *, confined: bool = True) -> tuple[Path, ServedModel]:
        """Load and check ``path`` (confined to the models folder unless ``confined`` is
        False: the operator's own ``--model``). Nothing serving changes.

        :raises ModelLoadError: the path is refused or the file cannot serve.
        """
        if confined:
            if self.models_dir is None:
                raise ModelPathRefused("path: no models folder is configured (--models-dir)")
            resolved = resolve_model_path(self.models_dir, path)
        else:
            resolved = Path(path)
        return resolved, load_checked(resolved, self.runtime, self.max_model_bytes)

    def start_with(self, path: Path | None) -> None:
        """Serve ``path`` as the champion (the operator's ``--model``), or note its error."""
        if path is None:
            return
        try:
            _, model = self.load(path, confined=False)
        except ModelLoadError as error:
            logger.error("model not loaded, serving the fallback: %s", error)
            self._served = replace(self._served, champion=ModelSlot(path=path, error=str(error)))
            return
        self._served = replace(self._served, champion=ModelSlot(model=model, path=Path(path)))

    def install(self, role: str, path: Path, model: ServedModel, ratio: float = 0.0) -> None:
        """Serve a model loaded already as ``champion`` or ``challenger`` (with its share)."""
        slot = ModelSlot(model=model, path=path)
        with self._lock:
            if role == "champion":
                self._served = replace(self._served, champion=slot)
            else:
                self._served = replace(self._served, challenger=slot, challenger_ratio=ratio)

    def follow(self, state: ToggleState) -> None:
        """Serve the models the switch row names, loading each that changed (path or
        version); a file that fails, or whose version is not the row's, leaves the model
        serving and records why (tried once per file and version)."""
        with self._lock:
            served = self._served
            champion = served.champion
            if state.champion_path is not None and not _matches(
                champion, state.champion_path, state.champion_version
            ):
                champion = self._replacement(
                    champion, state.champion_path, state.champion_version, "champion"
                )
            challenger = None
            if state.challenger_path is not None:
                challenger = served.challenger or ModelSlot()
                if not _matches(challenger, state.challenger_path, state.challenger_version):
                    challenger = self._replacement(
                        challenger, state.challenger_path, state.challenger_version, "challenger"
                    )
            ratio = state.challenger_ratio if challenger is not None else 0.0
            self._served = ServedModels(champion, challenger, ratio)

    def _replacement(
        self, current: ModelSlot, path: str, version: str | None, role: str
    ) -> ModelSlot:
        if current.failed == (path, version):
            return current  # failed already: keep serving, do not retry on every poll
        try:
            resolved, model = self.load(path)
            if version is not None and model.version != version:
                raise ModelLoadError(
                    f"model: {path} holds version {model.version}, the switch names {version} "
                    "(the file changed since it was checked)"
                )
        except ModelLoadError as error:
            logger.error("%s %s not loaded, the old model keeps serving: %s", role, path, error)
            return replace(current, error=str(error), failed=(path, version))
        logger.info("%s now serving %s (%s)", role, resolved, model.version)
        return ModelSlot(model=model, path=resolved)


def _matches(slot: ModelSlot, path: str, version: str | None) -> bool:
    """Whether ``slot`` serves the file ``path`` (and the weights ``version``) already."""
    if slot.model is None or slot.path is None:
        return False
    if version is not None and slot.model.version != version:
        return False
    try:
        return slot.path.resolve() == Path(path).resolve()
    except OSError:
        return False


def slot_status(slot: ModelSlot) -> dict[str, Any]:
    """A role's model for ``/rl/status``: whether one serves, which, of what kind, on what
    runtime, and the error of the last file that could not serve (``max_drivers`` is None
    for a pairwise model: it plays any fleet)."""
    model = slot.model
    config = model.env_config if model is not None else None
    return {
        "loaded": model is not None,
        "path": str(slot.path) if slot.path else None,
        "version": model.version if model else None,
        "kind": model.kind if model else None,
        "runtime": model.runtime if model else None,
        "preset": model.preset if model else None,
        "max_drivers": model.max_drivers if model else None,
        "visible_slots": config.visible_slots if config else None,
        "error": slot.error,
    }
