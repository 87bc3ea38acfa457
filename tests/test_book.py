"""The built book: every page present, no remote scripts or styles, MathJax and widgets served locally,
no cell errors, the claims passed; and, in headless Chromium over loopback http, maths and widgets render.

The book is built once per session into a temporary folder (FAST mode), unless MODE_INTERP_BOOK_HTML
points at an already built ``_build/html``.
"""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["book/01_optimal_denoiser.html", "book/02_learned_score_smoothing.html",
            "book/03_shapes_hallucinations.html", "book/04_variance_detector.html",
            "book/05_recursive_collapse.html", "book/06_beyond_the_paper.html"]
PAGES = CHAPTERS + ["book/engine.html"]          # the engine page: no widgets
WIDGET_CHAPTERS = CHAPTERS[:4]                   # chapters 5 and 6 have no explorer
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def html_dir(tmp_path_factory) -> Path:
    given = os.environ.get("MODE_INTERP_BOOK_HTML")
    if given:
        path = Path(given)
        assert (path / "index.html").exists(), f"MODE_INTERP_BOOK_HTML={given} holds no built book"
        return path
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
                          env={**os.environ, "MODE_INTERP_FAST": "1"}, capture_output=True, text=True)
    assert proc.returncode == 0, "book build failed:\n" + (proc.stdout + proc.stderr)[-6000:]
    return out / "_build" / "html"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []          # (tag, attribute, value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for attr in ("src", "href"):
            if attrs.get(attr) and (tag != "a"):
                self.refs.append((tag, attr, attrs[attr]))


def refs(page: Path):
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


def test_pages_exist(html_dir):
    for page in ["index.html", *PAGES]:
        assert (html_dir / page).is_file(), page


def test_no_remote_scripts_or_styles(html_dir):
    remote = re.compile(r"^(https?:)?//", re.I)
    for page in html_dir.rglob("*.html"):
        bad = [r for r in refs(page) if remote.match(r[2])]
        assert not bad, f"{page.relative_to(html_dir)} loads remote resources: {bad}"


def test_mathjax_and_widget_js_are_local(html_dir):
    """Every chapter loads MathJax from the book; the chapters with an explorer (WIDGET_CHAPTERS) also load
    the widget scripts from it and embed the widgets' state and views."""
    for chapter in CHAPTERS:
        page = html_dir / chapter
        scripts = [v.split("?")[0] for tag, _, v in refs(page) if tag == "script"]
        wanted = ("mathjax/tex-chtml.js",) + (("widgets/require.js", "widgets/embed-amd.js")
                                               if chapter in WIDGET_CHAPTERS else ())
        local = {s for s in scripts if s.endswith(wanted)}
        assert len(local) == len(wanted), f"{chapter}: MathJax/widget scripts missing: {scripts}"
        for s in local:
            assert (page.parent / s).resolve().is_file(), s
        if chapter in WIDGET_CHAPTERS:
            text = page.read_text(encoding="utf-8")
            assert "application/vnd.jupyter.widget-state+json" in text
            assert "application/vnd.jupyter.widget-view+json" in text


def test_no_cell_errors_and_claims_pass(html_dir):
    for chapter in PAGES:
        text = (html_dir / chapter).read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in text
        assert 'class="output traceback' not in text
        assert "{glue:" not in text, "an unresolved glue reference"
        # the check cell prints "PASS <claim>" / "FAIL <claim>" (its source has the bare strings)
        assert re.search(r"PASS (\[\w+\] )?[a-z]", text) and not re.search(r"FAIL (\[\w+\] )?[a-z]", text)


def test_every_chapter_was_executed_by_the_build(html_dir):
    """The build's executed copy of each chapter (what CI checks instead of running the chapters a second
    time under nbmake): the current source, every code cell run, no error output, the check cell passed."""
    executed = html_dir.parent / "jupyter_execute" / "book"
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    assert sorted(f"book/{nb.stem}.html" for nb in notebooks) == sorted(PAGES)
    for nb in notebooks:
        path = executed / nb.name
        assert path.is_file(), f"{nb.name} was not executed by the build ({path} missing)"
        cells = json.loads(path.read_text())["cells"]
        source = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert ["".join(c["source"]) for c in code] == ["".join(c["source"]) for c in source], \
            f"{nb.name}: the executed copy is stale (its code differs from book/{nb.name})"
        assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), \
            f"{nb.name}: a code cell was not executed"
        outputs = [o for c in code for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"{nb.name}: a cell raised"
        text = json.dumps(outputs)
        assert re.search(r"PASS (\[\w+\] )?[a-z]", text) and not re.search(r"FAIL (\[\w+\] )?[a-z]", text), nb.name


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=20000", "--window-size=1280,2400"]
    return subprocess.run([CHROMIUM, *flags, *extra, url], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def served(html_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html_dir))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_maths_and_widgets_render_in_chromium(served, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    url = f"{served}/{CHAPTERS[0]}"
    dom = _chromium(url, tmp_path, "--dump-dom").stdout
    assert "<mjx-container" in dom, "MathJax did not typeset the page"
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error"
    assert "widget-slider" in dom, "the ipywidgets sliders did not render"
    shot = tmp_path / "chapter1.png"
    _chromium(url, tmp_path, f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 50_000
    keep = os.environ.get("MODE_INTERP_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


WIDGET_PAGES = CHAPTERS[:4]      # chapters 1-4 each hold one explorer; chapters 5, 6 and the engine none
# Errors every page of the Jupyter Book 1 theme throws, harmless to the widgets (checked by this test
# passing the slider checks first): the theme declares thebe's THEBE_JS_URL twice, and the widget manager's
# typesetting hook calls MathJax 2's MathJax.Hub.Queue while the book loads MathJax 3 (no Hub).
KNOWN_PAGE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared", "reading 'Queue'")


@pytest.mark.parametrize("page_path", WIDGET_PAGES)
def test_every_slider_moves_its_figure_in_the_static_page(served, page_path):
    """Offline (every host but 127.0.0.1 blocked), in headless Chromium: each explorer of the built page
    renders from the embedded widget state, and moving each of its sliders (arrow keys on the handle)
    or menus changes the image it shows; no page error, no remote request."""
    from browser import browser_page, explorers, move_every_control, require_chromium

    require_chromium()
    with browser_page() as page:
        page.goto(f"{served}/{page_path}", wait_until="load")
        found = explorers(page)
        assert found, f"{page_path}: no explorer rendered"
        for widget in found:
            results = move_every_control(page, widget)
            assert results and all(changed for _, changed in results), f"{page_path}: {results}"
        assert not page.blocked, f"{page_path} asked for remote resources: {page.blocked[:5]}"
        unknown = [e for e in page.errors if not any(k in e for k in KNOWN_PAGE_ERRORS)]
        assert not unknown, f"{page_path}: page errors {unknown[:3]}"
