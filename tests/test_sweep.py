"""The sweep command on Dask: serial == LocalCluster == a separate scheduler and worker; resume; failures;
killed workers; usage errors; and every shipped index / MANIFEST entry resolving to its file."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mode_interp import cache, sweep as S
from mode_interp.experiments import loops, records

ROOT = Path(__file__).resolve().parents[1]
TINY = json.loads((ROOT / "sweeps" / "ci_tiny_loop.json").read_text())


def tiny_sweep(seeds=(0,), arms=("none", "variance", "random")) -> dict:
    sweep = json.loads(json.dumps(TINY))
    sweep["grid"] = {"seed": list(seeds), "arm": list(arms)}
    return S.check_sweep(sweep)


def results(folder: Path) -> dict:
    """record file -> its ``result`` (what must not depend on how the sweep ran)."""
    return {p.name: json.loads(p.read_text())["result"] for p in sorted(folder.glob("recursive_arm-*.json"))}


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Each run trains from scratch in its own model cache (and nothing shipped is used)."""
    def use(name):
        monkeypatch.setenv("MODE_INTERP_CACHE", str(tmp_path / name))
    return use


def test_local_cluster_matches_serial_bit_for_bit(tmp_path, own_cache):
    sweep = tiny_sweep()
    own_cache("serial")
    serial = S.run_sweep(sweep, tmp_path / "serial", serial=True, progress=False)
    own_cache("dask")
    parallel = S.run_sweep(sweep, tmp_path / "dask", workers=2, progress=False)
    a, b = results(tmp_path / "serial" / sweep["name"]), results(tmp_path / "dask" / sweep["name"])
    assert len(a) == 3 and a == b
    assert serial["totals"]["done"] == parallel["totals"]["done"] == 3
    assert parallel["totals"]["computed_seconds"] > 0
    # the three arms share generation 0 (its pool's numbers are identical; what each keeps differs), and it
    # is counted once in the totals
    pool0 = [{k: r["rows"][0][k] for k in ("hallucinated", "count", "kl", "spread", "within")} for r in a.values()]
    assert pool0[0] == pool0[1] == pool0[2]
    entries = parallel["tasks"]
    assert len({e["shared_key"] for e in entries}) == 1
    assert parallel["totals"]["computed_seconds"] == pytest.approx(
        sum(e["computed_seconds"] for e in entries) + entries[0]["shared_seconds"], abs=0.2)


def test_records_match_a_direct_run(tmp_path, own_cache):
    own_cache("c")
    sweep = tiny_sweep(arms=("variance",))
    S.run_sweep(sweep, tmp_path, serial=True, progress=False)
    task = S.expand(sweep)[0]
    record = json.loads((tmp_path / sweep["name"] / records.record_file("recursive_arm", task["spec"])).read_text())
    spec = loops.RecursiveArm.from_dict(task["spec"])
    direct = records.compute("recursive_arm", spec)
    assert direct["result"] == record["result"]
    for key in ("command", "spec", "seed", "precision", "wall_seconds", "torch", "date", "schema", "computed_seconds"):
        assert key in record
    assert record["spec"]["seed"] == 0 and record["precision"] == "float32"


def test_a_digits_record_keeps_a_decodable_preview(tmp_path, own_cache, monkeypatch):
    from mode_interp import fid
    own_cache("c")
    quick = fid.load_or_train_classifier(fid.ClassifierConfig(steps=30, n_test=500), progress=False,
                                         directory=tmp_path / "clf")       # a 30-step classifier keeps this fast
    monkeypatch.setattr(fid, "load_or_train_classifier", lambda *a, **k: quick)
    loops._digits_scorer.cache_clear()
    loop = {"base": {"data": "digits_pca", "n_train": 60, "latent_dim": 8, "width": 16, "batch_size": 30,
                     "steps": 20, "T": 20, "beta_start": 1e-4, "beta_end": 0.02}, "generations": 2, "window": 3}
    record = records.compute("recursive_arm", {"loop": loop, "arm": "variance", "n_fid": 20})
    preview = record["result"]["preview"]
    assert [len(p) for p in preview] == [loops.N_PREVIEW] * 2 and len(preview[0][0]) == 8
    rows = record["result"]["rows"]
    assert all(0 <= r["confident"] <= 1 and r["fd"] > 0 for r in rows) and rows[0]["n_pool"] == 62
    from mode_interp.digits import digits_pca
    assert digits_pca(8).decode(preview[1]).shape == (loops.N_PREVIEW, 28, 28)
    loops._digits_scorer.cache_clear()                    # later users get the real classifier


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_separate_scheduler_and_worker_processes(tmp_path, own_cache):
    """The real distributed path: `dask scheduler` and `dask worker` started as processes on 127.0.0.1."""
    own_cache("serial")
    sweep = tiny_sweep(arms=("none", "random"))
    S.run_sweep(sweep, tmp_path / "serial", serial=True, progress=False)
    port = _free_port()
    dask = str(Path(sys.executable).parent / "dask")
    env = dict(os.environ, MODE_INTERP_CACHE=str(tmp_path / "worker-cache"))
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--nworkers", "2",
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from dask.distributed import Client
        deadline = time.time() + 60
        while True:             # wait until both worker processes have joined
            try:
                with Client(f"tcp://127.0.0.1:{port}", timeout="5s") as c:
                    if len(c.scheduler_info()["workers"]) == 2:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "the dask worker did not join the scheduler"
            time.sleep(0.5)
        out = tmp_path / "cluster"
        (tmp_path / "s.json").write_text(json.dumps(sweep))
        code = subprocess.run([sys.executable, "-m", "mode_interp.sweep", str(tmp_path / "s.json"), "--out", str(out),
                               "--scheduler", f"tcp://127.0.0.1:{port}", "--no-progress"],
                              env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert code.returncode == 0, code.stderr[-3000:]
        assert results(out / sweep["name"]) == results(tmp_path / "serial" / sweep["name"])
        index = json.loads((out / sweep["name"] / "index.json").read_text())
        assert index["calls"][-1]["engine"] == f"tcp://127.0.0.1:{port}"
    finally:
        for p in (worker, scheduler):
            p.terminate()
        for p in (worker, scheduler):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def selftest_sweep(grid: dict, spec=None) -> dict:
    return S.check_sweep({"name": "st", "experiment": "selftest", "spec": spec or {"n": 10}, "grid": grid})


def test_a_failing_task_does_not_stop_the_others(tmp_path, capsys):
    sweep = selftest_sweep({"seed": [0, 1, 2], "fail": [False, True]})
    index = S.run_sweep(sweep, tmp_path, workers=2, progress=False)
    assert index["totals"] == {"tasks": 6, "done": 3, "failed": 3, "pending": 0, "computed_seconds": 0.0,
                               "cpu_hours": 0.0}
    failed = [e for e in index["tasks"] if e["status"] == "failed"]
    assert all(e["grid"]["fail"] and "selftest task asked to fail" in e["error"] and "Traceback" in e["error"]
               for e in failed)
    err = capsys.readouterr().err
    assert err.count("FAILED (spec") == 3 and '"fail": true' in err
    assert len(list((tmp_path / "st").glob("selftest-*.json"))) == 3       # only finished records are written


def test_a_killed_worker_has_its_task_rescheduled(tmp_path):
    marker = tmp_path / "died"
    sweep = selftest_sweep({"seed": [0, 1, 2, 3]}, {"n": 10, "die_once": str(marker), "sleep": 0.2})
    index = S.run_sweep(sweep, tmp_path / "out", workers=2, progress=False)
    assert marker.exists()                            # one worker process did die mid-task
    assert index["totals"]["done"] == 4 and index["totals"]["failed"] == 0


def test_an_interrupted_sweep_resumes(tmp_path):
    sweep = selftest_sweep({"seed": [0, 1, 2, 3]}, {"n": 10, "sleep": 5.0})
    (tmp_path / "s.json").write_text(json.dumps(sweep))
    proc = subprocess.Popen([sys.executable, "-m", "mode_interp.sweep", str(tmp_path / "s.json"), "--out",
                             str(tmp_path), "--serial", "--no-progress"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60

    def index_done():                                 # the record lands first, then the index (both atomic)
        path = tmp_path / "st" / "index.json"
        return json.loads(path.read_text())["totals"]["done"] if path.exists() else 0

    while index_done() < 1:                           # the index keeps up with the records as tasks finish
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.kill()                                       # interrupted mid-sweep (tasks take 5 s each)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "st").glob("selftest-*.json")}
    assert 1 <= len(before) < 4
    index = json.loads((tmp_path / "st" / "index.json").read_text())
    assert index["totals"]["pending"] in (4 - len(before), 5 - len(before))   # at most the last record unindexed
    fast = selftest_sweep({"seed": [0, 1, 2, 3]}, {"n": 10, "sleep": 5.0})
    index = S.run_sweep(fast, tmp_path, serial=True, progress=False)
    assert index["calls"][-1]["found"] == len(before) and index["totals"]["done"] == 4
    assert all((tmp_path / "st" / n).stat().st_mtime_ns == t for n, t in before.items())   # not recomputed
    assert len(index["calls"]) == 2


def test_expand_and_dotted_keys():
    sweep = tiny_sweep()
    sweep["grid"] = {"loop.oversample": [1.025, 1.25], "seed": [0, 1], "arm": ["variance"]}
    tasks = S.expand(sweep)
    assert [t["grid"] for t in tasks] == [{"loop.oversample": o, "seed": s, "arm": "variance"}
                                           for o in (1.025, 1.25) for s in (0, 1)]
    assert tasks[2]["spec"]["loop"]["oversample"] == 1.25 and tasks[3]["spec"]["seed"] == 1


def test_yaml_spec(tmp_path):
    (tmp_path / "s.yaml").write_text("name: st\nexperiment: selftest\nspec: {n: 5}\ngrid:\n  seed: [0, 1]\n")
    sweep = S.read_spec(tmp_path / "s.yaml")
    assert [t["spec"]["seed"] for t in S.expand(sweep)] == [0, 1]


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"name": "x", "experiment": "nope", "grid": {}}', "experiment must be one of"),
    ('{"name": "../x", "experiment": "selftest"}', "name must be a folder name"),
    ('{"name": "x", "experiment": "selftest", "grid": {"seed": 3}}', "grid must map"),
    ('{"name": "x", "experiment": "selftest", "colour": 1}', "unknown key"),
    ('{"name": "x", "experiment": "selftest", "grid": {"seed": [-1]}}', "seed"),
    ('{"name": "x", "experiment": "selftest", "grid": {"sede": [1]}}', "unknown field"),
    ('{"name": "x", "experiment": "recursive_arm", "spec": {"arm": "variance"}}', "needs 'loop' and 'arm'"),
])
def test_usage_errors_exit_2(tmp_path, capsys, text, message):
    (tmp_path / "s.json").write_text(text)      # main in this process: the command's exit status and stderr
    code = S.main([str(tmp_path / "s.json"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "usage:" in err


def test_option_errors_exit_2(tmp_path, capsys):
    spec = ROOT / "sweeps" / "ci_tiny_loop.json"
    for args in (["--workers", "0"], ["--serial", "--workers", "2"], ["--threads-per-worker", "0"],
                 ["--serial", "--scheduler", "tcp://x:1"]):     # in this process: main's exit status
        try:
            code = S.main([str(spec), "--out", str(tmp_path), *args])
        except SystemExit as e:                                  # argparse's own usage errors
            code = e.code
        assert code == 2 and "error:" in capsys.readouterr().err, args
        assert not (tmp_path / "ci_tiny_loop").exists(), args    # nothing ran
    assert S.main([str(tmp_path / "none.json")]) == 2 and "cannot read" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    # dask's own connect timeout (30 s unless configured), shortened here through dask's environment config
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    proc = subprocess.run([sys.executable, "-m", "mode_interp.sweep", str(ROOT / "sweeps" / "ci_tiny_loop.json"),
                           "--out", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{_free_port()}", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180, env=env)
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert "tcp://127.0.0.1:" in proc.stderr and "after 3 s" in proc.stderr, proc.stderr[-2000:]


def test_help_documents_the_spec_format():
    proc = subprocess.run([sys.executable, "-m", "mode_interp.sweep", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    for needle in ('"grid"', "--scheduler", "dotted key", "index.json", "LocalCluster"):
        assert needle in proc.stdout


def test_dry_run_lists_tasks(tmp_path, capsys):
    assert S.main([str(ROOT / "sweeps" / "ci_tiny_loop.json"), "--out", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("to do") == 6


def test_a_truncated_record_is_recomputed(tmp_path):
    sweep = selftest_sweep({"seed": [0, 1]})
    S.run_sweep(sweep, tmp_path, serial=True, progress=False)
    victim = sorted((tmp_path / "st").glob("selftest-*.json"))[0]
    good = json.loads(victim.read_text())["result"]
    victim.write_text(victim.read_text()[:40])
    index = S.run_sweep(sweep, tmp_path, serial=True, progress=False)
    assert index["calls"][-1]["found"] == 1 and json.loads(victim.read_text())["result"] == good


# ---------------------------------------------------------------- shipped files resolve

def test_every_shipped_index_entry_resolves_to_its_record():
    indexes = sorted(records.SHIPPED_RESULTS.glob("*/index.json"))
    assert indexes, "no shipped sweep index"
    for path in indexes:
        index = json.loads(path.read_text())
        assert index["schema"] == cache.CACHE_SCHEMA and index["tasks"]
        for entry in index["tasks"]:
            assert entry["status"] == "done", (path, entry["grid"])
            record = records.read_record(path.parent / entry["record"])
            assert record is not None, (path, entry["record"])
            assert record["spec"] == entry["spec"]
            assert entry["record"] == records.record_file(index["experiment"], entry["spec"])   # key unchanged
        assert len(records.load_records(path.parent)) == len(index["tasks"])


def test_every_shipped_manifest_and_summary_entry_resolves():
    from mode_interp.train import SHIPPED_DIR
    for manifest in [SHIPPED_DIR / "MANIFEST.json"]:
        for entry in json.loads(manifest.read_text()):
            assert (manifest.parent / entry["file"]).exists(), entry["file"]
    for summary in SHIPPED_DIR.glob("recursive-*.json"):
        for file in json.loads(summary.read_text())["records"]:
            assert (SHIPPED_DIR / file).exists(), (summary.name, file)


def test_cache_keys_use_the_schema_not_the_version(monkeypatch):
    import mode_interp
    key = cache.config_key({"a": 1})
    monkeypatch.setattr(mode_interp, "__version__", "9.9.9")
    assert cache.config_key({"a": 1}) == key
    with pytest.raises(ValueError, match="schema"):
        cache.config_key({"a": 1}, schema=99)


def test_kept_fd_scores_the_kept_samples_in_pool_order(monkeypatch):
    """The variance arm lists its kept indices by increasing Hal; kept_fd must not score only the least
    varying samples (the first n_fid of that order) but a sample of what is passed on."""
    import numpy as np
    import torch

    from mode_interp.recursive import Generation, LoopConfig
    from mode_interp.train import ToyConfig

    seen = []

    def fake_scores(codes, latent_dim, n_fid, loop_seed):
        seen.append(codes[:n_fid].clone())
        return {"fd": 0.0, "top_class": 0.1, "confident": 1.0}
    monkeypatch.setattr(loops, "digit_scores", fake_scores)
    pool = torch.arange(40, dtype=torch.float32).reshape(20, 2)
    kept = np.array([19, 3, 7, 0, 11, 5])                      # e.g. sorted by Hal
    gen = Generation("variance", 0, None, pool, torch.zeros(20), kept, 0.0, False)
    config = LoopConfig(ToyConfig(data="digits_pca", n_train=6, latent_dim=2))
    loops.generation_metrics(config, gen, n_fid=4)
    assert torch.equal(seen[1], pool[np.sort(kept)][:4])


def test_cpu_hours_count_every_torch_thread_and_shared_work_once(tmp_path):
    sweep = {"name": "t", "experiment": "selftest", "note": "", "spec": {}, "grid": {}}
    done = [{"status": "done", "computed_seconds": 3600.0, "threads": 2, "shared_key": "run", "shared_seconds": 1800.0},
            {"status": "done", "computed_seconds": 1800.0, "threads": 2, "shared_key": "run", "shared_seconds": 900.0},
            {"status": "done", "computed_seconds": 3600.0}]                 # an older record: one thread
    totals = S.write_index(tmp_path, sweep, done, {"started": "now"})["totals"]
    assert totals["computed_seconds"] == 3600 + 1800 + 3600 + 1800
    assert totals["cpu_hours"] == pytest.approx((2 * 3600 + 2 * 1800 + 3600 + 2 * 1800) / 3600)
