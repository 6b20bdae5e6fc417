"""Layers import one way and nothing imports in a circle (README, "Parts")."""

from pathlib import Path

import pytest

from tests.layers import build, cycles, violations

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    return build(ROOT)


def test_the_graph_sees_the_project(graph):
    # A checker that read nothing would pass everything: make sure it reads real edges.
    assert {"core.clock", "devices.registry", "flexd.daemon", "flexd.simulation"} <= set(graph.modules)
    assert "core.clock" in graph.edges["devices.registry"] | graph.edges["devices.options"]
    assert any(d.startswith("simulator.") for d in graph.edges["flexd.simulation"])


def test_layers_import_downward_only(graph):
    assert violations(graph) == []


def test_exactly_one_flexd_module_imports_the_simulators(graph):
    users = {m for m, deps in graph.edges.items() if m.startswith("flexd")
             and any(d.split(".")[0] == "simulator" for d in deps)}  # fmt: skip
    assert users == {"flexd.simulation"}


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def _tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return build(tmp_path)


def test_the_checker_catches_an_upward_import_a_lazy_one_and_a_cycle(tmp_path):
    g = _tree(tmp_path, {
        "core/__init__.py": "",
        "core/clock.py": "def f():\n    from flexd import daemon\n",  # lazy, still upward
        "devices/__init__.py": "",
        "devices/a.py": "from flexd.daemon import X\n",
        "flexd/__init__.py": "",
        "flexd/daemon.py": "import flexd.loop\nfrom simulator import world\n",
        "flexd/loop.py": "from flexd import daemon\n",
        "simulator/__init__.py": "",
        "simulator/world.py": "",
    })  # fmt: skip
    found = "\n".join(violations(g))
    assert "core.clock imports flexd.daemon" in found
    assert "devices.a imports flexd.daemon" in found
    assert "flexd.daemon imports simulator.world: only flexd.simulation" in found
    assert cycles(g) == [["flexd.daemon", "flexd.loop"]]
