"""Requests for a site reach its owner through PostgreSQL LISTEN/NOTIFY.

Why LISTEN/NOTIFY and not MQTT v5 shared subscriptions: a shared subscription hands each message
to *any one* subscriber, which balances load but cannot choose the owner, so the receiver would
still have to forward it. A notification goes to the owner's own channel, through the database
that already decides who the owner is, and costs no other moving part (a fleet may run without
a broker). Delivery takes milliseconds; a notification is lost if the owner dies before reading
it, so every request is answered (or times out) and the caller says so (HTTP 503).

Each instance listens on its own channel. A request carries an id and the caller's channel; the
owner runs it exactly as a local request and answers on the caller's channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("flexd.fleet.relay")
Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]
PAYLOAD_MAX = 7900  # NOTIFY refuses payloads of 8000 bytes or more


def channel(instance: str) -> str:
    """An instance's channel: a short identifier whatever the instance id holds."""
    return "flexd_" + hashlib.sha256(instance.encode()).hexdigest()[:20]


class RemoteError(Exception):
    """The owner answered with an error: ``kind`` and its fields rebuild the typed error."""

    def __init__(self, kind: str, fields: dict[str, Any]) -> None:
        super().__init__(f"{kind}: {fields}")
        self.kind = kind
        self.fields = fields


class NoAnswer(Exception):
    """The owner did not answer in time (it died, or lost the site meanwhile)."""


class Relay:
    def __init__(self, url: str, password: str | None, instance: str, handler: Handler) -> None:
        self.url = url
        self.password = password
        self.instance = instance
        self.me = channel(instance)
        self.handler = handler
        self._conn: Any = None
        self._send: Any = None
        self._send_lock = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    async def _connect(self) -> Any:
        import psycopg

        # Keepalives: a half-open connection (a failover) must not hold LISTEN silent forever.
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10, "keepalives": 1,
                                  "keepalives_idle": 10, "keepalives_interval": 5,
                                  "keepalives_count": 3}  # fmt: skip
        if self.password is not None:
            kwargs["password"] = self.password
        return await psycopg.AsyncConnection.connect(self.url, **kwargs)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop``, reconnecting after a lost connection."""
        while not stop.is_set():
            try:
                self._conn = await self._connect()
                await self._conn.execute(f"LISTEN {self.me}")
                self.ready.set()
                gen = self._conn.notifies()
                async for note in gen:
                    self._on(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: listen again shortly
                self.ready.clear()
                log.warning("relay_listen_lost", error=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            finally:
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None

    async def close(self) -> None:
        if self._send is not None:
            with contextlib.suppress(Exception):
                await self._send.close()
            self._send = None

    def _on(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            log.warning("relay_bad_message", payload=payload[:200])
            return
        if msg.get("t") == "rep":
            fut = self._waiting.pop(str(msg.get("id")), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        task = asyncio.get_running_loop().create_task(self._serve(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: dict[str, Any]) -> None:
        op, args, reply = str(msg.get("op")), dict(msg.get("args") or {}), msg.get("reply")
        try:
            result = await self.handler(op, args)
            answer: dict[str, Any] = {"t": "rep", "id": msg.get("id"), "ok": True, "result": result}
        except RemoteError as exc:
            answer = {"t": "rep", "id": msg.get("id"), "ok": False, "kind": exc.kind,
                      "fields": exc.fields}  # fmt: skip
        except Exception as exc:  # a bug: the caller answers 500, the owner logs it
            log.exception("relay_handler_failed", op=op, error=str(exc))
            answer = {"t": "rep", "id": msg.get("id"), "ok": False, "kind": "internal",
                      "fields": {"detail": "the owner failed to handle the request"}}  # fmt: skip
        if reply:
            try:
                await self.notify(str(reply), answer)
            except ValueError:  # the answer is too large to send back: say so instead
                small = {"t": "rep", "id": msg.get("id"), "ok": False, "kind": "internal",
                         "fields": {"detail": "the owner's answer was too large to relay"}}
                with contextlib.suppress(Exception):
                    await self.notify(str(reply), small)
            except Exception as exc:  # the caller times out and answers 503
                log.warning("relay_reply_failed", op=op, error=f"{type(exc).__name__}: {exc}")

    async def notify(self, to_channel: str, msg: dict[str, Any]) -> None:
        text = json.dumps(msg, separators=(",", ":"), default=str)
        if len(text.encode()) > PAYLOAD_MAX:
            raise ValueError(f"relay message of {len(text)} bytes is too large")
        async with self._send_lock:  # one connection for sending, opened on first use
            if self._send is None or self._send.closed:
                self._send = await self._connect()
            await self._send.execute("SELECT pg_notify(%s, %s)", (to_channel, text))

    async def call(self, owner: str, op: str, args: dict[str, Any], timeout: float) -> Any:
        """Run ``op`` on the owner; its result, or RemoteError, or NoAnswer after ``timeout``."""
        rid = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await self.notify(channel(owner), {"t": "req", "id": rid, "reply": self.me,
                                               "op": op, "args": args})  # fmt: skip
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise NoAnswer(f"{owner} did not answer {op} within {timeout:g} s") from None
        finally:
            self._waiting.pop(rid, None)
        if not answer.get("ok"):
            raise RemoteError(str(answer.get("kind")), dict(answer.get("fields") or {}))
        return answer.get("result")

    async def tell(self, owner: str, op: str, args: dict[str, Any]) -> None:
        """Fire and forget (a re-rating to do): no answer is awaited."""
        await self.notify(channel(owner), {"t": "req", "id": uuid.uuid4().hex, "reply": None,
                                           "op": op, "args": args})  # fmt: skip
