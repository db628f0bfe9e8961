"""Independent tasks run in forked worker processes, their results pickled back (``check --jobs``).

Fork, not spawn: a worker starts with the parent's imports and with its task's arguments (the
plan, the paths) as they are, so only the result crosses a pipe; the last task runs in the
parent itself. Each worker reports progress in its own slot of a shared array (no lock: one
writer per slot); the parent sums the slots while it waits. A task's exception comes back and
is raised in the parent as it was (a bad input is the same one-line error as without
workers); a worker that dies without answering (killed, out of memory) is named with its exit
status. Any failure stops the other workers, and the workers die with the parent.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import wait
from typing import Callable, Sequence, TypeVar

from auditor.errors import AuditorError

T = TypeVar("T")
Tick = Callable[[int], None]
Task = Callable[[Tick], T]

MAX_AUTO_JOBS = 8  # every worker reads the whole input: past this, reading again outweighs splitting the audit
_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """A worker failed in a way that is no user error: its traceback is in the message."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, and a cgroup v2 CPU quota when one is set
    (a container limited to 2 CPUs on a 64-CPU host gets 2)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            return cpus_under_quota(n, fh.read())
    except OSError:
        return max(1, n)


def cpus_under_quota(n: int, cpu_max: str) -> int:
    """``n`` CPUs under a cgroup v2 ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" for none)."""
    parts = cpu_max.split()
    if len(parts) >= 2 and parts[0] != "max":
        try:
            return max(1, min(n, int(parts[0]) // int(parts[1])))
        except (ValueError, ZeroDivisionError):
            pass
    return max(1, n)


def run(tasks: Sequence[Task], progress: Callable[[int], object] | None = None) -> list:
    """Each task but the last in its own forked process, the last in this one (its result
    needs no pickling, and this process would only wait), each with a ``tick(n)`` for
    progress; their results in task order."""
    ctx = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):  # a worker flushes them on exit: nothing buffered to repeat
        stream.flush()
    counts = ctx.RawArray("q", len(tasks))  # slot i: task i's ticks
    told = _Told(counts, progress)
    procs, conns = [], []
    try:
        for i, task in enumerate(tasks[:-1]):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(task, send, counts, i, os.getpid()), name=f"auditor-worker-{i}", daemon=True)
            p.start()
            send.close()
            procs.append(p)
            conns.append(recv)
        mine = tasks[-1](told.own)
        return [*_collect(procs, conns, len(tasks), told), mine]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
        for c in conns:
            c.close()


class _Told:
    """The progress told so far: every slot's ticks, summed when this process ticks or polls."""

    def __init__(self, counts, progress: Callable[[int], object] | None) -> None:
        self.counts, self.progress, self.told = counts, progress, 0

    def own(self, n: int) -> None:
        self.counts[len(self.counts) - 1] += n
        self.poll()

    def poll(self) -> None:
        if self.progress is not None:
            now = sum(self.counts)
            if now > self.told:
                self.progress(now - self.told)
                self.told = now


def _collect(procs, conns, n_tasks: int, told: _Told) -> list:
    results: list = [None] * len(procs)
    waiting = dict(zip(conns, range(len(procs))))
    while waiting:
        ready = wait(list(waiting), timeout=_POLL_S)
        told.poll()
        for conn in ready:
            i = waiting.pop(conn)
            try:
                data = conn.recv_bytes()
                status, value = pickle.loads(data)
                del data
            except EOFError:
                procs[i].join()
                raise WorkerError(f"audit worker {i + 1} of {n_tasks} ended without a result "
                                  f"(exit status {procs[i].exitcode}; killed, or out of memory?)") from None
            if status != "ok":
                raise value
            results[i] = value
    return results


def _child(task: Task, conn, counts, slot: int, parent: int) -> None:
    _end_with_parent(parent)

    def tick(n: int) -> None:
        counts[slot] += n

    try:
        out = ("ok", task(tick))
    except AuditorError as e:  # the tool's own one-line errors go back as they are
        out = ("error", e)
    except BaseException:  # noqa: BLE001 - anything else goes back with its traceback
        out = ("error", WorkerError(traceback.format_exc()))
    try:
        data = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a result that cannot be pickled
        data = pickle.dumps(("error", WorkerError(traceback.format_exc())))
    del out  # the result's objects go while its bytes are sent: the worker holds one copy, not two
    conn.send_bytes(data)
    conn.close()


def _end_with_parent(parent: int) -> None:
    """A parent killed outright (SIGTERM from CI, SIGKILL) runs no ``finally``: its workers
    would audit on for nobody. Linux's PR_SET_PDEATHSIG kills them with it."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the workers end when they find the pipe closed
        return
    if os.getppid() != parent:  # it died before the call above
        os._exit(1)
