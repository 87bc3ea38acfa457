"""A chapter executed through papermill with an injected parameter: the parameter must take effect (chapter 1
without its explorer widgets, whose frames the book build and the static-page tests exercise)."""
import json
from pathlib import Path

import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[1]


def glued(nb_path: Path) -> dict:
    """Values stored by myst_nb.glue in an executed notebook, by name."""
    out = {}
    for cell in json.loads(nb_path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                out[meta["name"]] = o["data"].get(meta.get("mime_prefix", "") + "text/plain")
    return out


def without_explorers(source: Path, target: Path) -> int:
    """Write ``source`` to ``target`` without the code cells that build explorer widgets (their frames are
    most of the chapter's run time and read no parameter); returns how many cells were dropped."""
    nb = json.loads(source.read_text())
    cells = [c for c in nb["cells"] if not (c["cell_type"] == "code" and "_explorer(" in "".join(c["source"]))]
    dropped, nb["cells"] = len(nb["cells"]) - len(cells), cells
    target.write_text(json.dumps(nb, indent=1))
    return dropped


def test_the_copy_drops_only_the_explorer_cells(tmp_path):
    source = ROOT / "book" / "01_optimal_denoiser.ipynb"
    assert without_explorers(source, tmp_path / "01.ipynb") >= 1
    kept = json.loads((tmp_path / "01.ipynb").read_text())["cells"]
    total = len(json.loads(source.read_text())["cells"])
    assert len(kept) + without_explorers(source, tmp_path / "again.ipynb") == total
    assert not any("_explorer(" in "".join(c["source"]) for c in kept if c["cell_type"] == "code")
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in kept)


def test_chapter1_papermill_parameter_takes_effect(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_FAST", "1")
    source, out = tmp_path / "01_source.ipynb", tmp_path / "01.ipynb"
    without_explorers(ROOT / "book" / "01_optimal_denoiser.ipynb", source)
    pm.execute_notebook(str(source), str(out),
                        parameters={"n_samples": 12_345, "n_monte_carlo": 200_000},
                        cwd=str(ROOT / "book"), kernel_name="python3", progress_bar=False)
    values = glued(out)
    assert values["ch1_n_samples"] == "12345"
    assert values["ch1_n_monte_carlo"] == "200000"
    text = out.read_text()
    assert "n_samples = 12,345" in text                      # printed by the chapter itself
    assert "12,345 exact-score samples through 1000 steps" in text
    assert '"injected-parameters"' in text                    # papermill recorded the override
