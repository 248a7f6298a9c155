"""Sphinx configuration for the anytcpip documentation."""

from __future__ import annotations

import anytcpip

project = "anytcpip"
author = "anytcpip developers"
copyright = "2026, anytcpip developers"
release = anytcpip.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = f"anytcpip {release}"
