"""One writer per folder, run identity with the data, --force that never loses a run, the
verified feature cache, file modes, last.pt, progress on stderr, --threads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import merbench.train as train_module
from merbench import lock, run_folder
from merbench.atomic import atomic_open, remove_temporaries
from merbench.data.types import RawUtterance
from merbench.errors import MerbenchError
from merbench.features import cache
from merbench.features._common import Extractor
from merbench.grid import GridCell, RunnerOptions, run_grid
from merbench.recipe import load_recipe
from merbench.results import read_result

from helpers import cli, one_line_error, tiny_recipe, write_recipe

PYTHON = sys.executable
MERBENCH = str(Path(sys.executable).with_name("merbench"))


def spawn_holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from merbench import lock
        with lock.hold({str(folder)!r}):
            print("held", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def gone(pid: int) -> bool:
    """No such process, or a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


# --- the lock ---------------------------------------------------------------------------------


def test_a_second_writer_gets_one_line_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    holder = spawn_holder(folder)
    try:
        with pytest.raises(lock.LockHeld) as e:
            with lock.hold(folder):
                pass
        message = str(e.value)
        assert "\n" not in message and str(folder) in message and f"pid {holder.pid}" in message
        assert lock.holder(folder).pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # Killed with -9: the lock file still names it, but its lock died with it.
    assert json.loads(lock.lock_path(folder).read_text())["pid"] == holder.pid
    assert lock.holder(folder) is None
    with lock.hold(folder):
        assert json.loads(lock.lock_path(folder).read_text())["pid"] == os.getpid()
        with lock.hold(folder):  # re-entrant in one process (a grid worker, then train)
            pass
        assert lock.lock_path(folder).exists()
    assert not lock.lock_path(folder).exists()


def test_a_lock_file_of_a_dead_process_without_a_lock_is_taken_over(tmp_path):
    dead = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.lock_path(tmp_path / "x").write_text(json.dumps(
        {"pid": int(dead.stdout), "host": os.uname().nodename, "started_utc": "then", "command": "merbench"}))
    with lock.hold(tmp_path / "x"):
        assert lock.holder(tmp_path / "x").pid == os.getpid()


def test_an_unwritable_parent_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MerbenchError, match="cannot create or open the lock file"):
        with lock.hold(tmp_path / "file" / "run"):
            pass


# --- train: one writer, --force, last.pt, seconds, threads --------------------------------------


@pytest.fixture
def recipe_path(tmp_path):
    return write_recipe(tmp_path / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=3, patience=3))


def test_two_processes_train_the_same_recipe_into_the_same_out_one_wins(tmp_path):
    slow = tiny_recipe("mlp_tiny", max_epochs=500, patience=500)  # still training when the second comes
    slow["dataset"].update(n_dialogues=40, n_utterances=1200)
    path = write_recipe(tmp_path / "slow.yaml", slow)
    out = tmp_path / "runs"
    first = subprocess.Popen([MERBENCH, "train", str(path), "--out", str(out), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300  # a loaded machine starts a process slowly
        while not list(out.glob("*/metrics.csv")) and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, "the first writer ended before the second started"
        message = one_line_error(cli("train", path, "--out", out, "--quiet"))
        assert "another merbench process is writing it" in message and f"pid {first.pid}" in message
        assert first.poll() is None  # the first goes on: it won
    finally:
        first.kill()
        first.wait()
    (run_dir,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    epochs = [line for line in (run_dir / run_folder.LOG).read_text().splitlines() if " epoch 1 " in line]
    assert len(epochs) == 1  # one writer's log, not two interleaved
    with lock.hold(run_dir):  # killed with -9: its lock is stale and taken over
        assert lock.holder(run_dir).pid == os.getpid()


def die_after_epoch_2(monkeypatch) -> None:
    """A kill after epoch 2's checkpoint is written (KeyboardInterrupt, as Ctrl-C)."""
    real_save = train_module.save_checkpoint

    def dying_save(path, state):
        real_save(path, state)
        if path.name == "last.pt" and state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", dying_save)


def finished_run(recipe_path: Path, out: Path) -> tuple[Path, dict[str, bytes]]:
    result = cli("train", recipe_path, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    return run_dir, snapshot(run_dir)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_force_swaps_in_a_finished_retrain(recipe_path, tmp_path):
    run_dir, before = finished_run(recipe_path, tmp_path / "runs")
    result = cli("train", recipe_path, "--out", tmp_path / "runs", "--quiet", "--force")
    assert result.exit_code == 0, result.output
    after = read_result(run_dir)
    assert after["created_utc"] >= json.loads(before[run_folder.RESULT])["created_utc"]
    assert after["metrics"] == json.loads(before[run_folder.RESULT])["metrics"]  # same recipe, same numbers
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # no sibling left


@pytest.mark.parametrize("how", ["killed", "failed"])
def test_a_killed_or_failing_force_keeps_the_finished_run(recipe_path, tmp_path, monkeypatch, how):
    run_dir, before = finished_run(recipe_path, tmp_path / "runs")
    if how == "killed":
        die_after_epoch_2(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            train_module.train(load_recipe(recipe_path), tmp_path / "runs", force=True, progress=False)
    else:
        monkeypatch.setattr(train_module, "task_loss", lambda *a: torch.tensor(float("nan"), requires_grad=True))
        result = cli("train", recipe_path, "--out", tmp_path / "runs", "--quiet", "--force")
        assert result.exit_code == 1 and f"the finished run in {run_dir} is kept" in result.output
    assert snapshot(run_dir) == before
    assert [p for p in (tmp_path / "runs").iterdir() if ".force-" in p.name]  # the attempt, until ...
    monkeypatch.undo()
    again = cli("train", recipe_path, "--out", tmp_path / "runs", "--quiet")  # ... the next writer
    assert again.exit_code == 0 and "already finished" in again.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]
    assert snapshot(run_dir) == before


def make_read_only(folder: Path) -> None:
    if os.geteuid() != 0:
        for p in (folder / "checkpoints", folder):
            p.chmod(0o555)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without chattr: no way to make a folder read-only here")


def test_force_into_a_read_only_run_folder_is_one_line_and_deletes_nothing(recipe_path, tmp_path):
    run_dir, before = finished_run(recipe_path, tmp_path / "runs")
    make_read_only(run_dir)
    try:
        message = one_line_error(cli("train", recipe_path, "--out", tmp_path / "runs", "--quiet", "--force"))
        assert str(run_dir) in message and "not writable" in message
    finally:
        subprocess.run(["chattr", "-i", str(run_dir)]) if os.geteuid() == 0 else run_dir.chmod(0o755)
    assert snapshot(run_dir) == before


def test_resume_and_force_together_is_one_line(recipe_path, tmp_path):
    assert "--resume and --force" in one_line_error(
        cli("train", recipe_path, "--out", tmp_path, "--resume", "--force", "--quiet"))


def test_last_pt_is_deleted_at_the_end_unless_keep_last_and_seconds_add_up_across_resumes(
        recipe_path, tmp_path, monkeypatch):
    recipe = load_recipe(recipe_path)
    die_after_epoch_2(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(recipe, tmp_path, progress=False)
    monkeypatch.undo()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    before = torch.load(run_dir / run_folder.LAST, weights_only=True)["seconds"]
    assert before > 0
    train_module.train(recipe, tmp_path, resume=True, progress=False)
    result = read_result(run_dir)
    assert result["training"]["seconds"] >= round(before, 2)
    assert not (run_dir / run_folder.LAST).exists() and (run_dir / run_folder.BEST).exists()
    kept = cli("train", recipe_path, "--out", tmp_path / "kept", "--quiet", "--keep-last")
    assert kept.exit_code == 0 and len(list((tmp_path / "kept").glob("*/checkpoints/last.pt"))) == 1


def test_temporary_files_left_by_a_kill_are_removed_by_the_next_writer(recipe_path, tmp_path):
    run_dir, _ = finished_run(recipe_path, tmp_path / "runs")
    left = [run_dir / ".result.json.abc123.tmp", run_dir / "checkpoints" / ".best.pt.x1.tmp"]
    for p in left:
        p.write_bytes(b"half")
    assert cli("train", recipe_path, "--out", tmp_path / "runs", "--quiet").exit_code == 0
    assert not any(p.exists() for p in left)
    assert remove_temporaries(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_users_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with atomic_open(tmp_path / "f.json", "w", encoding="utf-8") as f:
            f.write("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_run_folders_files_are_group_readable_under_umask_022(recipe_path, tmp_path):
    old = os.umask(0o022)
    try:
        run_dir, _ = finished_run(recipe_path, tmp_path / "runs")
    finally:
        os.umask(old)
    for p in (run_dir / run_folder.RESULT, run_dir / run_folder.BEST, run_dir / run_folder.METRICS_CSV):
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_train_threads_is_the_recipes_train_threads_and_the_bar_goes_to_stderr(recipe_path, tmp_path):
    done = cli("train", recipe_path, "--out", tmp_path / "runs", "--threads", "2")
    assert done.exit_code == 0, done.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = read_result(run_dir)
    assert result["recipe"]["train"]["threads"] == 2 and result["provenance"]["threads"] == 2
    assert "utt/s" in done.stderr and "utt/s" not in done.stdout  # the bar's columns
    assert "WF1" in done.stdout
    assert torch.get_num_threads() == 1  # the caller's count is restored
    recipe = load_recipe(recipe_path)
    assert run_dir.name != run_folder.run_name(recipe)  # recipe_path says 1 thread: another run
    assert "--threads" in one_line_error(cli("train", recipe_path, "--threads", "0"))


# --- run identity -----------------------------------------------------------------------------


def iemocap_recipe() -> dict:
    from merbench.recipe import validate

    return validate({"dataset": {"name": "iemocap", "features": {"text": "minilm"}},
                     "model": {"name": "mlp_tiny"}}, "test")


def test_the_run_id_includes_the_data_given_by_the_environment(tmp_path, monkeypatch):
    for copy in ("a", "b"):
        (tmp_path / copy).mkdir()
        (tmp_path / copy / "iemocap.pkl").write_bytes(b"x" * 10)
        (tmp_path / copy / ".merbench-cache").mkdir()  # hidden: not data
    (tmp_path / "b" / "iemocap.pkl").write_bytes(b"y" * 11)
    recipe = iemocap_recipe()
    names = {}
    for copy in ("a", "b"):
        monkeypatch.setenv("MERBENCH_IEMOCAP_ROOT", str(tmp_path / copy))
        names[copy] = run_folder.run_name(recipe)
        assert GridCell(recipe).run == names[copy]  # grids plan the same folder train uses
    assert names["a"] != names["b"]
    run_folder._files_key.cache_clear()
    monkeypatch.setenv("MERBENCH_IEMOCAP_ROOT", str(tmp_path / "a"))
    (tmp_path / "a" / ".merbench-cache" / "x.npy").write_bytes(b"1")
    assert run_folder.run_name(recipe) == names["a"]  # a hidden folder beside the data changes nothing
    os.utime(tmp_path / "a" / "iemocap.pkl", ns=(1, 1))
    run_folder._files_key.cache_clear()
    assert run_folder.run_name(recipe) != names["a"]  # same size, other time: maybe other labels
    assert run_folder.identity(tiny_recipe_resolved())["data"] == ""  # the recipe alone makes synthetic data


def tiny_recipe_resolved() -> dict:
    from merbench.recipe import validate

    return validate(tiny_recipe(), "test")


# --- grids: a held cell is left alone; killing the parent stops its workers ---------------------


def grid_cells(n: int, epochs: int = 2, utterances: int = 120) -> list[GridCell]:
    from merbench.recipe import validate

    cells = []
    for seed in range(n):
        recipe = tiny_recipe("mlp_tiny", max_epochs=epochs, patience=epochs, seed=seed)
        recipe["dataset"].update(n_dialogues=20, n_utterances=utterances)
        cells.append(GridCell(validate(recipe, "test"), {"seed": seed}))
    return cells


def test_a_rerun_never_trains_a_cell_a_live_process_holds(tmp_path):
    cells = grid_cells(2)
    holder = spawn_holder(tmp_path / cells[1].run)
    try:
        run = run_grid(tmp_path, cells, "test", ["test"], RunnerOptions(quiet=True))
    finally:
        holder.kill()
        holder.wait()
    assert cells[0].run in run.results and cells[1].run not in run.results
    assert f"pid {holder.pid}" in run.errors[cells[1].run]
    assert not (tmp_path / cells[1].run).exists()
    again = run_grid(tmp_path, cells, "test", ["test"], RunnerOptions(quiet=True))
    assert len(again.results) == 2 and again.trained == [cells[1].run]


def test_a_second_command_on_the_same_grid_gets_one_line(tmp_path):
    holder = spawn_holder(tmp_path / "grid")
    try:
        with pytest.raises(lock.LockHeld, match=f"pid {holder.pid}"):
            run_grid(tmp_path / "grid", grid_cells(1), "test", ["test"], RunnerOptions(quiet=True))
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("runner", [[], ["--launcher", "local"]], ids=["processes", "submitit-local"])
def test_kill_9_of_a_grids_parent_stops_its_workers(tmp_path, runner):
    recipes = tmp_path / "recipes" / "synthetic"
    write_recipe(recipes / "mlp_tiny.yaml", tiny_recipe("mlp_tiny", max_epochs=500, patience=500))
    parent = subprocess.Popen([MERBENCH, "compare", "--models", "mlp_tiny", "--seeds", "2", "--jobs", "2", *runner,
                               "--threads", "1", "--dataset", "synthetic", "--recipes", str(tmp_path / "recipes"),
                               "--out", str(tmp_path / "grids"), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids: list[int] = []
    try:
        deadline = time.time() + 300  # a loaded machine starts three processes slowly
        while time.time() < deadline and parent.poll() is None:
            cells = list((tmp_path / "grids").glob("*/.*.lock"))  # a worker holds each cell's lock
            try:
                pids = [json.loads(m.read_text())["pid"] for m in cells]
            except (ValueError, FileNotFoundError):  # being written
                pids = []
            if len(pids) == 2:
                break
            time.sleep(0.2)
        assert len(pids) == 2 and parent.poll() is None, "the workers never started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 5
        while time.time() < deadline and not all(gone(p) for p in pids):
            time.sleep(0.1)
        assert all(gone(p) for p in pids), "workers outlived their grid's parent"
    finally:
        parent.kill()
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


# --- the feature cache verifies what it serves ----------------------------------------------------


class Counting(Extractor):
    """Deterministic features from the utterance id; records what it was asked to extract."""

    name = "counting"
    modality = "text"

    def __init__(self, sequence: bool) -> None:
        self.sequence = sequence
        self.calls: list[list[str]] = []

    def config(self) -> dict:
        return {"sequence": self.sequence}

    def extract(self, utterances, progress=None) -> list[np.ndarray]:
        self.calls.append([u.id for u in utterances])
        return [np.full((int(u.id) % 3 + 1, 4) if self.sequence else (4,), int(u.id), np.float32)
                for u in utterances]


UTTERANCES = [RawUtterance(str(i), "a", 0) for i in range(10)]


def corrupt(folder: Path, kind: str) -> Path:
    """Damage the cache folder one way; returns the file the error must name."""
    shard, manifest_path = folder / "shard-4-00001.npy", folder / cache.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    if kind == "fewer rows":
        np.save(shard, np.load(shard)[:-1])
        return shard
    if kind == "truncated":
        shard.write_bytes(shard.read_bytes()[:100])
        return shard
    if kind == "deleted":
        shard.unlink()
        return shard
    if kind == "sequence flag flipped":
        manifest["sequence"] = not manifest["sequence"]
    elif kind == "manifest not an object":
        manifest = [manifest]
    elif kind == "shard size 0":
        manifest["shard_size"] = 0
    manifest_path.write_text(json.dumps(manifest))
    return manifest_path


@pytest.mark.parametrize("sequence", [False, True], ids=["vectors", "frames"])
@pytest.mark.parametrize("kind", ["fewer rows", "truncated", "deleted", "sequence flag flipped",
                                  "manifest not an object", "shard size 0"])
def test_a_corrupt_cache_is_never_served(tmp_path, kind, sequence, caplog):
    extractor = Counting(sequence)
    args = {"dataset": "toy", "fingerprint": "f" * 64, "root": tmp_path, "shard_size": 4, "progress": False}
    whole = [np.array(x) for x in cache.extract_cached(extractor, UTTERANCES, **args).features]
    folder = cache.feature_dir(tmp_path, "toy", "f" * 64, extractor)
    bad = corrupt(folder, kind)

    with pytest.raises(cache.CacheError) as e:  # read alone: one line naming the file
        cache.load_features(folder)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)

    extractor.calls.clear()
    served = cache.extract_cached(extractor, UTTERANCES, **args)  # through the cache: repaired
    assert all(np.array_equal(a, b) for a, b in zip(whole, served.features)) and len(served.features) == 10
    shard_damaged = kind in ("fewer rows", "truncated", "deleted")
    assert extractor.calls == ([["4", "5", "6", "7"]] if shard_damaged else [])  # that shard alone
    assert any(str(bad) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert cache.load_features(folder) is not None


def test_a_cache_folder_being_written_is_waited_for(tmp_path):
    extractor = Counting(False)
    folder = cache.feature_dir(tmp_path, "toy", "f" * 64, extractor)
    holder = spawn_holder(folder)
    try:
        import threading

        threading.Timer(1.0, holder.kill).start()
        started = time.time()
        served = cache.extract_cached(extractor, UTTERANCES, dataset="toy", fingerprint="f" * 64, root=tmp_path,
                                      shard_size=4, progress=False)
        assert time.time() - started >= 0.9 and len(served.features) == 10
    finally:
        holder.kill()
        holder.wait()
