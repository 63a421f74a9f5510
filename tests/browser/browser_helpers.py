"""Driving the MLflow UI in headless Chromium (imported as ``browser_helpers``).

:class:`Page` wraps a Selenium session with what the tests do as a user: open a link,
wait until something shows, click, type, read the runs table in the order it is drawn,
and save a screenshot of every state a test asserts on. Selectors are the UI's own
``data-testid`` / ``data-component-id`` attributes where MLflow 3.17 has them, visible
text elsewhere.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Callable

#: Where Debian puts them (``apt-get install chromium chromium-driver``).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "chromedriver")
#: Flags for a machine that reaches nothing outside itself.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars")
WINDOW = (1440, 900)
#: Seconds to wait for something to show (the server and the browser share two cores).
TIMEOUT = 90


def find_chromium() -> tuple[str | None, str | None]:
    def first(candidates):
        for candidate in candidates:
            path = shutil.which(candidate)
            if path:
                return path
        return None

    return first(CHROMIUM_CANDIDATES), first(CHROMEDRIVER_CANDIDATES)


class Page:
    """One browser session; every ``shot`` goes to ``folder``."""

    def __init__(self, driver, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        self.shots: list[Path] = []

    @classmethod
    def start(cls, chromium: str, chromedriver: str, folder: Path) -> "Page":
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
        # Both paths are given, so Selenium Manager (which would download a driver) is not used.
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        driver.set_page_load_timeout(TIMEOUT)
        return cls(driver, folder)

    def quit(self) -> None:
        self.driver.quit()

    # ------------------------------------------------------------------ navigation

    def open(self, url: str) -> None:
        """Load ``url`` afresh, as a link followed from elsewhere (not a hash change in the open app)."""
        self.driver.get("about:blank")
        self.driver.get(url)
        self.wait_text("Model training")  # the sidebar is drawn: the app has started
        self.close_assistant()

    def close_assistant(self) -> None:
        """Close MLflow's assistant panel, which opens by itself on a first visit."""
        from selenium.webdriver.common.by import By

        for button in self.driver.find_elements(
            By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']"
        ):
            if button.is_displayed():
                button.click()

    # ---------------------------------------------------------------------- waits

    def wait(self, condition: Callable, what: str, timeout: float = TIMEOUT):
        """Wait until ``condition(driver)`` is truthy and return it; fail with a screenshot."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition(self.driver)
                if value:
                    return value
            except (StaleElementReferenceException, WebDriverException):
                pass
            if time.monotonic() > deadline:
                path = self.shot(f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}")
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (screenshot: {path})")
            time.sleep(0.25)

    def wait_text(self, text: str, timeout: float = TIMEOUT) -> None:
        self.wait(lambda d: text in self.body_text(), f"the text {text!r}", timeout)

    def find(self, css: str, what: str | None = None, timeout: float = TIMEOUT):
        """The first displayed element matching ``css``, once there is one."""
        from selenium.webdriver.common.by import By

        return self.wait(
            lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None),
            what or css, timeout,
        )

    def find_xpath(self, xpath: str, what: str, timeout: float = TIMEOUT):
        from selenium.webdriver.common.by import By

        return self.wait(
            lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None), what, timeout
        )

    def click_text(self, text: str, tag: str = "*", timeout: float = TIMEOUT) -> None:
        """Click the displayed element whose own text is ``text``."""
        element = self.find_xpath(f"//{tag}[normalize-space(text())={_xpath_literal(text)}]", repr(text), timeout)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    # ---------------------------------------------------------------------- reads

    def body_text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def run_rows(self) -> list[tuple[str, str]]:
        """``(run id, run name)`` of the runs table's rows, top to bottom as drawn."""
        rows = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.ag-pinned-left-cols-container .ag-row'))"
            ".map(r => [parseInt(r.getAttribute('row-index')), r.getAttribute('row-id'),"
            " (r.querySelector(\"a[href*='/runs/']\") || {textContent: ''}).textContent.trim()]);"
        )
        return [(run_id, name) for _, run_id, name in sorted(rows)]

    def matching_runs(self) -> int | None:
        found = re.search(r"(\d+) matching runs?", self.body_text())
        return int(found.group(1)) if found else None

    def image_loaded(self, src_part: str = "blob:") -> int:
        """The width of the largest loaded image whose ``src`` contains ``src_part`` (0: none)."""
        return self.driver.execute_script(
            "return Math.max(0, ...Array.from(document.images)"
            ".filter(i => i.src.includes(arguments[0]) && i.complete).map(i => i.naturalWidth));",
            src_part,
        )

    # ----------------------------------------------------------------- screenshots

    def shot(self, name: str) -> Path:
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"
