"""Grids and studies through a real Slurm scheduler, a study in a real PostgreSQL.

Start the one-node cluster and the database first (root, Debian or Ubuntu)::

    bash scripts/slurm_cluster.sh start
    python -m pytest -m slurm tests/test_slurm.py

What is checked, each command run as a user runs it (``python -m merbench ... --launcher slurm
--partition debug`` in a process of its own), while the test acts as a cluster's other users
and admins do:

- one job is killed with ``scancel`` mid-training: the command does not wait for it forever
  (there is no accounting database, so ``sacct`` fails and the job states come from
  ``squeue``), the other cells finish, the killed cell is listed and the command exits 1; the
  next run of the command trains that cell alone, resuming it from its checkpoint;
- another job is requeued with ``scontrol requeue`` mid-training: Slurm kills it and starts the
  same job again, which resumes from the run folder's checkpoint and ends with numbers
  bit-identical to an uninterrupted run of the same recipe and seed;
- no cell is trained twice: every finished folder's ``result.json`` is written once, and only
  the killed and requeued runs log a resume;
- the same for ``merbench tune --launcher slurm --storage postgresql://...``: its trials report
  to a study in PostgreSQL, and the disrupted study ends with the settings and scores of the
  same study run without Slurm, in SQLite.

The cluster's jobs checkpoint after every epoch (``MERBENCH_CHECKPOINT_EVERY_S=0``) so that a
kill always lands after a checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from merbench import run_folder
from merbench.grid.manifest import RUNNING

from conftest import needs
from helpers import write_recipe

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / ".cluster" / "env"  # written by scripts/slurm_cluster.sh start
KEYS = ("MERBENCH_TEST_SLURM", "MERBENCH_TEST_POSTGRES_URL", "SLURM_CONF")
PARTITION = "debug"
DEADLINE_S = 600.0  # a command that runs longer has hung (a job waited for forever)


def cluster_env() -> dict[str, str]:
    """The cluster's variables: from the environment, else from the script's env file."""
    found = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            if key in KEYS:
                found[key] = value
    found.update({k: os.environ[k] for k in KEYS if os.environ.get(k)})
    return found


CLUSTER = cluster_env()


def _cluster_up() -> bool:
    if CLUSTER.get("MERBENCH_TEST_SLURM") != "1" or shutil.which("sbatch") is None:
        return False
    try:
        states = subprocess.run(["sinfo", "--noheader", f"--partition={PARTITION}", "--format=%T"],
                                env={**os.environ, **CLUSTER}, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return states.returncode == 0 and any(s.startswith(("idle", "mixed", "alloc")) for s in states.stdout.split())


pytestmark = [pytest.mark.slurm,
              needs(_cluster_up(), "no Slurm cluster with a partition 'debug' is up "
                                   "(bash scripts/slurm_cluster.sh start)")]

DATA = {"name": "synthetic", "n_dialogues": 40, "n_utterances": 4000, "audio_dim": 6, "text_dim": 8,
        "vision_dim": 5, "seed": 0}
# 0.1 s each on one thread of an idle 2-core machine (0.4 s under load): a run trains for 15 s
# or more, well past the 5-10 s in which a cancelled job trains on before Slurm's SIGKILL, so the
# kill lands mid-training however idle the machine (24 epochs, 3 s idle, let the job finish first).
EPOCHS = 150


def recipes(root: Path) -> Path:
    write_recipe(root / "synthetic" / "mlp_tiny.yaml", {
        "dataset": dict(DATA), "model": {"name": "mlp_tiny"},
        "train": {"max_epochs": EPOCHS, "patience": EPOCHS, "batch_size": 16}})
    write_recipe(root / "synthetic" / "mlp.yaml", {
        "dataset": dict(DATA), "model": {"name": "mlp", "hidden": 8},
        "train": {"max_epochs": EPOCHS, "patience": EPOCHS, "batch_size": 16, "lr": 0.01}})
    (root / "spaces").mkdir(parents=True, exist_ok=True)
    (root / "spaces" / "mlp.yaml").write_text("train.lr: {low: 1.0e-3, high: 3.0e-2, log: true}\n"
                                              "model.hidden: [8, 16]\n")
    return root


def environment() -> dict[str, str]:
    return {**os.environ, **CLUSTER, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "MERBENCH_CHECKPOINT_EVERY_S": "0"}


def merbench(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "merbench", *map(str, args)], env=environment(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def scheduler(*args: str) -> None:
    subprocess.run(list(args), env=environment(), check=True, capture_output=True, timeout=60)


def disrupt(proc: subprocess.Popen, folder: Path, actions: list[str]) -> tuple[dict[str, dict], str, str]:
    """While ``proc`` runs, act on its Slurm jobs one by one, each once its run folder holds a
    checkpoint and no result: ``scancel`` (killed) or ``requeue`` (``scontrol requeue``: started
    again). Returns {action: {run, job, epochs written when it acted}} and the command's output."""
    done: dict[str, dict] = {}
    touched: set[str] = set()
    started = time.monotonic()
    while proc.poll() is None and len(done) < len(actions):
        if time.monotonic() - started > DEADLINE_S:
            proc.kill()
            raise AssertionError("no job to act on: the command hung or its runs end too soon")
        for run_dir in sorted(p for p in folder.glob("*") if p.is_dir()):
            try:
                job = json.loads((run_dir / RUNNING).read_text()).get("slurm_job")
            except (OSError, json.JSONDecodeError):
                continue
            if not job or job in touched or not (run_dir / run_folder.LAST).exists() \
                    or (run_dir / run_folder.RESULT).exists():
                continue
            action = actions[len(done)]
            if action == "scancel":
                # As a user cancels a job: Slurm sends SIGTERM, on which the run ends its epoch,
                # writes last.pt and stops (or, if Slurm's SIGKILL KillWait seconds later comes
                # first, the epochs since its last checkpoint are lost).
                epochs = epochs_written(run_dir)
                scheduler("scancel", job)
            else:
                # Suspended first, the job stops at once and the requeue kills it where the test
                # saw it. Slurm holds a job requeued from suspension: released, it starts again
                # under the same id.
                scheduler("scontrol", "suspend", job)
                epochs = epochs_written(run_dir)
                scheduler("scontrol", "requeue", job)
                scheduler("scontrol", "release", job)
            done[action] = {"run": run_dir.name, "job": job, "epochs": epochs}
            touched.add(job)
            break
        time.sleep(0.05)
    try:
        out, err = proc.communicate(timeout=max(1.0, DEADLINE_S - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        jobs = [p.name.split("_")[0] for p in (folder / "slurm_logs").glob("*_submitted.pkl")]
        subprocess.run(["scancel", *jobs], env=environment(), capture_output=True, timeout=60)  # leave none behind
        raise AssertionError("the command hung after the jobs were disrupted")
    assert len(done) == len(actions), (done, out, err)
    return done, out, err


def epochs_written(run_dir: Path) -> int:
    return len((run_dir / run_folder.METRICS_CSV).read_text().splitlines()) - 1


def numbers(run_dir: Path) -> dict:
    """What a run computed: every metric, the selection, each epoch's scores (without its
    throughput and clock), and the best checkpoint's weights."""
    result = json.loads((run_dir / run_folder.RESULT).read_text())
    history = [{k: v for k, v in row.items() if k != "utt_per_s"} for row in result["training"]["history"]]
    weights = torch.load(run_dir / run_folder.BEST, map_location="cpu", weights_only=False)
    return {"metrics": result["metrics"], "selection": result["selection"], "history": history,
            "weights": weights}


def same_weights(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_weights(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_weights, a, b))
    return a == b


def assert_identical(run_dir: Path, reference: Path) -> None:
    got, want = numbers(run_dir), numbers(reference)
    assert {k: got[k] for k in ("metrics", "selection", "history")} == \
           {k: want[k] for k in ("metrics", "selection", "history")}
    assert same_weights(got["weights"], want["weights"])


def resumes(run_dir: Path) -> list[str]:
    return [line for line in (run_dir / run_folder.LOG).read_text().splitlines() if "resumed after epoch" in line]


def mtimes(folder: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in folder.glob(f"*/{run_folder.RESULT}")}


def run_again(args, folder: Path, cancelled: Path, finished: dict[str, int], summary: str) -> None:
    """The command run a second time: it succeeds, says ``summary``, trains the cancelled run
    alone (resuming it once from its checkpoint) and leaves every finished result untouched."""
    again = merbench(*args)
    stdout, stderr = again.communicate(timeout=DEADLINE_S)
    assert again.returncode == 0, stderr
    assert summary in stderr, stderr
    assert {k: v for k, v in mtimes(folder).items() if k != cancelled.name} == finished  # nothing trained twice
    assert len(resumes(cancelled)) == 1


def cancelled_line(text: str) -> bool:
    """The line of a cancelled job: it stopped on Slurm's SIGTERM with its checkpoint written
    (merbench's Terminated, raised in the job), or Slurm's state if the scheduler said so
    before the job's own result was read."""
    return ("stopped by SIGTERM after epoch" in text and "Terminated" in text) \
        or "has not produced any output (state: CANCELLED" in text


def resumed_after(run_dir: Path) -> int:
    """The epoch the run resumed after. A requeued job stopped mid-epoch N + 1 (N written when
    the test acted) ends that epoch on the SIGTERM and checkpoints it; stopped between
    metrics.csv's row N and its checkpoint, it checkpoints N."""
    (line,) = resumes(run_dir)
    return int(line.rsplit(" ", 1)[1])


def test_a_grid_on_slurm_survives_scancel_and_requeue(tmp_path):
    root = recipes(tmp_path / "recipes")
    out = tmp_path / "grids"
    args = ("compare", "--models", "mlp_tiny", "--seeds", "3", "--dataset", "synthetic", "--recipes", root,
            "--out", out, "--launcher", "slurm", "--partition", PARTITION, "--format", "csv")
    grid = out / "compare-synthetic"
    acted, stdout, stderr = disrupt(merbench(*args), grid, ["scancel", "requeue"])
    cancelled, requeued = (grid / acted["scancel"]["run"], grid / acted["requeue"]["run"])

    # The command ended (the cancelled job was seen to end without a result): the others
    # finished, the cancelled cell is listed, exit 1.
    assert "FAILED" in stderr and cancelled.name in stderr, stderr
    assert cancelled_line((grid / cancelled.name / "error.txt").read_text())
    assert "3 cells, 3 trained, 0 reused, 1 failed" in stderr, stderr
    assert "Bypassing sacct error" not in stderr  # job states came from squeue
    finished = mtimes(grid)
    assert cancelled.name not in finished and len(finished) == 2
    # The requeued job ran again under the same job id and resumed from its checkpoint.
    assert len(resumes(requeued)) == 1 and requeued.name in finished
    log = (grid / "slurm_logs" / f"{acted['requeue']['job']}_0_log.out")
    assert log.exists()

    # The next run of the command trains the cancelled cell alone, from its checkpoint.
    run_again(args, grid, cancelled, finished, "3 cells, 1 trained, 2 reused, 0 failed")
    assert sum(len(resumes(p)) for p in grid.iterdir() if p.is_dir() and p.name != "slurm_logs") == 2

    # The requeued run ends bit-identical to an uninterrupted run of the same recipe and seed.
    from merbench.train import train

    recipe = json.loads((requeued / run_folder.RESULT).read_text())["recipe"]
    reference = train(recipe, tmp_path / "reference", progress=False, name=requeued.name)
    assert not resumes(reference)
    assert_identical(requeued, reference)
    assert resumed_after(requeued) in (acted["requeue"]["epochs"], acted["requeue"]["epochs"] + 1)  # none lost


@pytest.fixture
def postgres_database():
    """A fresh database on the script's PostgreSQL server, dropped after the test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(CLUSTER["MERBENCH_TEST_POSTGRES_URL"])
    name = f"merbench_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        from merbench.tuning.storage import _storages

        for key in [k for k in _storages if name in k[0]]:
            _storages.pop(key).engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@needs(CLUSTER.get("MERBENCH_TEST_POSTGRES_URL") and importlib.util.find_spec("psycopg") is not None,
       "no PostgreSQL for the study: MERBENCH_TEST_POSTGRES_URL (bash scripts/slurm_cluster.sh start) and "
       "psycopg (pip install 'merbench[postgres]')")
def test_a_study_on_slurm_in_postgresql_survives_scancel_and_requeue(tmp_path, postgres_database):
    pytest.importorskip("optuna")
    import optuna

    root = recipes(tmp_path / "recipes")
    out = tmp_path / "grids"
    args = ("tune", "mlp", "--dataset", "synthetic", "--trials", "2", "--jobs", "2", "--recipes", root, "--out", out,
            "--sampler", "random", "--pruner", "none", "--seeds-final", "0", "--launcher", "slurm",
            "--partition", PARTITION, "--storage", postgres_database)
    folder = out / "tune-mlp-synthetic"
    acted, stdout, stderr = disrupt(merbench(*args), folder, ["requeue", "scancel"])
    cancelled, requeued = folder / acted["scancel"]["run"], folder / acted["requeue"]["run"]

    # The study is in PostgreSQL, not in the tune folder; the cancelled trial is left running
    # there (resumed by the next command), the others are complete.
    assert not (folder / "study.db").exists()
    manifest = json.loads((folder / "tune.json").read_text())
    assert manifest["study"]["storage"] == postgres_database
    study = optuna.load_study(study_name=manifest["study"]["name"], storage=postgres_database)
    states = {t.user_attrs["run"]: t.state.name for t in study.trials}
    assert states[cancelled.name] == "RUNNING" and states[requeued.name] == "COMPLETE", (states, stderr)
    assert cancelled_line(stderr), stderr
    assert len(resumes(requeued)) == 1
    finished = mtimes(folder)

    run_again(args, folder, cancelled, finished, "2 trials (1 done, 1 to run, 1 of them resumed)")
    study = optuna.load_study(study_name=manifest["study"]["name"], storage=postgres_database)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    # every trial reported each of its epochs once to the shared study, the resumed ones too
    assert all(sorted(t.intermediate_values) == list(range(1, EPOCHS + 1)) for t in study.trials)

    # The same study without Slurm, in SQLite: the same settings, the same scores, the same runs.
    from merbench import api

    whole = api.tune("mlp", "synthetic", 2, recipes=root, out=tmp_path / "local", sampler="random", pruner="none",
                     seeds_final=0)
    by_number = {t.number: t for t in whole.trials}
    for t in study.trials:
        assert (t.params, t.value) == (by_number[t.number].params, by_number[t.number].value)
    for run_dir in (requeued, cancelled):
        assert_identical(run_dir, whole.tune_dir / run_dir.name)
