"""Load a page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright)
and say what a person would see go wrong: images that did not load, console errors,
failed requests. ``make test`` installs Chromium; Playwright's own browser downloads are
not used (CI cannot reach them)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PageCheck", "load_page", "chromium_path"]

#: The flags a closed network needs: no background connections, no component updates.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium; fails (does not skip) where it is missing: `make test` installs it."""
    found = os.environ.get("SHIPYARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise AssertionError("Chromium is not installed: `make test` installs Debian's "
                             "chromium (apt-get install chromium), or set SHIPYARD_CHROMIUM")
    return found


@dataclass
class PageCheck:
    """What loading a page showed."""

    title: str
    text: str
    images: list[dict] = field(default_factory=list)   # {"alt", "loaded", "width", "height"}
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    @property
    def broken_images(self) -> list[dict]:
        return [image for image in self.images if not image["loaded"]]


def load_page(path: Path, screenshot: Path | None = None, width: int = 1280) -> PageCheck:
    """Open ``path`` (a local HTML file) and collect a :class:`PageCheck`; with
    ``screenshot``, save a full-page PNG there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            console: list[str] = []
            errors: list[str] = []
            failed: list[str] = []
            page.on("console", lambda msg: console.append(msg.text) if msg.type == "error"
                    else None)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("requestfailed", lambda request: failed.append(request.url[:200]))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                """() => Array.from(document.images).map(img => ({
                       alt: img.alt, loaded: img.complete && img.naturalWidth > 0,
                       width: img.naturalWidth, height: img.naturalHeight}))""")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            return PageCheck(title=page.title(), text=page.inner_text("body"), images=images,
                             console_errors=console, page_errors=errors,
                             failed_requests=failed)
        finally:
            browser.close()
