"""Storage: the schema with its migrations, and the SQLite store."""

from flexd.storage.sqlite import DispatchRow, RatedRow, ReadingRow, Storage, parse_ts, ts

__all__ = ["DispatchRow", "RatedRow", "ReadingRow", "Storage", "parse_ts", "ts"]
