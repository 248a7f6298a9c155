"""Check the built wheel and sdist: what a user and a packager need is there.

Usage: ``python .ci/check_dist.py DIST_DIR`` after ``python -m build``. Fails
(exit 1, one line per problem) unless each archive carries ``LICENSE`` and
``py.typed``, the sdist carries the tests, and the metadata has the project
URLs and the classifiers of every supported Python version.
"""

from __future__ import annotations

import email
import pathlib
import sys
import tarfile
import zipfile

URLS = ("Documentation", "Source", "Changelog", "Issues")
CLASSIFIERS = (
    "Framework :: Pytest",
    "Operating System :: OS Independent",
    *(f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 14)),
)


def main(dist: pathlib.Path) -> int:
    """Check the one wheel and the one sdist in ``dist``; return 0 if complete."""
    problems: list[str] = []
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
    for wanted in ("/licenses/LICENSE", "anytcpip/py.typed"):
        if not any(name.endswith(wanted) for name in names):
            problems.append(f"{wheel.name}: no {wanted}")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    for wanted in ("/LICENSE", "/src/anytcpip/py.typed", "/tests/test_public_api.py"):
        if not any(name.endswith(wanted) for name in names):
            problems.append(f"{sdist.name}: no {wanted}")
    urls = {value.split(",")[0] for value in metadata.get_all("Project-URL", [])}
    problems += [f"METADATA: no Project-URL {url}" for url in URLS if url not in urls]
    classifiers = set(metadata.get_all("Classifier", []))
    problems += [f"METADATA: no {c!r}" for c in CLASSIFIERS if c not in classifiers]
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    if not problems:
        sys.stdout.write(f"{wheel.name} and {sdist.name}: complete\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
