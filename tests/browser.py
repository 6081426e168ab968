"""The real browser of the page tests: Debian's Chromium driven by Playwright.

Without Chromium (or the ``playwright`` package) a browser test skips, saying how to install
it; with ``RLDISPATCH_REQUIRE_BROWSER=1`` (as CI sets) it fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("RLDISPATCH_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = (
    "install it with `apt-get install -y chromium` (Debian; Playwright drives the system "
    "browser, no `playwright install`)"
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Where the browser tests keep their screenshots (one folder per test module)."""


def sync_playwright_or_skip() -> Any:
    """Playwright's sync API for the system Chromium, or skip (fail when it is required)."""
    required = os.environ.get("RLDISPATCH_REQUIRE_BROWSER") == "1"
    missing = None
    if not CHROMIUM.exists():
        missing = f"no Chromium at {CHROMIUM}: {INSTALL_HINT}"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing = "the Python package playwright is missing: make installs it (.[dev])"
    if missing:
        if required:
            pytest.fail(f"RLDISPATCH_REQUIRE_BROWSER=1 and {missing}")
        pytest.skip(missing)
    return sync_playwright
