"""Debian's chromium, headless, driven by selenium through Debian's chromedriver.

The driver's path is given, so Selenium Manager (which would download a driver or a
browser) never runs. The page's test and its benchmark (benchmarks/bench_web.py) use it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = "needs Debian's chromium and chromium-driver (EDGE_ASD_TEST_TOOLS=1 scripts/setup.sh)"


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (the dev extra)"
    return None if CHROMIUM.exists() and CHROMEDRIVER.exists() else MISSING


@contextmanager
def headless_chromium(width: int = 1280, height: int = 1700) -> Iterator[Any]:
    """A selenium Chrome driver of headless Debian chromium; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: Any, url: str, username: str, password: str | None) -> None:
    """Load `url` sending HTTP Basic credentials with every request (a CDP header: the
    page's own fetches carry them too)."""
    if password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
        )
    driver.get(url)
