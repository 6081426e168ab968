"""Fixtures of the service tests: a model file built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.helpers import make_model_file


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("model") / "model.safetensors")
