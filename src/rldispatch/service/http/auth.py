"""Bearer tokens: who may read, who may switch RL on.

Tokens come from the environment (``RLDISPATCH_TOKENS``, ``RLDISPATCH_ADMIN_TOKENS``: comma
separated) and from a JSON file (``RLDISPATCH_TOKENS_FILE`` or ``--tokens-file``)::

    {"tokens": [{"name": "dispatch-app", "role": "read", "token": "..."},
                {"name": "ops", "role": "admin", "sha256": "<hex digest of the token>"}]}

Read endpoints take any token, ``POST /rl/toggle`` an admin token. Only SHA-256 digests are
kept in memory and every digest is compared in constant time (``hmac.compare_digest``, no
early exit). Tokens are never logged; a token's *name* is, and is what the toggle state
records as ``updated_by``. With no token configured the service never runs open: it creates an
admin token in its data folder (file mode 0600) and logs the file's path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

logger = logging.getLogger("rldispatch.service.auth")

Role = Literal["read", "admin"]
ENV_READ_TOKENS = "RLDISPATCH_TOKENS"
ENV_ADMIN_TOKENS = "RLDISPATCH_ADMIN_TOKENS"
ENV_TOKENS_FILE = "RLDISPATCH_TOKENS_FILE"
ADMIN_TOKEN_FILE = "admin-token"
MIN_TOKEN_LENGTH = 16


class AuthConfigError(ValueError):
    """Token configuration that cannot be used (the message never holds a token)."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenRegistry:
    """Known token digests with their names and roles."""

    def __init__(self, entries: list[tuple[str, Role, bytes]]) -> None:
        if not entries:
            raise AuthConfigError("tokens: none configured")
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding ``token``; compares against every digest, in constant time."""
        digest = token_digest(token)
        found: Principal | None = None
        for name, role, known in self._entries:
            if hmac.compare_digest(known, digest) and found is None:
                found = Principal(name, role)
        return found


def _check_token(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise AuthConfigError(f"{where}: a token must have at least {MIN_TOKEN_LENGTH} characters")
    return token


def _warn_if_readable_by_others(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode)


def tokens_from_env(environ: Mapping[str, str]) -> list[tuple[str, Role, bytes]]:
    entries: list[tuple[str, Role, bytes]] = []
    for variable, role in ((ENV_READ_TOKENS, "read"), (ENV_ADMIN_TOKENS, "admin")):
        values = [v for v in environ.get(variable, "").split(",") if v.strip()]
        for index, value in enumerate(values, start=1):
            token = _check_token(value, f"{variable} (entry {index})")
            entries.append((f"env-{role}-{index}", role, token_digest(token)))
    return entries


def tokens_from_file(path: Path) -> list[tuple[str, Role, bytes]]:
    """Tokens of a JSON token file (see the module docstring)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise AuthConfigError(f"tokens file: no file at {path}") from error
    except (OSError, ValueError) as error:
        raise AuthConfigError(f"tokens file {path}: not readable JSON ({error})") from error
    _warn_if_readable_by_others(path)
    records = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise AuthConfigError(f"tokens file {path}: needs a list under 'tokens'")
    entries: list[tuple[str, Role, bytes]] = []
    for index, record in enumerate(records):
        where = f"tokens file {path}: tokens[{index}]"
        if not isinstance(record, dict):
            raise AuthConfigError(f"{where}: must be an object")
        name = record.get("name", f"file-{index + 1}")
        role = record.get("role", "read")
        if role not in ("read", "admin"):
            raise AuthConfigError(f"{where}.role: must be 'read' or 'admin'")
        if "token" in record:
            digest = token_digest(_check_token(str(record["token"]), f"{where}.token"))
        elif "sha256" in record:
            try:
                digest = bytes.fromhex(str(record["sha256"]))
            except ValueError as error:
                raise AuthConfigError(f"{where}.sha256: must be hex") from error
            if len(digest) != hashlib.sha256().digest_size:
                raise AuthConfigError(f"{where}.sha256: must be 64 hex digits")
        else:
            raise AuthConfigError(f"{where}: needs 'token' or 'sha256'")
        entries.append((str(name), role, digest))
    return entries


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def local_admin_token(data_dir: Path) -> tuple[str, Path, bool]:
    """The admin token kept in ``data_dir``, created (mode 0600) if absent.

    Returns the token, its file and whether it was created now.
    """
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        _warn_if_readable_by_others(path)
        token = _check_token(path.read_text(encoding="utf-8"), str(path))
        return token, path, False
    token = secrets.token_urlsafe(32)
    write_secret_file(path, token + "\n")
    return token, path, True


def build_registry(
    environ: Mapping[str, str], tokens_file: Path | None, data_dir: Path
) -> TokenRegistry:
    """Tokens from the environment and the token file; else the local admin token."""
    entries = tokens_from_env(environ)
    file_name = tokens_file or environ.get(ENV_TOKENS_FILE)
    if file_name:
        entries += tokens_from_file(Path(file_name))
    if entries:
        logger.info("%d API tokens configured", len(entries))
        return TokenRegistry(entries)
    token, path, created = local_admin_token(data_dir)
    logger.warning(
        "no API token configured (%s, %s, %s): %s the admin token in %s (mode 0600); "
        "send it as 'Authorization: Bearer <token>'",
        ENV_READ_TOKENS,
        ENV_ADMIN_TOKENS,
        ENV_TOKENS_FILE,
        "created" if created else "using",
        path,
    )
    return TokenRegistry([("local-admin", "admin", token_digest(token))])


# --- FastAPI dependencies ----------------------------------------------------------------------
# Async on purpose: they do no I/O, and FastAPI runs a sync dependency in the thread pool.

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="An API token: any token reads, an admin token toggles.",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Any valid token, else 401."""
    registry: TokenRegistry = request.app.state.tokens
    principal = registry.authenticate(credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="authorization: a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def require_admin(principal: Annotated[Principal, Depends(require_token)]) -> Principal:
    """An admin token, else 403."""
    if not principal.is_admin:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="authorization: this needs an admin token",
        )
    return principal


Reader = Annotated[Principal, Depends(require_token)]
Admin = Annotated[Principal, Depends(require_admin)]
