"""The floor plan holds: no import cycles inside ``registry_app``, reads never import writes,
only ``registry_app/aws/`` imports boto3, and modules stay around 400 lines.

The import graph is built with ``ast`` from every module's imports (module level and inside
functions). One kind of edge is left out: importing ``registry_app.tasks`` to enqueue a task
(a service sending its own task after commit; the task module imports services lazily back).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "registry_app"
TASKS = "registry_app.tasks"

# Reads: selectors and pages' data. They may import pure modules and models, never a write module.
READ_MODULES = (
    "registry_app.mirror.selectors",
    "registry_app.mirror.provenance_selectors",
    "registry_app.audit.rollback",
    "registry_app.mirror.sync_status",
    "registry_app.notifications.selectors",
    "registry_app.review.state",
    "registry_app.review.queue",
    "registry_app.review.queue_base",
    "registry_app.review.decided",
    "registry_app.review.review_rows",
    "registry_app.review.panel",
    "registry_app.review.compare",
    "registry_app.review.policies",
    "registry_app.review.policy_versions",
    "registry_app.audit.timeline",
    "registry_app.audit.timeline_items",
    "registry_app.audit.search",
    "registry_app.audit.as_of",
    "registry_app.audit.as_of_package",
    "registry_app.audit.as_of_status",
    "registry_app.audit.as_of_evidence",
    "registry_app.audit.endpoints",
    "registry_app.audit.bypasses",
    "registry_app.audit.chain",
    "registry_app.audit.exports",
    "registry_app.audit.packs",
    "registry_app.audit.pack_evidence",
    "registry_app.audit.validation",
    "registry_app.audit.coverage",
    "registry_app.audit.digests",
    "registry_app.ops.metrics",
    "registry_app.ops.metrics_evidence",
    "registry_app.ops.health",
    "registry_app.ops.freshness",
    "registry_app.views.context_processors",
    "registry_app.gate.deployability",
    "registry_app.gate.inputs",
    "registry_app.gate.answers",
    "registry_app.gate.registry",
    "registry_app.gate.evidence",
)
# Writes: services that change rows or call AWS to change something, and the task entry points.
WRITE_PREFIXES = (
    "registry_app.mirror.reconcile",
    "registry_app.mirror.runs",
    "registry_app.mirror.events",
    "registry_app.mirror.endpoints",
    "registry_app.mirror.leases",
    "registry_app.mirror.shards",
    "registry_app.mirror.execute",
    "registry_app.mirror.context",
    "registry_app.mirror.groups",
    "registry_app.mirror.card_sync",
    "registry_app.mirror.provenance",
    "registry_app.mirror.lineage",
    "registry_app.mirror.apply",
    "registry_app.mirror.changes",
    "registry_app.review.signoffs",
    "registry_app.review.decisions",
    "registry_app.review.policy_publish",
    "registry_app.review.push",
    "registry_app.review.on_sync",
    "registry_app.audit.log",
    "registry_app.review.queue_state",
    "registry_app.review.receivers",
    "registry_app.audit.ingest",
    "registry_app.audit.ingest_run",
    "registry_app.audit.ingest_lookup",
    "registry_app.audit.ingest_s3",
    "registry_app.audit.ingest_writer",
    "registry_app.audit.ingest_linker",
    "registry_app.audit.outside_decisions",
    "registry_app.audit.deployments",
    "registry_app.audit.receivers",
    "registry_app.audit.trail_evidence",
    "registry_app.audit.digest_ingest",
    "registry_app.audit.backfill",
    "registry_app.audit.anchors",
    "registry_app.audit.verification",
    "registry_app.audit.alerts",
    "registry_app.notifications",
    "registry_app.sso.services",
    "registry_app.tasks",
    "registry_app.gate.tokens",
)
MAX_LINES = 450  # "around 400"
LINE_LIMIT_EXEMPT = ("registry_app.devtools", "registry_app.migrations")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in APP.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
            targets.update(submodules)
            if len(submodules) < len(node.names):  # some name is defined in ``module`` itself
                targets.add(module)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative enough here)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_enqueue_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: {t for t in targets if t != TASKS} for name, targets in graph.items()}


def _is_write(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in WRITE_PREFIXES)


def test_the_graph_sees_the_app() -> None:
    assert "registry_app.review.state" in GRAPH
    assert "registry_app.review.policies" in GRAPH["registry_app.review.state"]
    # a cycle planted in a copy of the graph is found
    planted = {**GRAPH, "registry_app.review.state": {*GRAPH["registry_app.review.state"], "registry_app.review.panel"}}
    assert any("registry_app.review.panel" in c for c in _cycles(planted))


def test_no_import_cycles() -> None:
    cycles = _cycles(_without_enqueue_edges(GRAPH))
    assert not cycles, "import cycles (besides enqueueing a task): " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("read", [m for m in READ_MODULES if m in MODULES])
def test_reads_never_import_writes(read: str) -> None:
    reachable: set[str] = set()
    todo = [read]
    graph = _without_enqueue_edges(GRAPH)
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    writes = sorted(m for m in reachable if _is_write(m))
    assert not writes, f"{read} reaches write modules: {writes}"


def test_only_the_aws_adapter_imports_boto3() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name.startswith(("registry_app.aws", "registry_app.devtools")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] in ("boto3", "botocore") for n in names):
                offenders.append(name)
    assert not offenders, f"boto3/botocore imported outside registry_app/aws: {sorted(set(offenders))}"


def test_modules_stay_around_400_lines() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if not name.startswith(LINE_LIMIT_EXEMPT)
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
