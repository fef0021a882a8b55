"""A read on the web process's async pool: the rows of one statement, as dicts."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


async def rows(pool: AsyncConnectionPool, query: str, params: tuple | dict[str, Any] = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return await cur.fetchall()
