"""A chapter executed through papermill with an injected parameter: the parameter must take effect."""
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


def test_chapter1_papermill_parameter_takes_effect(tmp_path, monkeypatch):
    monkeypatch.setenv("MODE_INTERP_FAST", "1")
    out = tmp_path / "01.ipynb"
    pm.execute_notebook(str(ROOT / "book" / "01_optimal_denoiser.ipynb"), str(out),
                        parameters={"n_samples": 12_345, "n_monte_carlo": 200_000},
                        cwd=str(ROOT / "book"), kernel_name="python3", progress_bar=False)
    values = glued(out)
    assert values["ch1_n_samples"] == "12345"
    assert values["ch1_n_monte_carlo"] == "200000"
    text = out.read_text()
    assert "n_samples = 12,345" in text                      # printed by the chapter itself
    assert "12,345 exact-score samples through 1000 steps" in text
    assert '"injected-parameters"' in text                    # papermill recorded the override
