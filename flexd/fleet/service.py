"""The API facade of a fleet instance: any instance serves any site.

A request for a site this instance controls runs here. One for a site another instance owns goes
to the owner through the relay (LISTEN/NOTIFY), which runs it exactly as a local request, with
the device's live state, and answers; its typed errors (422, 404, 409) come back as they were.
A site with no owner just now (its lease expired, a takeover is under way) answers 503 with
Retry-After. Readings posted to any instance are stored once, here, and the owner is told to
rate them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from flexd.control.preferences import InputError, Preferences, parse_preferences
from flexd.fleet.relay import NoAnswer, Relay, RemoteError
from flexd.service import BumpResult, Conflict, NotFound, Service, Unavailable
from flexd.storage import DispatchRow, ReadingRow, parse_ts, ts
from flexd.storage.fence import Fence, fenced

TIMEOUT_S = 5.0


def _as_remote(exc: Exception) -> RemoteError:
    if isinstance(exc, InputError):
        return RemoteError("input", {"field": exc.field, "reason": exc.reason})
    if isinstance(exc, NotFound):
        return RemoteError("not-found", {"what": exc.what})
    if isinstance(exc, Conflict):
        return RemoteError("conflict", {"code": exc.code, "detail": exc.detail})
    raise exc


def _typed(err: RemoteError) -> Exception:
    f = err.fields
    if err.kind == "input":
        return InputError(str(f.get("field")), str(f.get("reason")))
    if err.kind == "not-found":
        return NotFound(str(f.get("what")))
    if err.kind == "conflict":
        return Conflict(str(f.get("code")), str(f.get("detail")))
    return RuntimeError(f"the owner failed: {f.get('detail', err.kind)}")


class FleetService(Service):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = ""
        self.relay: Relay | None = None
        # The sites this instance controls now, with the fence their writes carry.
        self.local: dict[str, Fence] = {}

    def attach(self, instance: str, relay: Relay) -> None:
        self.instance = instance
        self.relay = relay

    async def readiness(self) -> dict[str, Any]:
        """Ready once the database answers, prices are known and every device of the sites
        this instance controls has been polled (the others' are their owners' to poll)."""
        now = self.clock.now()
        try:
            db_ok = await self.storage.ping()
        except Exception:
            db_ok = False
        polled = all(d.last_ok is not None for sid in list(self.local)
                     for d in self.sites[sid].devices.values())  # fmt: skip
        prices = self.prices_known_until is not None and self.prices_known_until > now
        return {"ready": db_ok and polled and prices, "database": db_ok,
                "devices_polled": polled, "prices_known": prices,
                "sites_controlled": len(self.local)}  # fmt: skip

    # --- routing --------------------------------------------------------------------------

    def _site_id(self, device_id: str) -> str:
        return self.device(device_id).site_id

    async def _owner(self, site_id: str) -> str:
        rows = await self.storage.query(
            "SELECT owner FROM fleet_leases WHERE id = ? AND lease_until > now()", (site_id,)
        )
        if not rows or rows[0][0] is None:
            raise Unavailable("site-unavailable", f"site {site_id} is changing owner: "
                              "try again in a few seconds")  # fmt: skip
        return str(rows[0][0])

    async def _remote(self, device_id: str, op: str, args: dict[str, Any]) -> tuple[bool, Any]:
        """(False, None) when this instance owns the device's site (run it here), else (True,
        the owner's answer). A reply from an instance that lost the site meanwhile, or none,
        is tried once more with the owner the database names then."""
        site = self._site_id(device_id)
        if self.relay is None:
            raise Unavailable("starting", "this instance is starting: try again in a moment")
        asked: str | None = None
        for _attempt in (1, 2):
            if site in self.local:
                return False, None
            owner = await self._owner(site)
            if owner == self.instance:  # claimed here a moment ago: its loop is starting
                raise Unavailable("site-starting", f"site {site} is starting: try again in a "
                                  "few seconds")  # fmt: skip
            if owner == asked:  # the same owner did not answer: do not send it twice
                break
            asked = owner
            try:
                return True, await self.relay.call(owner, op, {"device": device_id, **args},
                                                   TIMEOUT_S)  # fmt: skip
            except RemoteError as exc:
                if exc.kind == "not-owner":
                    asked = None
                    continue  # it lost the site meanwhile: ask whoever owns it now
                raise _typed(exc) from None
            except NoAnswer:
                continue  # asked again only if the site has a new owner by now
            except ValueError as exc:  # too large for a notification
                raise InputError("body", str(exc)) from None
            except (OSError, psycopg.Error) as exc:  # the database is away
                raise Unavailable("relay-unavailable", f"cannot reach site {site}'s owner: "
                                  f"{type(exc).__name__}") from None  # fmt: skip
        raise Unavailable("owner-unavailable", f"site {site}'s owner did not answer: "
                          "try again in a few seconds")  # fmt: skip

    # --- the owner's side -----------------------------------------------------------------

    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        """Run a relayed request as a local one (this instance must own the site)."""
        try:
            if op == "rerate":
                fence = self.local.get(str(args.get("site")))
                if self.rater is not None and fence is not None:
                    starts = {parse_ts(s) for s in args.get("starts", [])}
                    with fenced(fence):  # written as the site's owner
                        await self.rater.rerate(str(args["meter"]), starts, "readings")
                return None
            device = str(args.get("device"))
            if self._site_id(device) not in self.local:
                raise RemoteError("not-owner", {})
            if op == "bump":
                r = await Service.bump_charge(
                    self, device, target_soc_pct=args.get("target_soc_pct"),
                    duration_minutes=args.get("duration_minutes"),
                    idempotency_key=args.get("idempotency_key"),
                )  # fmt: skip
                return {"status": r.status, "body": r.body, "created": r.created,
                        "dispatch_id": r.dispatch_id}  # fmt: skip
            if op == "cancel-bump":
                return (await Service.cancel_bump(self, device)).id
            if op == "preferences":
                return (await Service.set_preferences(self, device, args.get("doc"))).to_json()
            if op == "device":
                return Service.device_view(self, device)
        except RemoteError:
            raise
        except (InputError, NotFound, Conflict) as exc:
            raise _as_remote(exc) from None
        raise RemoteError("input", {"field": "op", "reason": f"unknown relay op {op!r}"})

    # --- the API's side -------------------------------------------------------------------

    async def bump_charge(
        self, device_id: str, *, target_soc_pct: float | None = None,
        duration_minutes: int | None = None, idempotency_key: str | None = None,
    ) -> BumpResult:  # fmt: skip
        remote, got = await self._remote(device_id, "bump", {
            "target_soc_pct": target_soc_pct, "duration_minutes": duration_minutes,
            "idempotency_key": idempotency_key,
        })  # fmt: skip
        if not remote:
            return await super().bump_charge(
                device_id, target_soc_pct=target_soc_pct, duration_minutes=duration_minutes,
                idempotency_key=idempotency_key,
            )  # fmt: skip
        return BumpResult(int(got["status"]), dict(got["body"]), bool(got["created"]),
                          str(got["dispatch_id"]))  # fmt: skip

    async def cancel_bump(self, device_id: str) -> DispatchRow:
        remote, got = await self._remote(device_id, "cancel-bump", {})
        if not remote:
            return await super().cancel_bump(device_id)
        row = await self.storage.get_dispatch(str(got))
        if row is None:
            raise NotFound(f"dispatch {got}")
        return row

    async def set_preferences(self, device_id: str, doc: Any) -> Preferences:
        self._charger(device_id)
        remote, got = await self._remote(device_id, "preferences", {"doc": doc})
        if not remote:
            return await super().set_preferences(device_id, doc)
        prefs = parse_preferences(got)
        self.device(device_id).preferences = prefs  # this instance's copy, for its own views
        return prefs

    async def load_preferences(self, device_id: str) -> Preferences:
        dev = self._charger(device_id)
        if dev.site_id in self.local:
            return dev.preferences
        stored = await self.storage.get_preferences(device_id)
        return dev.preferences if stored is None else parse_preferences(stored)

    async def load_device_view(self, device_id: str) -> dict[str, Any]:
        """The device as its owner sees it (live state), wherever the request came in."""
        remote, got = await self._remote(device_id, "device", {})
        return Service.device_view(self, device_id) if not remote else dict(got)

    async def upsert_readings(self, meter: str, rows: Any) -> int:
        changed = await self.storage.upsert_readings(rows, self.clock.now())
        if not changed:
            return 0
        site = next((s.config.id for s in self.sites.values() if s.config.meter == meter), None)
        starts = {r.start for r in rows if isinstance(r, ReadingRow)}
        if site is not None and site in self.local and self.rater is not None:
            await self.rater.rerate(meter, starts, "readings")
        elif site is not None and self.relay is not None:
            try:  # the owner rates them
                owner = await self._owner(site)
            except Unavailable:  # none just now: rated here (a rating stores only what
                # changed, under the meter's lock, so two raters never store one slot twice)
                if self.rater is not None:
                    await self.rater.rerate(meter, starts, "readings")
                return changed
            await self.relay.tell(
                owner, "rerate", {"site": site, "meter": meter, "starts": [ts(s) for s in starts]}
            )
        return changed
