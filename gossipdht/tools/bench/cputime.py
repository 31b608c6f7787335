"""CPU time: whether the machine is quiet enough to measure on, and what a process
used (a child run to its end, or one still running)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

#: Each measurement starts once the machine used under this share of its CPU over
#: ``QUIET_SAMPLE_SECONDS`` (or after ``QUIET_SECONDS``): etcd or a node still busy after
#: the row before would slow the next row, whichever it is.
QUIET_SHARE = 0.10
QUIET_SAMPLE_SECONDS = 0.5
QUIET_SECONDS = 60.0


def cpu_times(stat: str) -> tuple[int, int]:
    """Busy and total time of all CPUs, in ticks, from the text of ``/proc/stat``."""
    ticks = [int(field) for field in stat.split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
    total = sum(ticks[:8])  # guest time is counted in user time already
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time that was busy between two ``cpu_times``."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def wait_until_quiet(sample_seconds: float = QUIET_SAMPLE_SECONDS, timeout: float = QUIET_SECONDS,
                     read_stat: Callable[[], str] = lambda: Path("/proc/stat").read_text(),
                     sleep: Callable[[float], None] = time.sleep) -> bool:
    """Until the machine used under ``QUIET_SHARE`` of its CPU over ``sample_seconds``;
    False when it did not within ``timeout`` (or cannot tell: no ``/proc/stat``)."""
    waited = 0.0
    while waited < timeout:
        try:
            before = cpu_times(read_stat())
            sleep(sample_seconds)
            after = cpu_times(read_stat())
        except OSError:
            return False
        waited += sample_seconds
        if busy_share(before, after) < QUIET_SHARE:
            return True
    return False


@dataclass(frozen=True)
class Finished:
    """A child process run to its end: its exit status, its output, the CPU time it used
    (user + system) and the time it ran."""

    status: int
    stdout: str
    stderr: str
    cpu_seconds: float
    seconds: float

    @property
    def cpu_share(self) -> float:
        """Its CPU time over the time it ran: 1.0 is one core kept busy."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    def last_line(self) -> str:
        """The last line of stderr, or else of stdout: what went wrong, usually."""
        tail = (self.stderr or self.stdout).strip().splitlines()
        return tail[-1] if tail else "no output"


def run_timed(command: Sequence[str], timeout: float, env: Optional[dict[str, str]] = None) -> Finished:
    """Run ``command`` to its end, reaped with ``os.wait4`` for the CPU time it used;
    ``subprocess.TimeoutExpired`` once it ran over ``timeout`` (it is killed)."""
    started = time.monotonic()
    timed_out = threading.Event()
    # stderr to a file: two pipes read one after the other could fill and block the child.
    with tempfile.TemporaryFile("w+") as errors, subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True, env=env) as process:
        killer = threading.Timer(timeout, lambda: (timed_out.set(), process.kill()))
        killer.start()
        try:
            stdout = process.stdout.read()
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            raise
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        ran = time.monotonic() - started
        errors.seek(0)
        stderr = errors.read()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(list(command), timeout)
    return Finished(process.returncode, stdout, stderr, usage.ru_utime + usage.ru_stime, ran)


def cpu_seconds(pid: int) -> float:
    """User and system time of a process so far, all its threads (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
