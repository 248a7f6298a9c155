"""The public surface: names, values, module metadata."""

from __future__ import annotations

import asyncio
import inspect
import re
import types

import anytcpip


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name in dir(anytcpip)
        if not name.startswith("_")
        and not isinstance(getattr(anytcpip, name), types.ModuleType)
    }
    public.add("__version__")
    assert set(anytcpip.__all__) == public
    assert len(anytcpip.__all__) == len(set(anytcpip.__all__))


def test_public_objects_claim_the_package_module() -> None:
    for name in anytcpip.__all__:
        obj = getattr(anytcpip, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "anytcpip", name


def test_public_callables_have_docstrings() -> None:
    for name in anytcpip.__all__:
        obj = getattr(anytcpip, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_constants() -> None:
    assert anytcpip.DEFAULT_ENCODING == "utf-8"
    assert anytcpip.DEFAULT_TERMINATOR == anytcpip.TERMINATOR == b"\r\n"
    assert anytcpip.DEFAULT_LOCALHOST == "127.0.0.1"
    assert anytcpip.LOCALHOST_IPV4 == anytcpip.LOCAL_HOST == "127.0.0.1"
    assert anytcpip.LOCALHOST_IPV6 == "::1"
    assert anytcpip.HEARTBEAT == b"heartbeat"
    assert anytcpip.DEFAULT_MAX_LINE_LENGTH == 65536
    assert (
        anytcpip.KEEPALIVE_TIME,
        anytcpip.KEEPALIVE_INTERVAL,
        anytcpip.KEEPALIVE_PROBES,
    ) == (60, 15, 4)


def test_exception_hierarchy() -> None:
    assert issubclass(anytcpip.IncompleteReadError, asyncio.IncompleteReadError)
    assert issubclass(anytcpip.IncompleteReadError, EOFError)
    assert issubclass(anytcpip.LimitOverrunError, asyncio.LimitOverrunError)
    assert issubclass(anytcpip.NotConnectedError, ConnectionError)
    assert issubclass(anytcpip.ConnectionLostError, ConnectionError)
    for exc in (
        anytcpip.IncompleteReadError,
        anytcpip.LimitOverrunError,
        anytcpip.NotConnectedError,
        anytcpip.ConnectionLostError,
    ):
        assert issubclass(exc, anytcpip.AnyTcpIpError)


def test_core_imports_no_backend() -> None:
    """Core modules import anyio, never asyncio or trio.

    The exceptions: ``_exceptions`` (subclasses of asyncio's exception types)
    and the private per-backend fast paths ``_asyncio_*`` (chosen at run
    time; the generic path stays complete and is what trio takes).
    """
    import ast
    import pathlib

    package = pathlib.Path(anytcpip.__file__).parent
    for path in package.glob("_*.py"):
        if path.name == "_exceptions.py" or path.name.startswith("_asyncio_"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("asyncio", "trio"), (path, name)


def test_no_code_path_evaluates_received_data() -> None:
    """Security default: nothing in the package evaluates or unpickles data."""
    import ast
    import pathlib

    forbidden_calls = {"eval", "exec", "compile", "__import__"}
    forbidden_modules = {"pickle", "marshal", "shelve", "dill", "cloudpickle"}
    package = pathlib.Path(anytcpip.__file__).parent
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in forbidden_calls, (path, node.func.id)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name not in forbidden_modules, (path, alias.name)
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "") not in forbidden_modules, path


# -- the API reference (docs/api/) covers every public name ----------------------


def _public_modules() -> list[str]:
    """``anytcpip`` and each of its public submodules (no leading ``_``)."""
    import pkgutil

    return ["anytcpip"] + [
        info.name
        for info in pkgutil.iter_modules(anytcpip.__path__, "anytcpip.")
        if not info.name.rpartition(".")[2].startswith("_")
    ]


def _api_reference() -> str:
    import pathlib

    api = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api"
    return "\n".join(page.read_text() for page in sorted(api.glob("*.md")))


def _documented_by_automodule(reference: str, module: str) -> bool:
    """Whether ``.. automodule:: MODULE`` documents all of ``__all__``."""
    match = re.search(
        rf"^\.\. automodule:: {re.escape(module)}\n((?:   .*\n)*)", reference, re.M
    )
    return match is not None and "   :members:\n" in match.group(1)


def test_every_public_name_is_in_the_api_reference() -> None:
    """Each name of each public module's ``__all__`` has an entry in docs/api/.

    Either its own directive (``.. autoclass:: anytcpip.Client``) or, for
    ``anytcpip.testing`` and the like, an ``automodule`` with ``:members:``,
    which documents ``__all__``. Add a new name to the page of its topic.
    """
    import importlib

    reference = _api_reference()
    missing = []
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        if _documented_by_automodule(reference, module_name):
            continue
        for name in module.__all__:
            if name == "__version__":
                continue
            if not re.search(rf":: {re.escape(module_name)}\.{name}$", reference, re.M):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in docs/api/*.md: {missing}"
