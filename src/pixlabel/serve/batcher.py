"""Dynamic micro-batching: concurrent requests are merged into one model call.

Requests wait in an asyncio queue; the batching task takes the first, then waits at most ``max_wait_ms``
for more until ``max_batch`` images are gathered, and runs the model in one worker thread so the event
loop keeps accepting uploads meanwhile. While a batch runs, the next one fills up in the queue, so under
load batches grow by themselves and an idle server adds at most ``max_wait_ms`` of latency.
``stop()`` drains: everything queued before it is still answered.

Example::

    batcher = MicroBatcher(model.predict_proba, max_batch=32, max_wait_ms=2)
    await batcher.start()
    probs = await batcher.submit([image])     # (1, K)
    await batcher.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """The server is shutting down and takes no new work."""


@dataclass
class _Job:
    images: Sequence[Image.Image]
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    def __init__(self, predict: Callable[[Sequence[Image.Image]], np.ndarray], *, max_batch: int = 32,
                 max_wait_ms: float = 2.0, on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closed

    async def start(self) -> None:
        # one inference thread: the runtime already uses every core inside a call
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixlabel-infer")
        self._closed = False
        self._task = asyncio.create_task(self._loop(), name="pixlabel-batcher")

    async def submit(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities ``(len(images), K)`` for these images, computed in a shared batch."""
        if not self.running:
            raise BatcherClosed("the model server is shutting down")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(images, future))
        return await future

    async def stop(self) -> None:
        """Answer every queued request, then stop the batching task and the worker thread."""
        if self._task is None:
            return
        self._closed = True
        await self._queue.put(None)  # the sentinel goes behind every queued job
        await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` plus whatever arrives within ``max_wait`` up to ``max_batch`` images; True at the sentinel."""
        jobs, n = [first], len(first.images)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()  # already waiting: no timer needed
            except asyncio.QueueEmpty:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
            if job is None:
                return jobs, True
            if n + len(job.images) > self.max_batch:
                await self._run(jobs)  # would overflow: run what we have, start the next batch with it
                jobs, n = [job], len(job.images)
                deadline = loop.time() + self.max_wait
                continue
            jobs.append(job)
            n += len(job.images)
        return jobs, False

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            jobs, done = await self._gather(first)
            await self._run(jobs)
            if done:
                return

    async def _run(self, jobs: list[_Job]) -> None:
        images = [im for job in jobs for im in job.images]
        loop = asyncio.get_running_loop()
        try:
            probs = await loop.run_in_executor(self._executor, self.predict, images)
        except Exception as exc:  # a model failure answers every waiting request instead of hanging them
            log.exception("inference failed for a batch of %d images", len(images))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(images))
        start = 0
        for job in jobs:
            if not job.future.done():  # a client that went away leaves a cancelled future
                job.future.set_result(probs[start:start + len(job.images)])
            start += len(job.images)
