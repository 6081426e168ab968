"""Tokens: where they come from, how they are checked, the local admin token."""

from __future__ import annotations

import hashlib
import json
import logging
import stat
from pathlib import Path

import pytest

from rldispatch.service.http.auth import (
    AuthConfigError,
    Principal,
    build_registry,
    local_admin_token,
)

READ = "r" * 20
ADMIN = "a" * 20


def test_tokens_from_the_environment_have_roles(tmp_path: Path) -> None:
    registry = build_registry(
        {"RLDISPATCH_TOKENS": f"{READ}, {'x' * 16}", "RLDISPATCH_ADMIN_TOKENS": ADMIN},
        None,
        tmp_path,
    )
    assert registry.authenticate(READ) == Principal("env-read-1", "read")
    assert registry.authenticate("x" * 16) == Principal("env-read-2", "read")
    assert registry.authenticate(ADMIN) == Principal("env-admin-1", "admin")
    assert registry.authenticate("nope" * 5) is None
    assert registry.authenticate("") is None
    assert not (tmp_path / "admin-token").exists()


def test_tokens_from_a_file_by_value_or_by_digest(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": "dispatch-app", "role": "read", "token": READ},
                    {
                        "name": "ops",
                        "role": "admin",
                        "sha256": hashlib.sha256(ADMIN.encode()).hexdigest(),
                    },
                ]
            }
        )
    )
    path.chmod(0o600)
    registry = build_registry({}, path, tmp_path)
    assert registry.authenticate(READ) == Principal("dispatch-app", "read")
    assert registry.authenticate(ADMIN) == Principal("ops", "admin")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"tokens": [{"role": "root", "token": "' + READ + '"}]}', "role"),
        ('{"tokens": [{"token": "tiny-secret"}]}', "at least 16"),
        ('{"tokens": [{"name": "x"}]}', "'token' or 'sha256'"),
        ("not json", "not readable JSON"),
    ],
)
def test_bad_token_file_is_refused_naming_the_field(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(AuthConfigError, match=message) as error:
        build_registry({}, path, tmp_path)
    assert "tiny-secret" not in str(error.value)


def test_short_token_in_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="RLDISPATCH_ADMIN_TOKENS"):
        build_registry({"RLDISPATCH_ADMIN_TOKENS": "secret"}, None, tmp_path)


def test_without_tokens_an_admin_token_is_created_mode_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        registry = build_registry({}, None, tmp_path / "data")
    path = tmp_path / "data" / "admin-token"
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert registry.authenticate(token) == Principal("local-admin", "admin")
    assert str(path) in caplog.text
    assert token not in caplog.text
    assert list(path.parent.glob(".*tmp")) == []


def test_the_local_admin_token_survives_a_restart(tmp_path: Path) -> None:
    first, path, created = local_admin_token(tmp_path)
    second, _, created_again = local_admin_token(tmp_path)
    assert (first, created, created_again) == (second, True, False)
    assert len(first) >= 32
