"""Deadlines for the receive path without a timer per request.

``asyncio.timeout`` arms and cancels a loop timer for every use (about 10 µs each under
uvloop, twice per delivery: the body read and the commit wait). :class:`Deadlines` keeps
the tasks being watched in a dict and checks them every :attr:`Deadlines.tick` seconds
with one timer for all of them, so watching a task costs a dict insert and a pop. An
overdue task is cancelled, and :meth:`Deadlines.done` tells the task that the
cancellation was its deadline (and takes it back with ``uncancel``), so the caller turns
it into its own error, as ``asyncio.timeout`` turns it into ``TimeoutError``. A deadline
fires up to one tick late.

Use::

    task = deadlines.watch(seconds)
    try:
        await something()
    except asyncio.CancelledError:
        if deadlines.done(task):
            raise TooSlow() from None
        raise
    deadlines.done(task)
"""

from __future__ import annotations

import asyncio
from typing import Any

TICK = 0.05


class Deadlines:
    """Cancels watched tasks once their deadline has passed (checked every ``tick``)."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._watched: dict[asyncio.Task[Any], float] = {}
        self._fired: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, seconds: float) -> asyncio.Task[Any]:
        """Cancel the current task if it is still watched ``seconds`` from now."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadlines.watch needs to run in a task")
        if self._loop is not loop:  # a new loop (tests): what the old one watched is gone
            self._watched = {}
            self._fired.clear()
            self._timer = None
            self._loop = loop
        self._watched[task] = loop.time() + seconds
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check)
        return task

    def done(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching ``task``; ``True`` if its deadline cancelled it (then uncancelled)."""
        self._watched.pop(task, None)
        if task in self._fired:
            self._fired.discard(task)
            task.uncancel()
            return True
        return False

    def _check(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        overdue = [task for task, when in self._watched.items() if when <= now]
        for task in overdue:
            del self._watched[task]
            if not task.done():
                self._fired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.tick, self._check) if self._watched else None
