"""The bounded pool the network runs in: admission (a fixed number of slots), an executor, and
a replacement executor when a worker process dies.

A request takes a slot before its upload is read (no slot: 503 at once, nothing read or run)
and gives it back when its job has finished in the worker, not when the request gives up: a
request that timed out leaves its job running, and that job still counts, so a flood of
timeouts cannot pile up work behind the limit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

log = logging.getLogger(__name__)


class Busy(Exception):
    """Every slot is taken; retry_after: seconds after which one is likely free."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy: retry after {retry_after} s")
        self.retry_after = retry_after


class WorkerDied(Exception):
    """The worker process running a job died (the pool has been replaced)."""


class Slot:
    """One admitted job. release() frees it unless a running job holds it (hand_over): then
    the job frees it when it finishes."""

    def __init__(self, jobs: "JobQueue"):
        self._jobs, self._held = jobs, True
        self._job: Future | None = None
        self._lock = threading.Lock()

    def _free(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._jobs._free()

    def hand_over(self, future: Future) -> None:
        self._job = future
        future.add_done_callback(lambda _: self._free())

    def release(self) -> None:
        if self._job is None:
            self._free()


class JobQueue:
    """At most `slots` jobs admitted at once (running in the executor's workers or waiting for
    one); make_executor() builds the executor, again after a worker process died."""

    def __init__(self, make_executor: Callable[[], Executor], slots: int, workers: int):
        self.make_executor, self.slots, self.workers = make_executor, slots, workers
        self.executor = make_executor()
        self.taken = 0
        self.job_s = 1.0  # running mean of a job's time, for Retry-After
        self._lock = threading.Lock()

    def admit(self, wait_s: float = 0.0) -> Slot:
        """A slot, or Busy when none frees within wait_s (0: do not wait). Blocking: streams,
        which wait, call it from a thread."""
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                if self.taken < self.slots:
                    self.taken += 1
                    return Slot(self)
            if time.monotonic() >= deadline:
                raise Busy(self.retry_after())
            time.sleep(0.02)

    def _free(self) -> None:
        with self._lock:
            self.taken -= 1

    def retry_after(self) -> int:
        """Seconds until the queue ahead has likely drained: waiting jobs x job time / workers."""
        return max(1, round(self.job_s * max(1, self.taken - self.workers) / self.workers))

    async def run(self, slot: Slot, fn: Callable, *args):
        """fn(*args) in a worker, in the admitted slot; its result, or its exception. Cancelling
        the caller (a timeout) cancels a job still waiting; a running one finishes unseen."""
        start, executor = time.monotonic(), self.executor
        try:
            future = executor.submit(fn, *args)
        except BrokenProcessPool:  # a worker died since the last job
            executor = self._replace_executor(executor)
            future = executor.submit(fn, *args)
        slot.hand_over(future)
        try:
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace_executor(executor)
            raise WorkerDied("a worker process died while transcribing (restarted); retry the request") from None
        self.job_s = 0.9 * self.job_s + 0.1 * (time.monotonic() - start)
        return result

    def _replace_executor(self, broken: Executor) -> Executor:
        """A new executor in place of the broken one (unless another job replaced it already)."""
        with self._lock:
            if self.executor is broken:
                log.error("a worker process died: starting a new pool")
                self.executor = self.make_executor()
            executor = self.executor
        broken.shutdown(wait=False, cancel_futures=True)
        return executor

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
