"""The package's imports point one way: down the declared layers, no cycles.

Every ``import`` and ``from ... import`` of ``src/anytcpip`` is read with
:mod:`ast` (nothing is imported), wherever it is: at module level, inside a
function, or under ``if TYPE_CHECKING:``. The rules:

- Each module belongs to one layer of :data:`LAYERS`; a module the table does
  not name fails the test (add it where it belongs, and to CONTRIBUTING.md).
- An import executed at run time (module level or in a function) goes to the
  same layer or one below, never above, and these imports form no cycle.
- An import under ``if TYPE_CHECKING:`` is never executed: it only names a
  type. It must point down too, except the back-references listed in
  :data:`TYPE_ONLY_BACK_REFERENCES` (a helper naming, in annotations, the
  type of the object that owns it), each with its reason. Even those may not
  be imported at run time.
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib
from collections.abc import Iterator

import pytest

import anytcpip

PACKAGE = pathlib.Path(anytcpip.__file__).parent

# Bottom to top. Patterns are fnmatch patterns on the module name within the
# package ("" is the package itself).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation: constants, errors, options, OS and anyio details",
        (
            "_version",
            "_constants",
            "_exceptions",
            "_options",
            "_json",
            "_stats",
            "_reconnect",
            "_tcp_info",
            "_workarounds",
            "_direct_send",
            "_asyncio_receive",
            "_asyncio_task",
            "_tcp_connect",
            "_socket_options",
        ),
    ),
    ("sans-IO framing, raw-stream and ctypes helpers", ("_framing", "_streams")),
    (
        "one connection's I/O: receive side, send queue, heartbeats",
        ("_receive*", "_send*", "_channel", "_heartbeat"),
    ),
    (
        "I/O bound to one connection, and the read/write API mixin",
        ("_binding", "_io_api"),
    ),
    (
        "the connection API (BaseClientOrServer) and its parts",
        (
            "_connection",
            "_state*",
            "_report*",
            "_callbacks*",
            "_lifecycle*",
        ),
    ),
    (
        "protocol toolkit on top of a connection",
        ("_requester", "_correlator*", "_dispatch"),
    ),
    ("clients and servers", ("_client", "_server", "_memory")),
    ("the read-loop server", ("_read_loop",)),
    (
        "tools built on the public classes",
        (
            "recording",
            "_recording*",
            "_tap*",
            "_replay",
            "testing",
            "blocking",
            "_blocking*",
            "pytest_plugin",
            "asyncio_compat",
            "asyncio_compat.*",
            "_cli*",
        ),
    ),
    ("entry points", ("", "__main__")),
]

TYPE_ONLY_BACK_REFERENCES: dict[tuple[str, str], str] = {
    ("_binding", "_connection"): (
        "the Connection handle names the type of the client or server it is a handle of"
    ),
    ("asyncio_compat._views", "asyncio_compat._base"): (
        "the stream views name the type of the connection they view"
    ),
}


def _modules() -> dict[str, pathlib.Path]:
    """Module name within the package ("" for the package) -> file."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, type_only: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Yield every import below ``node``, and whether it is type-only."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, type_only
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.body:
            yield from _walk(statement, True)
        for statement in node.orelse:
            yield from _walk(statement, type_only)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, type_only)


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules that ``node`` (in ``module``) imports."""
    is_package = MODULES[module].name == "__init__.py"
    here = module.split(".") if module else []
    if not is_package:
        here = here[:-1]
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "anytcpip" or alias.name.startswith("anytcpip."):
                targets.add(alias.name.removeprefix("anytcpip").lstrip("."))
    else:
        if node.level:
            base = here[: len(here) - (node.level - 1)]
            parts = base + (node.module.split(".") if node.module else [])
        elif node.module == "anytcpip" or (node.module or "").startswith("anytcpip."):
            parts = node.module.split(".")[1:] if node.module else []
        else:
            return targets
        target = ".".join(parts)
        for alias in node.names:
            submodule = ".".join([*parts, alias.name])
            targets.add(submodule if submodule in MODULES else target)
    return {target for target in targets if target != module}


def _imports() -> dict[str, dict[str, bool]]:
    """module -> {imported module: True if only ever imported type-only}."""
    graph: dict[str, dict[str, bool]] = {}
    for module, path in MODULES.items():
        edges: dict[str, bool] = {}
        for node, type_only in _walk(ast.parse(path.read_text(), str(path))):
            for target in _resolve(module, node):
                edges[target] = edges.get(target, True) and type_only
        graph[module] = edges
    return graph


GRAPH = _imports()


def _layer(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise AssertionError(
        f"anytcpip.{module} is in no layer: add it to LAYERS in "
        "tests/test_imports.py (and to the map in CONTRIBUTING.md)"
    )


def _name(module: str) -> str:
    return f"anytcpip.{module}" if module else "anytcpip"


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, edges in GRAPH.items():
        for target, type_only in edges.items():
            if _layer(target) <= _layer(module):
                continue
            if type_only and (module, target) in TYPE_ONLY_BACK_REFERENCES:
                continue
            kind = "a type-only" if type_only else "a run-time"
            wrong.append(
                f"{_name(module)} ({LAYERS[_layer(module)][0]}) has {kind} import "
                f"of {_name(target)} ({LAYERS[_layer(target)][0]})"
            )
    assert not wrong, "\n".join(wrong)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` (as a path), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    runtime = {
        module: {target for target, type_only in edges.items() if not type_only}
        for module, edges in GRAPH.items()
    }
    cycle = _find_cycle(runtime)
    assert cycle is None, "import cycle: " + " -> ".join(map(_name, cycle or []))
    # Type-only imports may close a cycle only through a listed back-reference.
    everything = {
        module: {
            target
            for target, type_only in edges.items()
            if not (type_only and (module, target) in TYPE_ONLY_BACK_REFERENCES)
        }
        for module, edges in GRAPH.items()
    }
    cycle = _find_cycle(everything)
    assert cycle is None, "import cycle: " + " -> ".join(map(_name, cycle or []))


def test_back_references_are_type_only() -> None:
    for (module, target), reason in TYPE_ONLY_BACK_REFERENCES.items():
        assert reason
        if module in GRAPH and target in GRAPH[module]:
            assert GRAPH[module][target], (
                f"{_name(module)} imports {_name(target)} at run time: only a "
                "type-only import may point up"
            )


def test_the_connection_does_not_import_the_toolkit() -> None:
    # Request/response is a layer above the connection (issue 12).
    assert "_requester" not in GRAPH["_connection"]
    assert "_correlator" not in GRAPH["_connection"]
    assert "_connection" in GRAPH["_requester"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ._x import y", {"_x"}),
        ("from . import _json", {"_json"}),
        ("import anytcpip._framing", {"_framing"}),
        ("from anytcpip import _stats", {"_stats"}),
        ("def f():\n    from ._client import Client", {"_client"}),
        ("if TYPE_CHECKING:\n    from ._server import S", {"_server"}),
        ("import json", set()),
    ],
)
def test_the_parser_sees_every_kind_of_import(source: str, expected: set[str]) -> None:
    found: set[str] = set()
    for node, _ in _walk(ast.parse(source)):
        found |= _resolve("_connection", node)
    assert found == expected


def test_type_checking_blocks_are_told_apart() -> None:
    source = (
        "import typing\n"
        "from ._a import A\n"
        "if typing.TYPE_CHECKING:\n"
        "    from ._b import B\n"
        "else:\n"
        "    from ._c import C\n"
    )
    kinds = {
        node.module: type_only
        for node, type_only in _walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    }
    assert kinds == {"_a": False, "_b": True, "_c": False}


def test_a_cycle_is_found() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
