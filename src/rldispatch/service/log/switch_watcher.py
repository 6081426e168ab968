"""Keeps a process's switch and models those of the shared row (see :mod:`switch_row`).

Every worker of every instance on the database runs one :class:`SwitchWatcher`: a thread that
reads the row's version every ``interval_s`` (0.5 s: one tiny query, two a second per worker)
and, when it changed, reads the row and applies it: the toggle state to the manager, the
champion and challenger files to its :class:`~rldispatch.service.models.model_holder.ModelHolder`
(loaded in this thread, never in a request). A change made anywhere is thus served everywhere
within about ``interval_s`` plus a model's load time. While the database is down the process
keeps the last state it read (RL off if it never read one) and the watcher keeps trying, its
interval doubling up to ``MAX_INTERVAL_S`` (a dead database is not polled twice a second).
A database that comes back empty (its tables re-created by the store) gets the row again,
with the state this process served last; a row whose version went back (written anew) is
applied as it is.
"""

from __future__ import annotations

import logging
import threading

from rldispatch.service.decisions.ab import ToggleState
from rldispatch.service.decisions.manager import RLDispatchManager
from rldispatch.service.log.store import Store, StoreUnavailable

logger = logging.getLogger("rldispatch.service")

POLL_INTERVAL_S = 0.5
MAX_INTERVAL_S = 5.0


class SwitchWatcher:
    """Polls the switch row's version and applies each new version to ``manager``."""

    def __init__(
        self, store: Store, manager: RLDispatchManager, interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self.store = store
        self.manager = manager
        self.interval_s = interval_s
        self.applied_version = 0
        self.settled = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_logged = False

    def apply(self, state: ToggleState) -> None:
        """Serve ``state`` unless a newer version is served already."""
        with self._lock:
            if state.version < self.applied_version:
                return
            self.manager.models.follow(state)
            self.manager.set_state(state)
            self.applied_version = state.version
            self.settled = True

    def sync(self) -> bool:
        """Read the version, and the row if it changed; False while the database is down."""
        try:
            version = self.store.state_version()
            if version is None and self.applied_version > 0:
                self._restore_row()
                return True
            if version is not None and version < self.applied_version:
                with self._lock:
                    self.applied_version = 0  # a new row: its versions start again
            if version is not None and version != self.applied_version:
                state = self.store.load_state()
                if state is not None:
                    self.apply(state)
                    logger.info(
                        "switch version %d: enabled=%s ab_ratio=%s shadow=%s "
                        "challenger_ratio=%s (set by %s)",
                        state.version,
                        state.enabled,
                        state.ab_ratio,
                        state.shadow,
                        state.challenger_ratio,
                        state.updated_by,
                    )
        except StoreUnavailable:
            if not self._down_logged:
                self._down_logged = True
                logger.warning(
                    "switch unreadable (database down): %s until it answers",
                    "keeping the last state read" if self.settled else "RL off",
                )
            return False
        self._down_logged = False
        self.settled = True
        return True

    def _restore_row(self) -> None:
        """The row is gone (the database came back empty): write the state served last."""
        served = self.manager.state
        state = self.store.update_state(lambda _current: served)
        with self._lock:
            self.applied_version = state.version
            self.manager.set_state(state)
        logger.warning(
            "switch row missing (the database came back empty): written again with the last "
            "state served (enabled=%s ab_ratio=%s shadow=%s)",
            state.enabled,
            state.ab_ratio,
            state.shadow,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="switch-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        wait_s = self.interval_s
        while not self._stop.wait(wait_s):
            answered = self.sync()
            wait_s = self.interval_s if answered else min(wait_s * 2, MAX_INTERVAL_S)
