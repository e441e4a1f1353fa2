"""The worker's one database pool, opened when the worker starts."""

from __future__ import annotations

import asyncio
import io
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
    for task in asyncio.all_tasks():
        buffer = io.StringIO()
        task.print_stack(limit=12, file=buffer)
        logger.warning("task %s:\n%s", task.get_name(), buffer.getvalue())
