"""Every form of a database password is masked, by one function."""

from __future__ import annotations

import pytest

from rldispatch.database_url import mask_database_url, mask_secrets_in
from rldispatch.training.tuning_storage import masked_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://bob:s3cr%40t@db:5432/x", "postgresql+psycopg://bob:***@db:5432/x"),
        (
            "postgresql+psycopg://bob@db/x?password=hunter2&sslmode=require",
            "postgresql+psycopg://bob@db/x?password=***&sslmode=require",
        ),
        ("postgresql://u:p@h/d?sslpassword=q", "postgresql://u:***@h/d?sslpassword=***"),
        ("postgresql://bob@h/d?PASSWORD=x", "postgresql://bob@h/d?PASSWORD=***"),
        (
            "sqlite:////var/lib/rldispatch/service.sqlite3",
            "sqlite:////var/lib/rldispatch/service.sqlite3",
        ),
        ("postgresql://bob:hunter2@host:notaport/x", "postgresql://bob:***@host:notaport/x"),
        ("host=db password=hunter2 user=bob", "host=db password=*** user=bob"),
    ],
)
def test_every_form_of_password_is_masked(url: str, masked: str) -> None:
    assert mask_database_url(url) == masked
    assert masked_url(url) == masked  # the tuner shows URLs through the same function


def test_an_error_message_loses_the_password_wherever_it_appears() -> None:
    url = "postgresql://bob:hunter2@db/x?password=other-secret"
    message = f"could not parse {url!r}; password hunter2 refused; other-secret too"
    cleaned = mask_secrets_in(message, url)
    assert "hunter2" not in cleaned and "other-secret" not in cleaned
    assert "postgresql://bob:***@db/x?password=***" in cleaned
