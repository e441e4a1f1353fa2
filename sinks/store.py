"""The worker's one database pool, opened when the worker starts."""

from __future__ import annotations

import asyncio
import logging
import signal

from sinks.db import LazyPool
from streams.app import app, settings

logger = logging.getLogger(__name__)

pool = LazyPool(settings)


@app.task  # type: ignore[untyped-decorator]
async def open_database() -> None:
    """Create the schema and open the pool at start-up, so a wrong database
    setting shows in the log at once rather than at the first message."""
    try:
        await pool.get()
    except Exception:
        logger.exception("database not ready at start-up; the sinks will retry on each write")


@app.task  # type: ignore[untyped-decorator]
async def install_task_dump() -> None:
    """Log the stack of every asyncio task on SIGUSR1, to see where a stuck
    worker waits without stopping it."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)


def _dump_tasks() -> None:
    loops = [asyncio.get_running_loop()]
    # faust runs the Kafka consumer on an event loop of its own thread.
    consumer_thread = getattr(app.consumer, "_thread", None)
    thread_loop = getattr(consumer_thread, "thread_loop", None)
    if isinstance(thread_loop, asyncio.AbstractEventLoop):
        loops.append(thread_loop)
    for loop in loops:
        for task in asyncio.all_tasks(loop):
            logger.warning("task %s awaits:\n%s", task.get_name(), "\n".join(_await_chain(task.get_coro())))


def _await_chain(coro: object) -> list[str]:
    """Return ``file:line function`` for each coroutine or async generator
    that ``coro`` awaits, outermost first."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_running_coro", None)
        )
    return lines
