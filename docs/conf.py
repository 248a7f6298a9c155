"""Sphinx configuration for the anytcpip documentation.

Built by ``.ci/run`` with ``-n -W``: every reference must resolve, and any
warning fails the build. The handlers at the end keep private helpers out of
the reference (a private base class, ``_Pipe`` or ``NeedData`` in a
signature) and give re-exported constants their docstrings.

Offline builds: the intersphinx inventories of Python, anyio and trio are
fetched from the web. Where there is no network (CI here), each falls back
to an empty inventory in ``_intersphinx/``, and references into those
projects are then shown as plain text instead of failing the build. Online,
they must resolve like any other reference.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
import re
import sys
import typing
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.ext import intersphinx
from sphinx.pycode import ModuleAnalyzer

import anytcpip

project = "anytcpip"
author = "anytcpip developers"
copyright = "2026, anytcpip developers"
release = anytcpip.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_intersphinx"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = f"anytcpip {release}"

# -- intersphinx: links to Python, anyio and trio --------------------------------

_OFFLINE_INVENTORY = "_intersphinx/empty.inv"
intersphinx_mapping = {
    name: (url, (None, _OFFLINE_INVENTORY))
    for name, url in {
        "python": "https://docs.python.org/3",
        "anyio": "https://anyio.readthedocs.io/en/stable",
        "trio": "https://trio.readthedocs.io/en/stable",
    }.items()
}
intersphinx_timeout = 10
# The top-level packages each inventory covers (for the offline fallback).
_EXTERNAL_PACKAGES = {
    "python": set(sys.stdlib_module_names) | {"builtins"},
    "anyio": {"anyio"},
    "trio": {"trio"},
}
# The modules whose objects the API reference documents: the package and
# each of its public submodules.
_DOCUMENTED_MODULES = (
    "anytcpip",
    *(
        info.name
        for info in pkgutil.iter_modules(anytcpip.__path__, "anytcpip.")
        if not info.name.rpartition(".")[2].startswith("_")
    ),
)
# Private helpers that appear in signatures, and the public name to show.
_PUBLIC_NAMES = {"NeedData": "anytcpip.NEED_DATA"}


def _offline(app: Sphinx, inventory: str) -> bool:
    """Whether an intersphinx inventory could not be fetched (it is empty)."""
    named = getattr(app.env, "intersphinx_named_inventory", {})
    return not named.get(inventory)


def _import(path: str) -> Any:
    """Return the object a dotted path names, or ``_MISSING``."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part, _MISSING)
        return obj
    return _MISSING


_MISSING = object()


def _public_name(obj: Any) -> str | None:
    """Return where the reference documents an object of anytcpip, if it does."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not qualname:
        return None
    top = qualname.split(".")[0]
    owner = obj if top == qualname else _import(f"{module}.{top}")
    for name in _DOCUMENTED_MODULES:
        documented = _import(name)
        if top in getattr(documented, "__all__", ()) and (
            getattr(documented, top, None) is owner
        ):
            return f"{name}.{qualname}"
    return None


def _resolve_missing(
    app: Sphinx, env: Any, node: Any, contnode: nodes.TextElement
) -> nodes.Element | None:
    """Resolve what the Python domain and intersphinx could not.

    - A private helper named in a signature links to its public name
      (``NeedData`` to :data:`anytcpip.NEED_DATA`).
    - A name written as the code sees it (``Client`` in ``anytcpip.testing``,
      ``anytcpip._client.Client``, a method inherited from a documented base
      class) links to where the reference documents it.
    - A name from Python, anyio or trio is plain text when that project's
      inventory could not be fetched (offline build).
    - Type variables and other internal typing helpers are plain text.
    """
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")

    def link(name: str) -> nodes.Element | None:
        resolved: nodes.Element | None = domain.resolve_xref(
            env, node["refdoc"], app.builder, "obj", name, node, contnode
        )
        return resolved

    if target in _PUBLIC_NAMES:
        return link(_PUBLIC_NAMES[target])
    if node.get("reftype") != "obj" and (resolved := link(target)) is not None:
        return resolved  # a data object named where a class was expected
    package = target.split(".")[0]
    for inventory, packages in _EXTERNAL_PACKAGES.items():
        if package not in packages:
            continue
        if _offline(app, inventory):
            return contnode
        if target.count(".") >= 2:  # asyncio.streams.StreamWriter: documented
            retry = node.deepcopy()  # as asyncio.StreamWriter
            retry["reftarget"] = f"{package}.{target.rsplit('.', 1)[1]}"
            found: nodes.Element | None = intersphinx.missing_reference(
                app, env, retry, contnode
            )
            return found
    if "." not in target and hasattr(builtins, target) and _offline(app, "python"):
        return contnode
    # Where the reference was written: its module, and its class if any.
    module = node.get("py:module") or ""
    cls = node.get("py:class") or ""
    owner = _import(f"{module}.{cls}") if cls else _MISSING
    candidates = [_import(target), _import(f"{module}.{target}")]
    if owner is not _MISSING:
        candidates.append(getattr(owner, target, _MISSING))
    if "." not in target:  # a name of the private module that defines it
        candidates += [
            vars(loaded).get(target, _MISSING)
            for name, loaded in sorted(sys.modules.items())
            if name.startswith("anytcpip.") and loaded is not None
        ]
    for obj in candidates:
        if obj is _MISSING:
            continue
        package = (getattr(obj, "__module__", None) or "").split(".")[0]
        if package in _EXTERNAL_PACKAGES["python"] and _offline(app, "python"):
            return contnode
        public = _public_name(obj)
        if public and (resolved := link(public)) is not None:
            return resolved
        # A method or attribute documented on a public base class.
        if owner is not _MISSING and "." not in target:
            for base in getattr(owner, "__mro__", ()):
                base_name = _public_name(base)
                if base_name and (resolved := link(f"{base_name}.{target}")):
                    return resolved
        if (
            isinstance(obj, typing.TypeVar)
            or not callable(obj)
            or (getattr(obj, "__module__", "").startswith("anytcpip."))
        ):
            return contnode  # internal: shown, not linked
    return None


def _public_bases(
    app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]
) -> None:
    """Show public base classes only.

    A base that the reference does not document (a private mixin, an
    internal intermediate exception) is replaced by its own bases.
    """
    public: list[type] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if base.__module__.startswith("anytcpip") and _public_name(base) is None:
            pending[:0] = [b for b in base.__bases__ if b is not object]
        elif base not in public:
            public.append(base)
    bases[:] = public or [object]


_attribute_docs: dict[str, dict[str, list[str]]] = {}


def _private_attribute_docs(module: str) -> dict[str, list[str]]:
    """Return the attribute docstrings of a package's private modules."""
    if module not in _attribute_docs:
        docs = _attribute_docs[module] = {}
        package = importlib.import_module(module)
        for info in pkgutil.iter_modules(
            getattr(package, "__path__", []), f"{module}."
        ):
            if info.name.startswith(f"{module}._"):
                analyzer = ModuleAnalyzer.for_module(info.name)
                for (scope, attr), found in analyzer.find_attr_docs().items():
                    if not scope:
                        docs.setdefault(attr, list(found))
    return _attribute_docs[module]


def _reexported_data_docs(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Give ``anytcpip.X`` the docstring ``X`` has in the private module.

    Constants and aliases are documented where they are defined (an attribute
    docstring in ``anytcpip._constants``, for example); autodoc looks for it
    only in the module it documents, ``anytcpip``, and otherwise shows the
    docstring of the value's type (``str``).
    """
    module, _, attribute = name.rpartition(".")
    if what not in ("data", "attribute") or module not in _DOCUMENTED_MODULES:
        return
    doc = _private_attribute_docs(module).get(attribute)
    if doc is None and module != "anytcpip":  # one of anytcpip's own, re-exported
        doc = _private_attribute_docs("anytcpip").get(attribute)
    type_doc = type(obj).__doc__ or ""
    if doc:
        lines[:] = doc
    elif type_doc and lines[:1] == type_doc.splitlines()[:1]:
        lines[:] = []  # not the docstring of ``str`` or ``int``


_PRIVATE_TYPE = re.compile(r"(?<![\w.])~?(?:\w+\.)*(_[A-Za-z]\w*)\b")


def _public_typehints(
    app: Sphinx, domain: str, objtype: str, contentnode: nodes.Element
) -> None:
    """Keep private helper types out of the parameter and return types.

    ``NeedData`` is shown as :data:`~anytcpip.NEED_DATA`, its one value; a
    parameter typed with a private class (``MemoryByteStream(incoming:
    _Pipe, ...)``, whose instances users only get from a factory) is shown
    without a type. Type variables (``_T``) stay as they are.
    """
    annotations = app.env.current_document.autodoc_annotations
    try:
        signature = contentnode.parent[0]
        fullname = f"{signature['module']}.{signature['fullname']}"
    except (IndexError, KeyError):
        return
    for name, hints in annotations.items():
        if name != fullname and not name.startswith(f"{fullname}."):
            continue
        for parameter, hint in list(hints.items()):
            hint = hint.replace("anytcpip._framing.NeedData", "anytcpip.NEED_DATA")
            private = [
                match.group(1)
                for match in _PRIVATE_TYPE.finditer(hint)
                if not isinstance(_find_internal(match.group(1)), typing.TypeVar)
            ]
            if private:
                del hints[parameter]
            else:
                hints[parameter] = hint


def _find_internal(name: str) -> Any:
    """Find a name in anytcpip's loaded modules (private ones included)."""
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("anytcpip") and module is not None:
            if name in vars(module):
                return vars(module)[name]
    return _MISSING


def setup(app: Sphinx) -> None:
    """Connect the handlers above."""
    app.connect("missing-reference", _resolve_missing)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _reexported_data_docs)
    # Before autodoc turns the recorded type hints into fields (priority 500).
    app.connect("object-description-transform", _public_typehints, priority=400)
