"""The deployment files: the compose file's keys and variables, and the Dockerfile's command
run as it is (``rldispatch serve``), health check included. (No Docker engine here: the
Dockerfile is linted with hadolint separately, see docs/service.md.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.service.helpers import ADMIN_TOKEN, READ_TOKEN, SERVER_START_TIMEOUT_S, free_port

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::(?P<op>[?-])(?P<text>[^}]*))?\}")


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}``."""

    def one(match: re.Match) -> str:
        name, op, text = match["name"], match["op"], match["text"]
        if environ.get(name):
            return environ[name]
        if op == "?":
            raise KeyError(f"{name}: {text}")
        return text or ""

    return VARIABLE.sub(one, value)


def wait_until_listening(server: subprocess.Popen, port: int) -> bool:
    """Whether 127.0.0.1:``port`` accepts a connection before the server stops or the start
    timeout of the service tests passes."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-array arguments of the Dockerfile's last ``name`` instruction."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(name + " ")]
    arguments = lines[-1].removeprefix(name).strip()
    if name == "HEALTHCHECK":
        arguments = arguments[arguments.index("CMD ") + 4 :]
    return json.loads(arguments)


def test_compose_has_the_service_and_postgres_with_secrets_from_the_environment(
    compose: dict,
) -> None:
    assert set(compose) == {"services", "volumes", "secrets"}
    assert set(compose["services"]) == {"rldispatch", "postgres", "prometheus", "grafana"}
    service, database = compose["services"]["rldispatch"], compose["services"]["postgres"]
    assert service["build"] == "."
    assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    named = {
        volume.split(":")[0]
        for each in compose["services"].values()
        for volume in each.get("volumes", [])
        if not volume.startswith("./")
    }
    assert set(compose["volumes"]) == named
    environ = {
        "POSTGRES_PASSWORD": "p4ss",
        "RLDISPATCH_TOKENS": READ_TOKEN,
        "RLDISPATCH_ADMIN_TOKENS": ADMIN_TOKEN,
        "RLDISPATCH_METRICS_TOKEN": "metrics-token-0123456789",
        "GRAFANA_ADMIN_PASSWORD": "gr4fana",
    }
    resolved = {key: interpolate(value, environ) for key, value in service["environment"].items()}
    assert resolved == {
        "RLDISPATCH_DATABASE_URL": "postgresql+psycopg://rldispatch:p4ss@postgres:5432/rldispatch",
        "RLDISPATCH_TOKENS": f"{READ_TOKEN},metrics-token-0123456789",
        "RLDISPATCH_ADMIN_TOKENS": ADMIN_TOKEN,
        "RLDISPATCH_MODEL": "",
    }
    values = [
        value
        for each in compose["services"].values()
        for value in (each.get("environment") or {}).values()
    ]
    for required in environ:  # no secret has a default: compose refuses to start without it
        with pytest.raises(KeyError, match=required):
            for value in values:
                interpolate(value, {k: v for k, v in environ.items() if k != required})
    db = {key: interpolate(value, environ) for key, value in database["environment"].items()}
    assert (db["POSTGRES_USER"], db["POSTGRES_DB"], db["POSTGRES_PASSWORD"]) == (
        "rldispatch",
        "rldispatch",
        "p4ss",
    )
    assert "pg_isready" in " ".join(database["healthcheck"]["test"])


def test_the_image_runs_rldispatch_serve_and_its_health_check_passes(
    compose: dict, tmp_path: Path
) -> None:
    entrypoint, command = dockerfile_instruction("ENTRYPOINT"), dockerfile_instruction("CMD")
    assert entrypoint == ["rldispatch", "serve"]
    assert compose["services"]["rldispatch"]["command"][:4] == command
    port = str(free_port())
    arguments = [port if value == "8000" else value for value in command]
    arguments = ["127.0.0.1" if value == "0.0.0.0" else value for value in arguments]
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RLDISPATCH_")},
        "RLDISPATCH_DATA_DIR": str(tmp_path / "data"),
        "RLDISPATCH_MODELS_DIR": str(tmp_path / "models"),
        "RLDISPATCH_TOKENS": READ_TOKEN,
        "RLDISPATCH_ADMIN_TOKENS": ADMIN_TOKEN,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    run_cli = "import sys; from rldispatch.cli import main; sys.argv[0] = 'rldispatch'; "
    server = subprocess.Popen(
        [sys.executable, "-c", run_cli + "sys.exit(main())", *entrypoint[1:], *arguments],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    health = dockerfile_instruction("HEALTHCHECK")
    assert health[0] == "python" and "/healthz" in health[-1]
    check = [sys.executable, *health[1:-1], health[-1].replace(":8000/", f":{port}/")]
    try:
        # Wait in this process for the port to open; a health check is a new interpreter, so
        # it only runs once the server listens.
        assert wait_until_listening(server, int(port)), "the server never listened"
        for _ in range(20):
            if subprocess.run(check, capture_output=True).returncode == 0:
                break
            assert server.poll() is None, "the server stopped"
            time.sleep(0.5)
        else:
            pytest.fail(f"the health check never passed: {shlex.join(check)}")
    finally:
        server.terminate()
        server.wait(30)
    assert subprocess.run(check, capture_output=True).returncode != 0  # it checks something
