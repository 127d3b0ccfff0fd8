"""Headless Debian Chromium driven by Selenium, with the flags CI needs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,1600",
)


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver; fail under CI, skip elsewhere, when missing."""
    browser = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = (
        "headless Chromium is not installed (apt-get install -y chromium chromium-driver); "
        f"found browser={browser}, driver={driver}"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    browser, driver_path = find_browser()
    with tempfile.TemporaryDirectory(prefix="trending-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        service = Service(executable_path=driver_path, log_output=str(Path(profile) / "driver.log"))
        driver = webdriver.Chrome(options=options, service=service)
        try:
            yield driver
        finally:
            driver.quit()


def wait_loaded(driver: webdriver.Chrome) -> None:
    """Until the page has answered its current view (not busy, a status line shown)."""
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script(
            "return !document.body.classList.contains('busy')"
            " && document.getElementById('status').textContent !== 'Loading…'"
            " && document.getElementById('status').textContent !== ''"
        )
    )
