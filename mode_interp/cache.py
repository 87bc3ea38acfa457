"""Load-or-train caching of trained models, keyed by their full configuration.

A cache file holds the serialised payload, its SHA-256 and the config it was trained from. It is
written atomically (temporary file in the same folder, fsync, ``os.replace``), so a crash never
leaves a half-written file under the final name; a truncated, corrupted or mismatching file is
detected on load and retrained, never silently used.

Cache folder: ``MODE_INTERP_CACHE`` if set, else ``.cache/models`` in the repository checkout.

Keys hash the config with the **cache schema number** :data:`CACHE_SCHEMA`, not the package version: a
release that changes no stored format keeps every cached and shipped file valid. Bump the schema only
when what a file holds, or how a config maps to it, changes. (Schema 1's keys hash the token "0.1.0", the
package version under which the scheme began, so the files made before the schema number existed keep
their names.)
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

from . import __version__


SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"   # models and records shipped with the package


def restore(model, stored: dict):
    """``model`` with the weights ``stored["state_dict"]`` loaded, in eval mode: how every pipeline (toy,
    SHAPES, digit classifier) rebuilds a stored network."""
    model.load_state_dict(stored["state_dict"])
    return model.eval()


def cache_dir() -> Path:
    given = os.environ.get("MODE_INTERP_CACHE")
    return Path(given) if given else Path(__file__).resolve().parents[1] / ".cache" / "models"


CACHE_SCHEMA = 1
_SCHEMA_TOKENS = {1: "0.1.0"}      # what each schema number hashes as (module docstring)


def config_key(config: dict, schema: int = CACHE_SCHEMA) -> str:
    """SHA-256 of the canonical JSON of ``config`` plus the cache schema's token."""
    if schema not in _SCHEMA_TOKENS:
        raise ValueError(f"schema must be one of {sorted(_SCHEMA_TOKENS)}, got {schema!r}")
    try:
        text = json.dumps({"config": config, "version": _SCHEMA_TOKENS[schema]}, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"config must be JSON-serialisable (plain numbers, strings, lists): {e}") from e
    return hashlib.sha256(text.encode()).hexdigest()


def save_atomic(obj, path: Path, config: dict) -> None:
    """Serialise ``obj`` with torch.save and write it, with checksum and config, atomically to ``path``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    wrapper = {"payload": payload, "sha256": hashlib.sha256(payload).hexdigest(), "config": config,
               "schema": CACHE_SCHEMA, "version": __version__}
    atomic_write(path, lambda f: torch.save(wrapper, f))


STALE_SECONDS = 3600.0      # a temporary file this old was left by a writer that was killed mid-write


def remove_stale_temporaries(directory, prefix: str = "", max_age: float = STALE_SECONDS) -> list:
    """Delete ``{prefix}*.tmp`` files in ``directory`` older than ``max_age`` seconds: what an atomic write
    leaves behind when its process is killed between creating and renaming its temporary file (a live
    writer finishes within seconds). Returns the removed paths; files that vanish meanwhile are skipped."""
    removed, now = [], time.time()
    for tmp in Path(directory).glob(f"{glob.escape(prefix)}*.tmp"):
        try:
            if now - tmp.stat().st_mtime > max_age:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def atomic_write(path: Path, write: Callable, mode: int | None = None) -> None:
    """``write(f)`` into a temporary file beside ``path`` (binary), fsync, optionally chmod to ``mode``, then
    ``os.replace`` it onto ``path``: readers see the old file or the whole new one, never a partial one.
    Temporary files of ``path`` that a killed writer left behind (older than an hour) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(directory, setting: str = "MODE_INTERP_CACHE") -> Path:
    """``directory`` (created if missing) after proving a file can be written there; else a ValueError
    naming the folder and the ``setting`` that chooses it, raised before any long computation starts."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".writable", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ValueError(f"{setting}: cannot write into {directory} ({type(e).__name__}: {e}); point "
                         f"{setting} at a writable folder") from e
    return directory


def load_verified(path: Path, config: dict):
    """The object stored at ``path``, or None when the file is missing, corrupted or for another config."""
    if not path.exists():
        return None
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
        payload = wrapper["payload"]
        if hashlib.sha256(payload).hexdigest() != wrapper["sha256"]:
            raise ValueError("checksum mismatch")
        if wrapper["config"] != json.loads(json.dumps(config)):
            raise ValueError("config mismatch")
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:          # any unreadable file is retrained, with a visible warning
        warnings.warn(f"ignoring unusable cache file {path} ({type(e).__name__}: {e}); retraining",
                      stacklevel=3)
        return None


def file_name(config: dict, name: str = "model") -> str:
    """``{name}-{first 20 hex digits of config_key}.pt``: the file a config is stored under."""
    return f"{name}-{config_key(config)[:20]}.pt"


def load_or_create(config: dict, create: Callable[[], object], name: str = "model",
                   directory: Path | None = None, read_only: tuple = (), refresh: bool = False,
                   check: Callable[[object], object] | None = None):
    """Return ``(obj, path, hit)``: the stored object for ``config``, or ``create()`` saved under its key.

    Looks in ``directory`` (default :func:`cache_dir`), then in each folder of ``read_only`` (e.g. shipped
    checkpoints, never written to). ``refresh=True`` skips both and recreates. ``check(obj)``, if given,
    must succeed on a loaded object (e.g. rebuild the network from its weights): a file that loads, with
    the right checksum and config, but fails it is skipped with a warning, and the object is recreated.

    No finished work is lost to the cache folder: it is proven writable *before* ``create()`` runs (a
    ValueError naming the folder and ``MODE_INTERP_CACHE``), and if the final write still fails (a full
    disk), the object is saved to a rescue folder in the system's temporary directory, with a warning,
    and returned all the same.
    """
    setting = "MODE_INTERP_CACHE" if directory is None else "directory"
    directory = Path(directory) if directory is not None else cache_dir()
    path = directory / file_name(config, name)
    if not refresh:
        for candidate in [path] + [Path(d) / path.name for d in read_only]:
            obj = load_verified(candidate, config)
            if obj is not None and check is not None:
                try:
                    check(obj)
                except Exception as e:         # loadable but unusable (e.g. tensors of the wrong shape)
                    warnings.warn(f"ignoring cache file {candidate}: it loads but is unusable ({type(e).__name__}: "
                                  f"{e}); recreating", RuntimeWarning, stacklevel=3)
                    obj = None
            if obj is not None:
                return obj, candidate, True
    check_writable(directory, setting)
    obj = create()
    try:
        save_atomic(obj, path, config)
    except OSError as e:
        rescue = Path(tempfile.gettempdir()) / "mode_interp_rescue" / path.name
        try:
            save_atomic(obj, rescue, config)
            where = f"saved to {rescue} instead (copy it into the cache folder to reuse it)"
        except OSError as e2:
            rescue, where = path, f"not saved anywhere ({type(e2).__name__}: {e2})"
        warnings.warn(f"could not write {path} ({type(e).__name__}: {e}); the result is {where}, and returned",
                      RuntimeWarning, stacklevel=2)
        path = rescue
    return obj, path, False


def record_manifest(out: Path, file: str, argv, config: dict, seconds: float, device: str, final_loss,
                    module: str = "mode_interp.train", precision: str = "float32") -> None:
    """Append (or replace) ``file``'s entry in ``out/MANIFEST.json``: the exact command, config, training
    time, thread count, device, training precision (what ran), final loss, torch version, machine and date. File-locked and atomic, since
    several trainings may finish at once."""
    import fcntl
    import platform
    import sys
    import time

    out = Path(out)
    argv = sys.argv[1:] if argv is None else list(argv)
    with open(out / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest_path = out / "MANIFEST.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else []
        manifest = [m for m in manifest if m["file"] != file] + [{
            "file": file, "command": f"python -m {module} " + " ".join(argv), "config": config,
            "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(), "device": device,
            "precision": precision,
            "final_loss": final_loss, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}]
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.replace(manifest_path)


def weights_digest(model) -> str:
    """SHA-256 of a network's weights (each state-dict entry's name and float32 values): what a draw from
    it is keyed by, so that retrained or changed weights never meet another model's samples."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def cached_draw(model, setting: dict, draw: Callable):
    """The :class:`mode_interp.diffusion.SampleResult` that ``draw()`` returns for ``model``, stored in the
    cache folder under the model's :func:`weights_digest` and ``setting`` (every argument the draw depends
    on: data config, n, seed, window, chain...): a later call with the same weights and setting (another
    chapter reading the same draw) loads it instead of sampling again, with ``from_cache`` set and the
    original draw's ``seconds``. Nothing depends on the cache's state but the wall time: the stored draw is
    the one ``draw()`` makes."""
    from .diffusion import SampleResult

    def create() -> dict:
        r = draw()
        return {"x0": r.x0, "x0_hat": r.x0_hat, "x_t": r.x_t, "timesteps": list(r.timesteps),
                "precision": r.precision, "compiled": r.compiled, "seconds": r.seconds}

    stored, _, hit = load_or_create({"draw": setting, "weights": weights_digest(model)}, create, name="samples")
    return SampleResult(stored["x0"], stored["x0_hat"], tuple(stored["timesteps"]), stored["precision"],
                        stored["compiled"], stored["x_t"], stored["seconds"], hit)
