"""Headless Chromium for the review-map tests: no network, console and requests recorded.

Used by tests/browser/ (and by hand: ``python -m tests.browser.chrome MAP.html OUT.png``).
Chromium comes from the distribution (``apt-get install chromium chromium-driver``; .ci/run does
it); Selenium drives it through the distribution's chromedriver, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"]


def find(names) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not find(CHROMIUM) or not find(DRIVER):
        return ("Chromium and chromedriver not found: apt-get install chromium chromium-driver "
                "(.ci/run installs them)")
    return None


class Browser:
    """One headless Chromium with a fresh profile; ``open`` a file with the network blocked."""

    def __init__(self, download_dir: Path | None = None):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for downloads
        self.profile = tempfile.mkdtemp(prefix="georisk-chromium-")
        self.download_dir = Path(download_dir or tempfile.mkdtemp(prefix="georisk-downloads-"))
        options = webdriver.ChromeOptions()
        options.binary_location = find(CHROMIUM)
        for flag in FLAGS + [f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        options.add_experimental_option("prefs", {"download.default_directory": str(self.download_dir),
                                                  "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(executable_path=find(DRIVER)), options=options)
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(30)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": str(self.download_dir)})

    def open(self, html: Path) -> None:
        """Load ``html`` and wait for the review app; the logs start empty."""
        self.logs()  # drop anything from a previous page
        self.driver.get(Path(html).resolve().as_uri())
        self.wait("return !!(window.GeoRiskReview && GeoRiskReview.app)")

    def wait(self, script: str, timeout: float = 20):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script(script))

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def logs(self) -> tuple[list[dict], list[str]]:
        """(console entries, URLs the page requested) since the last call."""
        console = self.driver.get_log("browser")
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        return console, urls

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


if __name__ == "__main__":  # python -m tests.browser.chrome MAP.html OUT.png
    b = Browser()
    try:
        b.open(Path(sys.argv[1]))
        b.screenshot(Path(sys.argv[2]))
        console, urls = b.logs()
        print("console:", console)
        print("requests:", [u[:80] for u in urls])
    finally:
        b.close()
