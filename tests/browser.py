"""Headless Chromium (Debian's, driven by playwright) on pages served over loopback http, every other host
blocked: what the book's widget tests share."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDGET_ASSETS = Path(__file__).resolve().parents[1] / "book" / "_assets" / "widgets"


def require_chromium():
    """Skip without chromium or playwright, except in CI (``.ci/run`` installs both), where it fails."""
    import os
    missing = [name for name, ok in (("chromium", CHROMIUM), ("playwright", _has_playwright())) if not ok]
    if missing:
        if os.environ.get("CI") or os.environ.get("MODE_INTERP_BOOK_HTML"):
            pytest.fail(f"{', '.join(missing)} missing: .ci/run installs Debian's chromium and the pinned playwright")
        pytest.skip(f"{', '.join(missing)} not installed")


def _has_playwright() -> bool:
    import importlib.util
    return importlib.util.find_spec("playwright") is not None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def served(directory: Path):
    """``http://127.0.0.1:PORT`` serving ``directory`` for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def browser_page():
    """A Chromium page that may only reach 127.0.0.1 (``page.blocked`` lists what it tried to fetch
    elsewhere) and records page errors in ``page.errors``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.blocked, page.errors = [], []

            def route(r):
                if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
                    r.continue_()
                else:
                    page.blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            yield page
        finally:
            browser.close()


def image_bytes(widget) -> bytes:
    """A screenshot of the image the frame explorer ``widget`` (a locator) shows now."""
    img = widget.locator("img").filter(visible=True).first
    img.wait_for(state="visible", timeout=20_000)
    return img.screenshot()


def explorers(page):
    """Locators of the frame explorers on ``page``: the widget boxes that hold a Stack (``widget-stack``
    is not a class the manager sets, so: a VBox whose first child holds the controls and that shows an image)."""
    # a Stack may keep its hidden frames in the DOM: wait for a *visible* image, not the first one
    page.locator(".widget-vbox img").filter(visible=True).first.wait_for(state="visible", timeout=30_000)
    boxes = page.locator(".widget-vbox").filter(has=page.locator("img")).filter(
        has=page.locator(".noUi-handle, select"))
    out = []
    for i in range(boxes.count()):
        box = boxes.nth(i)
        if box.locator(".widget-vbox").filter(has=page.locator(".noUi-handle, select")).count() == 0:
            out.append(box)                    # the innermost such box: one explorer
    return out


def move_every_control(page, widget) -> list:
    """Move each slider one step (right, or left from its last value) and each dropdown to another
    option, checking after each move that the shown image changed. Returns ``[(control, changed)]``."""
    results = []
    handles = widget.locator(".noUi-handle")
    for i in range(handles.count()):
        handle = handles.nth(i)
        before = image_bytes(widget)
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        handle.focus()
        page.keyboard.press("ArrowLeft" if now == top else "ArrowRight")
        page.wait_for_timeout(400)
        results.append((f"slider {i}", image_bytes(widget) != before))
    selects = widget.locator("select")
    for i in range(selects.count()):
        select = selects.nth(i)
        before = image_bytes(widget)
        values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        current = select.input_value()
        select.select_option(next(v for v in values if v != current))
        page.wait_for_timeout(400)
        results.append((f"dropdown {i}", image_bytes(widget) != before))
    return results
