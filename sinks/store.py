"""The worker's one database pool, opened when the worker starts."""

from __future__ import annotations

import logging

from sinks.db import LazyPool
from streams.app import app, settings

logger = logging.getLogger(__name__)

pool = LazyPool(settings)


@app.task
async def open_database() -> None:
    """Create the schema and open the pool at start-up, so a wrong database
    setting shows in the log at once rather than at the first message."""
    try:
        await pool.get()
    except Exception:
        logger.exception("database not ready at start-up; the sinks will retry on each write")
