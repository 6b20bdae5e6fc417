"""The schema as numbered migrations, the same on SQLite and PostgreSQL: a database at version
n runs n+1 onwards, each in one transaction with its version row. A migration is never changed
once released (only the words the two engines spell differently are filled in per dialect); a
change is a new one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE device_states (
        device_id TEXT NOT NULL, measured_at TEXT NOT NULL, payload TEXT NOT NULL,
        PRIMARY KEY (device_id, measured_at));
    CREATE TABLE preferences (
        device_id TEXT PRIMARY KEY, payload TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE plans (
        id {serial}, site TEXT NOT NULL, created_at TEXT NOT NULL,
        reason TEXT NOT NULL, objective_p TEXT NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX plans_site ON plans (site, created_at);
    CREATE TABLE dispatches (
        id TEXT PRIMARY KEY, site TEXT NOT NULL, meter TEXT NOT NULL, device_id TEXT NOT NULL,
        start TEXT NOT NULL, "end" TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT 'home', kwh TEXT NOT NULL DEFAULT '0',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX dispatches_device ON dispatches (device_id, start);
    CREATE INDEX dispatches_meter ON dispatches (meter, start);
    CREATE TABLE readings (
        meter TEXT NOT NULL, start TEXT NOT NULL, register TEXT NOT NULL, kwh TEXT NOT NULL,
        source TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (meter, start, register));
    CREATE TABLE rated_slots (
        meter TEXT NOT NULL, start TEXT NOT NULL, register TEXT NOT NULL, version INTEGER NOT NULL,
        settlement_date TEXT NOT NULL, settlement_period INTEGER NOT NULL, kwh TEXT NOT NULL,
        band TEXT NOT NULL, unit_rate_p TEXT NOT NULL, cost_p TEXT NOT NULL,
        rated_at TEXT NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (meter, start, register, version));
    CREATE TABLE bump_requests (
        device_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, dispatch_id TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (device_id, idempotency_key));
    CREATE TABLE prices (
        tariff TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL, value_p TEXT NOT NULL,
        PRIMARY KEY (tariff, start));
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: device_states and prices were written and never read (prices live in the price book,
    # refetched at start-up; device state in memory with its age)
    """
    DROP TABLE IF EXISTS device_states;
    DROP TABLE IF EXISTS prices;
    """,
    # 3: an idempotency key answers every repeat with the first request's status and body, and
    # a repeat with another body is refused (the request's SHA-256 tells them apart)
    """
    ALTER TABLE bump_requests ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE bump_requests ADD COLUMN status INTEGER NOT NULL DEFAULT 202;
    ALTER TABLE bump_requests ADD COLUMN body TEXT NOT NULL DEFAULT '';
    CREATE INDEX IF NOT EXISTS readings_meter_start ON readings (meter, start);
    """,
    # 4: bills (the bill.json document) and the slot lines each bill charged, which are the
    # "billed" lines of any later re-bill of those slots
    """
    CREATE TABLE bills (
        id {serial}, meter TEXT NOT NULL, period_from TEXT NOT NULL, period_to TEXT NOT NULL,
        bill_date TEXT NOT NULL, created_at TEXT NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX bills_meter ON bills (meter, id);
    CREATE TABLE billed_slots (
        bill_id BIGINT NOT NULL, meter TEXT NOT NULL, start TEXT NOT NULL,
        register TEXT NOT NULL, settlement_date TEXT NOT NULL, settlement_period INTEGER NOT NULL,
        kwh TEXT NOT NULL, band TEXT NOT NULL, unit_rate_p TEXT NOT NULL, cost_p TEXT NOT NULL,
        PRIMARY KEY (meter, start, register, bill_id));
    """,
    # 5: the fleet (PostgreSQL): sites as data with their owner and epoch; the instances with
    # their heartbeats, which are the leases (one row written per instance per renewal, however
    # many sites it holds); every device command with the epoch it was sent under; and
    # fleet_leases, each site's owner and when its lease runs out. Instants are the database's
    # own clock (timestamptz), never an instance's. fleet_catalogue's one row says when any
    # site was added or changed, so an instance never scans the sites to find out.
    """
    CREATE TABLE fleet_sites (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, meter TEXT NOT NULL, doc TEXT NOT NULL,
        owner TEXT, epoch BIGINT NOT NULL DEFAULT 0, imported_at {instant} NOT NULL,
        version BIGINT NOT NULL DEFAULT 1);
    CREATE INDEX fleet_sites_owner ON fleet_sites (owner);
    CREATE TABLE fleet_instances (
        id TEXT PRIMARY KEY, started_at {instant} NOT NULL, heartbeat_at {instant} NOT NULL,
        lease_seconds DOUBLE PRECISION NOT NULL, sites_owned INTEGER NOT NULL DEFAULT 0,
        stopped_at {instant});
    CREATE TABLE fleet_commands (
        id {serial}, site TEXT NOT NULL, epoch BIGINT NOT NULL, owner TEXT NOT NULL,
        device_id TEXT NOT NULL, command TEXT NOT NULL, sent_at {instant} NOT NULL,
        deadline {instant} NOT NULL, done_at {instant}, outcome TEXT);
    CREATE INDEX fleet_commands_device ON fleet_commands (device_id, sent_at);
    CREATE INDEX fleet_commands_open ON fleet_commands (site) WHERE done_at IS NULL;
    CREATE TABLE fleet_catalogue (
        id INTEGER PRIMARY KEY, version BIGINT NOT NULL, sites BIGINT NOT NULL);
    INSERT INTO fleet_catalogue VALUES (1, 0, 0);
    CREATE VIEW fleet_leases AS
        SELECT s.id, s.owner, s.epoch, {lease_until} AS lease_until
          FROM fleet_sites s LEFT JOIN fleet_instances i
            ON i.id = s.owner AND i.stopped_at IS NULL;
    """,
)

# The few words the two engines spell differently, filled in per dialect.
DIALECT = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "instant": "TEXT",
               "lease_until": "NULL"},
    "postgresql": {"serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                   "instant": "TIMESTAMPTZ",
                   "lease_until": "i.heartbeat_at + i.lease_seconds * interval '1 second'"},
}


def migration(sql: str, dialect: str) -> str:
    return sql.format(**DIALECT[dialect])
