"""`make lab`'s JupyterLab runs the chapters live: a server on 127.0.0.1 (started and stopped here, as the
Makefile starts it), chapter 1 opened in headless Chromium, its cells up to its first explorer run by a live
kernel, and the explorer's sliders moved: the figure must change. (The book build runs every cell of every
chapter; this test checks the live path, so the cells after the explorer are left out of its copy.)"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import browser_page, explorers, move_every_control, require_chromium

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_optimal_denoiser.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_target_starts_jupyterlab_on_loopback():
    text = (ROOT / "Makefile").read_text()
    assert "\nlab: venv" in text and "jupyter lab --ip 127.0.0.1" in text


def chapter_up_to_first_explorer(source: Path, target: Path) -> int:
    """Write ``source``'s cells up to and including the first code cell that builds an explorer widget to
    ``target``; returns how many cells were kept."""
    nb = json.loads(source.read_text())
    last = next(i for i, cell in enumerate(nb["cells"])
                if cell["cell_type"] == "code" and "_explorer(" in "".join(cell["source"]))
    nb["cells"] = nb["cells"][:last + 1]
    target.write_text(json.dumps(nb, indent=1))
    return last + 1


def test_the_live_copy_keeps_the_chapter_up_to_its_explorer(tmp_path):
    kept = chapter_up_to_first_explorer(ROOT / "book" / CHAPTER, tmp_path / CHAPTER)
    cells = json.loads((tmp_path / CHAPTER).read_text())["cells"]
    assert len(cells) == kept and "_explorer(" in "".join(cells[-1]["source"])
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


def test_a_chapter_runs_live_and_its_slider_moves_the_figure(tmp_path):
    require_chromium()
    jupyter = Path(sys.executable).with_name("jupyter")
    if not (jupyter.exists() and shutil.which("jupyter-lab", path=str(jupyter.parent))):
        pytest.fail("jupyterlab is not installed in the test environment (requirements.txt lists it)")
    chapter_up_to_first_explorer(ROOT / "book" / CHAPTER, tmp_path / CHAPTER)   # a copy: the server may autosave
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "MODE_INTERP_FAST": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [str(jupyter), "lab", "--ip", "127.0.0.1", f"--port={port}", "--no-browser",
         f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={token}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT)   # a file: a full pipe blocks it
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("jupyter lab exited:\n" + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        with browser_page() as page:
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}")
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')",
                                   timeout=120_000)
            # the kernel is connected and idle (a run-all sent while it still starts can be lost)
            page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                                   " const k = w && w.sessionContext && w.sessionContext.session"
                                   " && w.sessionContext.session.kernel;"
                                   " return k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
                                   timeout=180_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            images = page.locator(".jp-OutputArea-output .widget-vbox img")
            for _ in range(120):                                     # up to 10 minutes for the cells
                page.wait_for_timeout(5_000)
                if any(images.nth(i).is_visible() for i in range(images.count())):
                    break
            found = explorers(page)
            assert found, "the chapter's explorer did not render in JupyterLab"
            results = move_every_control(page, found[0])
            assert results and all(changed for _, changed in results), results
            assert not page.blocked, f"JupyterLab asked for remote resources: {page.blocked[:5]}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
