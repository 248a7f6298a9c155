"""Print the ``dev`` dependency group of pyproject.toml, one requirement a line.

For a pip older than 25.1, which cannot ``pip install --group dev`` itself:
``.ci/run`` then installs what this prints, so the pins stay in one place.
"""

from __future__ import annotations

import pathlib
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
group = sys.argv[1] if len(sys.argv) > 1 else "dev"
with pyproject.open("rb") as file:
    requirements = tomllib.load(file)["dependency-groups"][group]
for requirement in requirements:
    if isinstance(requirement, str):  # not an {include-group = ...} table
        sys.stdout.write(f"{requirement}\n")
