"""Slurm job states for the grid runners: submitit's, with ``squeue`` where ``sacct`` cannot answer.

submitit knows a Slurm job has ended when its result file appears or when ``sacct`` reports
an end state. ``sacct`` reads Slurm's accounting database (slurmdbd), which many small
clusters do not run: there it fails ("Slurm accounting storage is disabled"), submitit warns
at every poll, and a job that ends without a result (``scancel``, a node failure, a kill by
the out-of-memory killer) stays "UNKNOWN", which submitit counts as not done: the grid would
wait for it forever.

``SlurmJob`` here is submitit's with one change: its watcher asks ``sacct`` once, and if
accounting is disabled (or ``sacct`` is missing) reads states from ``squeue --states=all``
from then on. The controller keeps an ended job there for ``MinJobAge`` seconds (300 by
default) with its end state (CANCELLED, FAILED, TIMEOUT, COMPLETED ...); a job it no longer
lists at all has ended longer ago than that. A requeued job (``scontrol requeue``, a
preemption) is listed as pending, then running again: it is not done, and the grid waits for
the same job id to finish.
"""

from __future__ import annotations

import subprocess
import time

from submitit.core import logger
from submitit.slurm.slurm import SlurmInfoWatcher
from submitit.slurm.slurm import SlurmJob as _SubmititSlurmJob

GONE = "ENDED"  # the state of a job squeue no longer lists (not one submitit counts as running)
FIELDS = "JobID|State|NodeList"  # what submitit asks sacct for, in its --parsable2 form


class SqueueWatcher(SlurmInfoWatcher):
    """submitit's Slurm watcher, falling back to squeue when sacct cannot answer."""

    def __init__(self, delay_s: int = 60) -> None:
        super().__init__(delay_s)
        self.use_squeue = False  # set once sacct has said accounting is disabled

    def update(self) -> None:
        """submitit's update (one call for every registered job not finished), sacct or squeue."""
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        output = self._squeue() if self.use_squeue else self._sacct(command)
        if output is not None:
            self._info_dict.update(self.read_info(output))
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _sacct(self, command: list[str]) -> str | None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:  # no sacct on this machine: squeue answers
            self.use_squeue = True
            return self._squeue()
        except subprocess.TimeoutExpired:
            return None
        if done.returncode == 0:
            return done.stdout
        if "accounting storage is disabled" in done.stderr.lower():
            self.use_squeue = True
            return self._squeue()
        logger.get_logger().warning(f"sacct failed ({done.stderr.strip()}): status may be inaccurate")
        return None

    def _squeue(self) -> str | None:
        """The jobs' states in sacct's --parsable2 form; ``GONE`` for a job squeue does not list."""
        to_check = sorted({x.split("_")[0] for x in self._registered - self._finished})
        try:
            done = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%N",
                                   f"--jobs={','.join(to_check)}"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0 and "invalid job id" not in done.stderr.lower():
            logger.get_logger().warning(f"squeue failed ({done.stderr.strip()}): status may be inaccurate")
            return None  # the controller did not answer: nothing is known, nothing is gone
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        listed = {line.split("|", 1)[0].split("_")[0] for line in lines}
        lines += [f"{job}|{GONE}|" for job in to_check if job not in listed]
        return "\n".join([FIELDS, *lines]) + "\n"


class SlurmJob(_SubmititSlurmJob):
    watcher = SqueueWatcher(delay_s=600)  # submitit's delay: sacct / squeue at most every 10 min late on


def use_squeue_fallback(executor) -> None:
    """Make a submitit AutoExecutor on Slurm return ``SlurmJob``s of this module."""
    inner = getattr(executor, "_executor", executor)  # AutoExecutor wraps the SlurmExecutor
    if isinstance(inner.job_class, type) and issubclass(inner.job_class, _SubmititSlurmJob):
        inner.job_class = SlurmJob
