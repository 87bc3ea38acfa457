"""Static checks of the chapters' sources (no execution): no chapter or package docstring points readers
at files outside the repository, and every section link has its target. (That every ``{glue:...}`key```
the prose cites is glued, once, is enforced by the build: myst-nb warns on a missing or a duplicate key
and the book builds with -W; ``tests/test_book.py`` checks that no unresolved reference is left.)"""

from __future__ import annotations

import json
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
def test_nothing_points_outside_the_repository():
    texts = [p for p in NOTEBOOKS] + [ROOT / "book" / "intro.md"] + sorted((ROOT / "mode_interp").rglob("*.py"))
    offenders = [str(p.relative_to(ROOT)) for p in texts
                 if re.search(r"paper[-_ ]notes|design\.md|\.\./shared", p.read_text())]
    assert not offenders, offenders


def test_every_section_link_has_its_target():
    """``[text](label)`` links to a ``(label)=`` target of some chapter (a missing one only warns in
    Sphinx, and the -W build then fails at its very end)."""
    texts = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                               if c["cell_type"] == "markdown") for p in NOTEBOOKS}
    texts["intro.md"] = (ROOT / "book" / "intro.md").read_text()
    targets = {t for text in texts.values() for t in re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M)}
    links = {(name, link) for name, text in texts.items()
             for link in re.findall(r"\]\(([A-Za-z][\w-]*)\)", text) if "." not in link}
    assert targets and links
    missing = sorted((name, link) for name, link in links if link not in targets)
    assert not missing, missing


def _code_cells(notebook: Path) -> list:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


def test_chapters_read_as_prose_and_calls():
    """The chapters hold prose, parameters, calls, figures and checks; the computing lives in the package:
    at most 100 non-blank code lines a chapter on average (hidden cells included), no function defined in a
    notebook, and no code cell longer than 25 lines (the parameters cell excepted)."""
    lines = {nb.name: sum(1 for cell in _code_cells(nb) for line in cell.splitlines() if line.strip())
             for nb in NOTEBOOKS}
    assert sum(lines.values()) <= 100 * len(NOTEBOOKS), lines
    defs = [nb.name for nb in NOTEBOOKS for cell in _code_cells(nb) if re.search(r"^\s*def ", cell, re.M)]
    assert not defs, f"functions defined in notebooks: {defs}"
    long = [(nb.name, len(cell.splitlines())) for nb in NOTEBOOKS for cell in _code_cells(nb)
            if len(cell.splitlines()) > 25 and not cell.startswith("# Parameters")]
    assert not long, f"code cells longer than 25 lines: {long}"


def test_every_cell_has_an_id():
    """nbformat 4.5 cells carry an ``id`` (a cell without one is a validator warning today, an error later)."""
    missing = [(nb.name, i) for nb in NOTEBOOKS for i, c in enumerate(json.loads(nb.read_text())["cells"])
               if not c.get("id")]
    assert not missing, missing


def test_display_math_stands_in_its_own_paragraph():
    """A ``$$`` line directly under or over a line of text is not display math in MyST: the paragraph
    swallows it and its dollars pair up as inline math, which garbles the equation and the prose after it
    (and hides any glue reference there). Every ``$$`` block has a blank line before and after it."""
    bad = []
    for nb in NOTEBOOKS:
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            if c["cell_type"] != "markdown":
                continue
            lines = "".join(c["source"]).split("\n")
            fences = [k for k, line in enumerate(lines) if line.strip() == "$$"]
            for start, end in zip(fences[::2], fences[1::2]):
                if (start > 0 and lines[start - 1].strip()) or (end < len(lines) - 1 and lines[end + 1].strip()):
                    bad.append((nb.name, i, start))
    assert not bad, f"$$ blocks without a blank line around them: {bad}"
