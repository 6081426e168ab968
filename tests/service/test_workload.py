"""The service's heap after start-up: frozen out of the cyclic collector's passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from rldispatch.service.decisions.workload import settle_heap
from tests.service.helpers import ThreadedServer


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_heap_freezes_what_is_alive_and_not_what_comes_later(unfrozen: None) -> None:
    kept = [[index] for index in range(1000)]
    assert gc.get_freeze_count() == 0
    settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen >= len(kept)
    later = [[index] for index in range(1000)]
    # Not one more: what is made later stays out (a frozen object freed meanwhile, by another
    # test's thread, leaves the frozen set smaller).
    assert gc.get_freeze_count() <= frozen
    walked = {id(obj) for obj in gc.get_objects()}  # what the collector's passes see
    assert id(later[0]) in walked
    assert id(kept[0]) not in walked


def test_the_service_settles_its_heap_once_it_has_started(tmp_path: Path, unfrozen: None) -> None:
    assert gc.get_freeze_count() == 0
    with ThreadedServer(tmp_path / "data"):
        assert gc.get_freeze_count() > 0
