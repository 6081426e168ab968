"""A small client of a running service's model endpoints (what ``rldispatch promote`` calls).

``GET /rl/models`` tells which champion and challenger serve and the models folder;
``PUT /rl/models/champion`` and ``PUT /rl/models/challenger`` hand it a new model file, which
must lie inside that folder (the service's ``--models-dir``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from rldispatch.service.http.auth import ADMIN_TOKEN_FILE, ENV_ADMIN_TOKENS

TIMEOUT_S = 60.0
"""A swap loads and checks the model before it answers."""


class ServiceError(RuntimeError):
    """The service did not answer, or refused (the message says which and why)."""


def admin_token(
    token: str | None, environ: Mapping[str, str], data_dir: Path | None = None
) -> str | None:
    """The admin token to send: ``token``, else the first of ``RLDISPATCH_ADMIN_TOKENS``, else
    the local admin token a service without configured tokens wrote in ``data_dir``."""
    if token:
        return token
    listed = [item.strip() for item in environ.get(ENV_ADMIN_TOKENS, "").split(",")]
    if any(listed):
        return next(item for item in listed if item)
    if data_dir is not None and (data_dir / ADMIN_TOKEN_FILE).is_file():
        return (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    return None


class ServiceClient:
    """The model endpoints of the service at ``url``, with ``token`` (admin for a swap)."""

    def __init__(self, url: str, token: str | None, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(
                method, f"{self.url}{path}", json=body, headers=headers, timeout=self.timeout_s
            )
        except httpx.HTTPError as error:
            raise ServiceError(f"service: {self.url} did not answer ({error})") from error
        if response.status_code in (401, 403):
            need = "an admin token" if method != "GET" else "a token"
            raise ServiceError(
                f"token: the service at {self.url} answered {response.status_code} to "
                f"{method} {path}; it needs {need} (--token, or env {ENV_ADMIN_TOKENS})"
            )
        if response.status_code >= 400:
            raise ServiceError(
                f"service: {method} {path} answered {response.status_code}: {_message(response)}"
            )
        return response.json()

    def models(self) -> dict[str, Any]:
        """``GET /rl/models``: champion, challenger, their share, the models folder."""
        return self._request("GET", "/rl/models")

    def status(self) -> dict[str, Any]:
        """``GET /rl/status`` (the fallback heuristic, the switch)."""
        return self._request("GET", "/rl/status")

    def swap(self, role: str, path: Path, ratio: float | None = None) -> dict[str, Any]:
        """``PUT /rl/models/<role>`` with ``path`` (and the challenger's ``ratio``).

        :raises ServiceError: the service refused the file (outside its models folder, or it
            cannot serve) or did not answer; the model it served keeps serving.
        """
        body: dict[str, Any] = {"path": str(path)}
        if role == "challenger":
            body["ratio"] = ratio if ratio is not None else 0.5
        try:
            return self._request("PUT", f"/rl/models/{role}", body)
        except ServiceError as error:
            if "outside the models folder" in str(error):
                raise ServiceError(
                    f"{error}; the service only serves files inside its --models-dir: copy "
                    f"the model there and give that copy as --challenger"
                ) from error
            raise


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:500]
    return str(body)[:500]
