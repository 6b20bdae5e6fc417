"""Energy and cost summed by register and band: the demo summary's table and the web page's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from flexd.storage import RatedRow


def by_band(rows: Iterable[RatedRow]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """kWh and cost summed per (register, band), sorted: the summary's table and the web page's."""
    acc: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in rows:
        acc[(r.register, r.band)][0] += r.kwh
        acc[(r.register, r.band)][1] += r.cost_p
    return {k: (v[0], v[1]) for k, v in sorted(acc.items())}
