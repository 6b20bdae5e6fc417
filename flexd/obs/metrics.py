"""A small Prometheus text-format registry: counters, gauges and summaries with labels."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _labels(kv: dict[str, str]) -> Labels:
    return tuple(sorted(kv.items()))


def _fmt(labels: Labels, extra: Labels = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


# Labels that name a customer's things: shown only to an admin token (see flexd.api.app).
IDENTIFYING = frozenset({"device", "site", "meter", "account"})


def _fold(
    values: dict[Labels, float], counts: dict[Labels, int], redact: frozenset[str], gauge: bool
) -> tuple[dict[Labels, float], dict[Labels, int]]:
    out: dict[Labels, float] = {}
    out_n: dict[Labels, int] = {}
    for key, v in values.items():
        k = tuple((n, x) for n, x in key if n not in redact)
        out[k] = max(out.get(k, v), v) if gauge else out.get(k, 0.0) + v
        if key in counts:
            out_n[k] = out_n.get(k, 0) + counts[key]
    return out, out_n


@dataclass
class Metric:
    name: str
    help: str
    kind: str  # counter | gauge | summary
    values: dict[Labels, float] = field(default_factory=dict)
    counts: dict[Labels, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = _labels(labels)
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        with self.lock:
            self.values[_labels(labels)] = value

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def clear(self) -> None:
        with self.lock:
            self.values.clear()
            self.counts.clear()

    def get(self, **labels: str) -> float:
        return self.values.get(_labels(labels), 0.0)

    def render(self, redact: frozenset[str] = frozenset()) -> list[str]:
        """Text lines; labels in ``redact`` are summed away (a gauge keeps its maximum)."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with self.lock:
            values, counts = dict(self.values), dict(self.counts)
        if redact:
            values, counts = _fold(values, counts, redact, self.kind == "gauge")
        for key, value in sorted(values.items()):
            if self.kind == "summary":
                lines.append(f"{self.name}_sum{_fmt(key)} {value:g}")
                lines.append(f"{self.name}_count{_fmt(key)} {counts[key]}")
            else:
                lines.append(f"{self.name}{_fmt(key)} {value:g}")
        return lines


class Metrics:
    """The daemon's metrics. Gauges that depend on time are refreshed by ``collectors``."""

    def __init__(self) -> None:
        self._all: list[Metric] = []
        self.collectors: list[Callable[[], None]] = []
        m = self._add
        self.device_poll_age = m(
            "flexd_device_poll_age_seconds", "Age of the last good poll", "gauge"
        )
        self.device_poll_errors = m(
            "flexd_device_poll_errors_total", "Failed device polls", "counter"
        )
        self.device_polls = m("flexd_device_polls_total", "Device polls", "counter")
        self.commands_sent = m("flexd_commands_sent_total", "Device commands sent", "counter")
        self.commands_not_honoured = m(
            "flexd_commands_not_honoured_total", "Commands the device did not honour", "counter"
        )
        self.plans = m("flexd_plans_total", "Plans made, by reason", "counter")
        self.plan_solve = m("flexd_plan_solve_seconds", "Optimiser solve time", "summary")
        self.rated_slots = m("flexd_rated_slots_total", "Rated slot versions stored", "counter")
        self.api_requests = m(
            "flexd_api_requests_total", "API requests by route and status", "counter"
        )
        self.control_cycles = m("flexd_control_cycles_total", "Control cycles run", "counter")
        self.cycle_failures = m(
            "flexd_control_cycle_failures_total", "Control cycles that failed, by site", "counter"
        )
        self.cycle_seconds = m(
            "flexd_control_cycle_seconds", "Real time a site's control cycle took", "summary"
        )
        self.replan_latency = m(
            "flexd_replan_latency_seconds",
            "Real time from a re-plan request (price update, plug-in, ...) to the stored plan",
            "summary",
        )

        # The fleet (all zero on a single instance).
        self.fleet_sites_owned = m("flexd_fleet_sites_owned", "Sites this instance controls",
                                   "gauge")  # fmt: skip
        self.fleet_sites_total = m("flexd_fleet_sites", "Sites in the fleet's database", "gauge")
        self.fleet_instances_live = m(
            "flexd_fleet_instances_live", "Instances whose heartbeat is within a lease", "gauge"
        )
        self.fleet_takeovers = m(
            "flexd_fleet_takeovers_total", "Sites this instance took over from another", "counter"
        )
        self.fleet_leases_lost = m(
            "flexd_fleet_leases_lost_total", "Sites this instance found taken over", "counter"
        )
        self.fleet_stale_writes = m(
            "flexd_fleet_stale_writes_total", "Writes and commands refused for a stale epoch",
            "counter",
        )
        self.fleet_instance_sites = m(
            "flexd_fleet_instance_sites", "Sites each instance of the fleet owns", "gauge"
        )
        self.fleet_instance_heartbeat_age = m(
            "flexd_fleet_instance_heartbeat_age_seconds",
            "Seconds since each instance's last heartbeat (the database's clock)", "gauge",
        )
        self.fleet_site_epoch = m(
            "flexd_fleet_site_epoch", "Epoch of each site this instance controls", "gauge"
        )
        self.fleet_site_lease_seconds = m(
            "flexd_fleet_site_lease_remaining_seconds",
            "Seconds left on each lease this instance holds (by its own clock)", "gauge",
        )

    def _add(self, name: str, help: str, kind: str) -> Metric:
        metric = Metric(name, help, kind)
        self._all.append(metric)
        return metric

    def render(self, redact: frozenset[str] = frozenset()) -> str:
        for collect in self.collectors:
            collect()
        out: list[str] = []
        for metric in self._all:
            out.extend(metric.render(redact))
        return "\n".join(out) + "\n"
