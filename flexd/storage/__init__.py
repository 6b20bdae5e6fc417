"""Storage: the schema with its migrations, and one store on SQLite or PostgreSQL."""

from flexd.storage.rows import DispatchRow, RatedRow, ReadingRow, parse_ts, ts
from flexd.storage.store import BumpRecord, Storage, is_url

__all__ = ["BumpRecord", "DispatchRow", "RatedRow", "ReadingRow", "Storage", "is_url", "parse_ts",
           "ts"]
