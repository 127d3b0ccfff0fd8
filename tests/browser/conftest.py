"""The browser tests' shared set-up: one headless Chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.browser.chrome import chromium


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    with chromium() as browser:
        browser.set_page_load_timeout(30)
        yield browser
