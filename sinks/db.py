"""The PostgreSQL connection pool and the chat store's schema."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources

import asyncpg

from streams.settings import Settings

logger = logging.getLogger(__name__)

#: Advisory lock key that serialises schema changes between processes that
#: start at the same time.
_SCHEMA_LOCK_KEY = 0x4C554E41

#: Errors after which the same write is tried again: the server went away or
#: refused connections, not a bad statement.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
)


def chat_store_sql() -> str:
    return resources.files("schemas").joinpath("chat_store.sql").read_text(encoding="utf-8")


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """Open a pool whose connections use the configured schema, creating it and
    its tables first when they do not exist."""
    schema = settings.database_schema
    dsn = settings.database_url.get_secret_value()
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK_KEY)
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await connection.execute(f'SET LOCAL search_path TO "{schema}"')
            await connection.execute(chat_store_sql())
    finally:
        await connection.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=settings.database_pool_max,
        # A session left idle inside a transaction, as after a worker is
        # killed mid-write, is ended by the server so that its locks do not
        # block the worker that takes over.
        server_settings={"search_path": schema, "idle_in_transaction_session_timeout": "20s"},
        # The default reset sends "RESET ALL" and friends on every release, a
        # round trip per message; these connections keep no session state.
        reset=_keep_session,
    )
    assert pool is not None
    logger.info("database ready schema=%s", schema)
    return pool


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection to the pool without a reset query."""


class LazyPool:
    """A pool opened on first use, so that importing an agent opens nothing."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await create_pool(self._settings)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
