"""Database URLs shown to people: every password hidden, whatever form it takes.

A SQLAlchemy URL can carry a password as ``user:password@host`` or as a query parameter
(``?password=...``, ``?sslpassword=...``); :func:`mask_database_url` hides both, and a string
SQLAlchemy cannot parse is masked by pattern, never shown as given. Every URL that reaches a
log, a status answer, a report or an error message goes through it.
"""

from __future__ import annotations

import re

MASK = "***"
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passwd", "pwd"})
"""Query parameters that hold a password (compared lower case)."""

_USERINFO_PASSWORD = re.compile(r"(?P<head>://[^/?#@:]*:)(?P<secret>[^/?#]*)@")
_KEY_VALUE_PASSWORD = re.compile(
    r"(?P<head>\b(?:" + "|".join(sorted(SECRET_QUERY_KEYS)) + r")\s*=\s*)(?P<secret>[^&;\s]*)",
    re.IGNORECASE,
)


def mask_database_url(url: str) -> str:
    """``url`` with its passwords replaced by ``***`` (user name, host and database kept)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is masked by pattern below
        return _mask_by_pattern(url)
    if parsed.password is not None:
        parsed = parsed.set(password=MASK)
    secret_keys = [key for key in parsed.query if key.lower() in SECRET_QUERY_KEYS]
    if secret_keys:
        parsed = parsed.update_query_dict(dict.fromkeys(secret_keys, MASK))
    return _mask_by_pattern(parsed.render_as_string(hide_password=False))


def _mask_by_pattern(text: str) -> str:
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEY_VALUE_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def mask_secrets_in(text: str, url: str) -> str:
    """``text`` (an error message about ``url``) with the URL's passwords masked wherever they
    appear: the URL itself, its password alone, or a ``password=`` pair."""
    from sqlalchemy.engine import make_url

    text = text.replace(url, mask_database_url(url))
    try:
        parsed = make_url(url)
        secrets = [parsed.password] if parsed.password else []
        secrets += [
            value
            for key, value in parsed.query.items()
            if key.lower() in SECRET_QUERY_KEYS and isinstance(value, str)
        ]
    except Exception:  # noqa: BLE001 - nothing parsed, the patterns below still apply
        secrets = []
    for secret in secrets:
        if len(str(secret)) >= 3:
            text = text.replace(str(secret), MASK)
    return _mask_by_pattern(text)


def check_database_url(url: str, field: str) -> None:
    """Refuse, before any connection, a URL SQLAlchemy cannot use: unparsable, a port that
    is not a number from 1 to 65535, or a driver that is not installed; a ``ValueError``
    naming ``field`` with the URL masked.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_database_url(url)
    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError):
        raise ValueError(
            f"{field}: {shown} is not a database URL (dialect+driver://user@host:port/db)"
        ) from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{field}: {shown}: the port must be 1 to 65535, got {port}")
    try:
        create_engine(parsed).dispose()  # finds the driver; connects only when used
    except (ArgumentError, ValueError, ImportError) as error:
        detail = mask_secrets_in(str(error).splitlines()[0] if str(error) else "", url)
        raise ValueError(f"{field}: {shown} is not a usable database URL ({detail})") from None
