"""PostgreSQL storage: pool, migrations, the batched call-log writer and read helpers."""

from callcenter.store.calls import (
    Batch,
    get_call,
    load_open_calls,
    recent_calls,
    save_batch,
    write_batch,
)
from callcenter.store.db import create_pool, db_ok
from callcenter.store.migrations import available_migrations, migrate
from callcenter.store.serialize import call_from_json, call_to_json
from callcenter.store.writer import CallWriter

__all__ = [
    "Batch",
    "CallWriter",
    "available_migrations",
    "call_from_json",
    "call_to_json",
    "create_pool",
    "db_ok",
    "get_call",
    "load_open_calls",
    "migrate",
    "recent_calls",
    "save_batch",
    "write_batch",
]
