"""``rldispatch serve``'s process: PyTorch only when its model needs it, on one thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.helpers import READ_TOKEN, suggest_body


def run_python(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_service_without_a_model_answers_without_loading_pytorch(tmp_path: Path) -> None:
    body = json.dumps(suggest_body())
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from fastapi.testclient import TestClient\n"
        "from rldispatch.service.config import ServiceConfig\n"
        "from rldispatch.service.http.app import create_app\n"
        f"config = ServiceConfig.from_env({{'RLDISPATCH_TOKENS': {READ_TOKEN!r}}},\n"
        f"    data_dir=Path({str(tmp_path)!r}))\n"
        "with TestClient(create_app(config)) as client:\n"
        f"    answer = client.post('/rl/suggest', content={body!r},\n"
        f"        headers={{'Authorization': 'Bearer {READ_TOKEN}'}})\n"
        "print(answer.status_code, answer.json()['source'], 'torch' in sys.modules)\n"
    )
    assert run_python(code) == ["200", "fallback", "False"]  # the heuristic's answer


@pytest.mark.slow
def test_pytorch_runs_on_one_thread_whether_it_loads_before_or_after() -> None:
    after = (
        "from rldispatch.cli.serve import one_torch_thread\n"
        "one_torch_thread()\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    before = (
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "from rldispatch.cli.serve import one_torch_thread\n"
        "one_torch_thread()\n"
        "print(torch.get_num_threads())\n"
    )
    assert run_python(after) == ["1"]
    assert run_python(before) == ["1"]
