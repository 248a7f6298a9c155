"""The exception types: hierarchy, attributes, messages, pickling."""

from __future__ import annotations

import pickle

import pytest

import anytcpip
from anytcpip import (
    AnyTcpIpError,
    BadMessageError,
    MessageLengthError,
    RequestTimeoutError,
    UnknownMessageError,
)


def test_every_exception_lives_in_one_module() -> None:
    import anytcpip._exceptions as module

    for name in anytcpip.__all__:
        obj = getattr(anytcpip, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert getattr(module, name) is obj, name


def test_bad_messages_share_a_base_that_says_whether_to_go_on() -> None:
    for cls in (UnknownMessageError, MessageLengthError):
        assert issubclass(cls, BadMessageError)
    assert issubclass(BadMessageError, AnyTcpIpError)
    assert issubclass(BadMessageError, ValueError)  # as before the base existed
    error = BadMessageError("bad", b"\x01", resynchronised=True)
    assert (str(error), error.data, error.resynchronised) == ("bad", b"\x01", True)


@pytest.mark.parametrize(
    "error",
    [
        BadMessageError("bad", b"\x01\x02", False),
        UnknownMessageError("unknown id 9", 9, b"\x09\x00", True),
        MessageLengthError("too long", 1, b"\x01\x00", False, 12, 8),
        RequestTimeoutError("late", {"id": 1}, 0.5, True),
    ],
    ids=lambda error: type(error).__name__,
)
def test_exceptions_pickle_with_their_attributes(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_request_timeout_is_a_timeout_error() -> None:
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(RequestTimeoutError, AnyTcpIpError)
