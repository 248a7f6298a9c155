"""The one JSON decoding wrapper: every unparsable text is a ``JSONDecodeError``.

Rationale
---------
:func:`json.loads` does not raise only :class:`json.JSONDecodeError`. Hostile
input reaches other failures: a line of nested brackets exhausts the
recursion limit (:class:`RecursionError`), and an integer longer than
``sys.get_int_max_str_digits()`` (4,300 digits by default) is a plain
:class:`ValueError`. The documented contract (``read_json``) promises
``json.JSONDecodeError`` quoting the text for *every* bad JSON message, and
callers (``read_json``, ``request_json``, the ``Correlator``'s reader) catch
that type to skip one bad message and keep the connection. So every JSON
message received from a peer is decoded here, and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SHOWN_CHARACTERS", "loads", "shown"]

SHOWN_CHARACTERS = 200
"""Characters of bad JSON quoted in an error message (the rest is elided)."""


def shown(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """Return ``repr(text)``, truncated to ``limit`` characters of ``text``.

    Parameters
    ----------
    text
        The text to quote.
    limit
        How many characters of ``text`` to keep before ``"..."``.

    Returns
    -------
    str
        The quoted text; a longer one ends with ``... (N characters)``.
    """
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} characters)"


def loads(text: str) -> Any:
    """Decode one JSON message; raise ``json.JSONDecodeError`` for any bad one.

    Parameters
    ----------
    text
        The message, already decoded to ``str`` (decode bytes first, so a bad
        encoding stays a :class:`UnicodeDecodeError`).

    Returns
    -------
    typing.Any
        The decoded value, as :func:`json.loads` returns it.

    Raises
    ------
    json.JSONDecodeError
        If ``text`` is not valid JSON, nests too deeply (``RecursionError``
        inside :mod:`json`), or holds an integer with more digits than
        ``sys.get_int_max_str_digits()`` allows (``ValueError`` inside
        :mod:`json`). The message names the reason and quotes ``text``
        (truncated to :data:`SHOWN_CHARACTERS` characters); ``doc`` is the
        whole text. The original exception is chained as ``__cause__``.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(
            f"{exc.msg} in {shown(text)}", exc.doc, exc.pos
        ) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError(
            f"JSON nested too deeply to decode in {shown(text)}", text, 0
        ) from exc
    except ValueError as exc:
        # For example "Exceeds the limit (4300 digits) for integer string
        # conversion". json.JSONDecodeError is a ValueError too, but it was
        # caught above.
        reason = str(exc).split(";")[0] or type(exc).__name__
        raise json.JSONDecodeError(f"{reason} in {shown(text)}", text, 0) from exc
