"""Process set-up for the real-time loop nodes (no ROS): middleware thread priorities and the
garbage collector.

Measured with ``bench/control_loop_loaded.py`` (controller + sim robot, SCHED_FIFO 10, a niced
trainer epoch and the other jobs of the shared 2-core machine): the long periods that remained
under SCHED_FIFO were periods in which the loop thread, inside the executor's wait, used no more
CPU than usual and did not wait on a run queue: it was blocked, consistent with a lock that a
normal-priority Fast DDS thread of the same process held while the busy machine kept it off the
CPU (priority inversion). Periods > 4 ms in the loaded phase: before, 28 in 60 s and 0-11 in
20-50 s diagnostic runs; with those threads under SCHED_FIFO too, 0 in 4 of 5 runs of 60 s (the
other run's 14 coincided with stalls of the sim robot's loop in another process: the machine). A collection of the young generations that still held
every start-up object took ~1 ms inside a tick; :func:`settle_garbage_collector` moves the
start-up objects out of the collector's way.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mdemorl_ros.loop_timing import DeadlineLoop, request_realtime_priority

MIDDLEWARE_THREAD_PREFIXES = ("dds.",)
"""Thread names of the middleware's own threads: Fast DDS (the default RMW) names its receive
(``dds.udp.*``, ``dds.shm.*``), event (``dds.ev.*``), shared-memory watchdog and asynchronous
writer threads ``dds.*``."""

SchedulerSetter = Callable[[int, int], None]
"""(thread id, SCHED_FIFO priority) -> None; raises OSError when refused."""


def middleware_priority(requested: int, loop_priority: int) -> int:
    """The middleware threads' SCHED_FIFO priority: ``requested``, or for -1 one below the
    loop's (0, normal scheduling, when the loop itself is not real-time)."""
    if requested < -1:
        raise ValueError(f"middleware_priority must be -1, 0 or 1..99, got {requested}")
    if requested != -1:
        return requested
    return max(1, loop_priority - 1) if loop_priority > 0 else 0


def _set_fifo(thread_id: int, priority: int) -> None:
    os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))


def promote_middleware_threads(
    priority: int,
    prefixes: tuple[str, ...] = MIDDLEWARE_THREAD_PREFIXES,
    task_dir: str = "/proc/self/task",
    set_scheduler: SchedulerSetter = _set_fifo,
) -> str:
    """Put this process's middleware threads (names starting with ``prefixes``) under SCHED_FIFO
    at ``priority`` (1..99); 0 leaves them alone. Returns a line for the log.

    The loop thread takes and waits on data through the middleware, whose threads hold the same
    locks; at normal priority such a thread can be preempted by any busy process while it holds
    one, and the real-time loop then waits with it for milliseconds. One priority below the loop
    keeps them from delaying the loop themselves. Call after the node has created its
    publishers and subscriptions (threads are looked up once); refusals are reported, not fatal.
    """
    if priority == 0:
        return "normal scheduling"
    if not 1 <= priority <= 99:
        raise ValueError(f"middleware priority must be in 1..99 (0 = off), got {priority}")
    promoted: list[str] = []
    refused: list[str] = []
    for entry in sorted(os.listdir(task_dir)):
        try:
            with open(os.path.join(task_dir, entry, "comm")) as comm:
                name = comm.read().strip()
        except OSError:
            continue  # the thread ended meanwhile
        if not name.startswith(prefixes):
            continue
        try:
            set_scheduler(int(entry), priority)
        except OSError:
            refused.append(name)
            continue
        promoted.append(name)
    line = f"SCHED_FIFO {priority} for {len(promoted)} ({', '.join(promoted)})"
    return line + (f"; refused for {', '.join(refused)}" if refused else "")


def prepare_loop_thread(loop_priority: int, requested_middleware_priority: int) -> list[str]:
    """Run first in a node's loop thread: SCHED_FIFO for it and (:func:`middleware_priority`)
    for the middleware threads, then :func:`settle_garbage_collector`. Returns log lines."""
    lines = [
        "loop thread: " + request_realtime_priority(loop_priority),
        "middleware threads: "
        + promote_middleware_threads(
            middleware_priority(requested_middleware_priority, loop_priority)
        ),
    ]
    settle_garbage_collector()
    return lines


def loop_statistics_record(
    loop: DeadlineLoop, gc_monitor: GcPauseMonitor | None = None
) -> dict[str, object]:
    """The loop's window statistics as JSON-able dict: summary, ``ticks``, ``reanchors``, the
    clock time of the window's first tick, the longest periods (where their time went) and, with
    a monitor, the garbage collections (their ``at_s`` on the window's time axis)."""
    statistics = loop.statistics
    summary = statistics.summary()
    first = statistics.first_tick or 0.0
    record: dict[str, object] = {
        **summary.as_dict(),
        "ticks": summary.ticks,
        "reanchors": loop.reanchors,
        "window_start_clock": first,
        "longest_periods": [asdict(p) for p in statistics.longest()],
    }
    if gc_monitor is not None:
        record["gc"] = gc_monitor.as_dict(origin=first)
    return record


def settle_garbage_collector() -> None:
    """Collect once, then freeze every surviving object (``gc.freeze``).

    Call when set-up is done: the young generations otherwise still hold the thousands of
    objects created at start-up, and the first automatic collection of generation 1 inside a
    tick has to traverse them all. Automatic collection stays on for what the loop allocates.
    """
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class GcPause:
    """One garbage collection: generation, start (clock seconds), duration (milliseconds) and
    the thread that triggered (and ran) it."""

    generation: int
    started: float
    duration_ms: float
    thread: str


class GcPauseMonitor:
    """Times the interpreter's garbage collections (``gc.callbacks``) while installed.

    Counts collections per generation and keeps the ``keep_longest`` longest, so a long loop
    period can be matched with a collection (same clock as ``DeadlineLoop``).
    """

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, keep_longest: int = 10
    ) -> None:
        if keep_longest < 0:
            raise ValueError(f"keep_longest must be >= 0, got {keep_longest}")
        self._clock = clock
        self.keep_longest = keep_longest
        self.counts = [0, 0, 0]
        self.longest: list[GcPause] = []
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        if self._started is None:
            return
        generation = int(info.get("generation", 0))
        self.counts[generation] += 1
        pause = GcPause(
            generation,
            self._started,
            1e3 * (self._clock() - self._started),
            threading.current_thread().name,
        )
        self._started = None
        self.longest.append(pause)
        self.longest.sort(key=lambda p: -p.duration_ms)
        del self.longest[self.keep_longest :]

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def as_dict(self, origin: float = 0.0) -> dict[str, object]:
        """Counts per generation and the longest pauses, their start as ``at_s`` seconds after
        ``origin`` (e.g. the first tick of the statistics window)."""
        longest = []
        for pause in self.longest:
            record = asdict(pause)
            record["at_s"] = record.pop("started") - origin
            longest.append(record)
        return {"counts": list(self.counts), "longest": longest}
