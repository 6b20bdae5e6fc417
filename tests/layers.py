"""The import graph of the project's packages, read from the source with ``ast`` (nothing is
imported), and the layer rules of README's Parts table checked against it."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("core", "rating", "optimiser", "billing", "devices", "simulator", "flexd")
# What each package must never import (arrows point down only).
FORBIDDEN = {
    "core": {"rating", "optimiser", "billing", "devices", "simulator", "flexd"},
    "rating": {"optimiser", "billing", "devices", "simulator", "flexd"},
    "optimiser": {"rating", "billing", "devices", "simulator", "flexd"},
    "billing": {"optimiser", "devices", "simulator", "flexd"},
    "devices": {"rating", "optimiser", "billing", "simulator", "flexd"},
    "simulator": {"rating", "optimiser", "billing", "flexd"},
}
SIMULATION_WIRING = "flexd.simulation"  # the one flexd module that may import simulator


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)  # module -> project modules


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(root: Path, packages: Iterable[str] = PACKAGES) -> Graph:
    g = Graph()
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else ():
            g.modules[module_name(root, path)] = path
    for name, path in g.modules.items():
        g.edges[name] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):  # every import, lazy ones inside functions included
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    pkg_parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg_parts = pkg_parts[: len(pkg_parts) - node.level + 1]
                    base = ".".join([*pkg_parts, base] if base else pkg_parts)
                # ``from pkg import sub`` needs pkg/sub.py; ``from pkg import name`` needs pkg
                # (a package's own __init__ running first is not an edge of this module's).
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in g.modules else base
                    for a in node.names
                ]
            for t in targets:
                hit = _resolve(t, g.modules)
                if hit is not None and hit != name:
                    g.edges[name].add(hit)
    return g


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``target`` names (``a.b.c`` -> ``a.b`` if only that is)."""
    parts = target.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def violations(g: Graph) -> list[str]:
    out = []
    for mod, deps in sorted(g.edges.items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            dtop = dep.split(".")[0]
            if dtop in FORBIDDEN.get(top, ()):
                out.append(f"{mod} imports {dep}: {top}/ must not import {dtop}/")
            if top == "flexd" and dtop == "simulator" and mod != SIMULATION_WIRING:
                out.append(f"{mod} imports {dep}: only {SIMULATION_WIRING} may import simulator/")
    return out


def cycles(g: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(g.edges):
        if root in index:
            continue
        work = [(root, iter(sorted(g.edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out
