"""The conformance kit run over every kind of pair we ship."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme

from anytcpip import Backoff, BaseClientOrServer
from anytcpip.testing import check_connection, connected_pair
from helpers import ipv6_available


async def test_plain_ipv4() -> None:
    await check_connection(connected_pair)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_plain_ipv6() -> None:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(server_kwargs, client_kwargs, host="::1") as pair:
            yield pair

    await check_connection(make_pair)


async def test_tls() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(
            {**server_kwargs, "ssl_context": server_context},
            {**client_kwargs, "ssl_context": client_context},
        ) as pair:
            yield pair

    await check_connection(make_pair)


async def test_reconnecting_client() -> None:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        policy = Backoff(initial=0.01, maximum=0.1)
        async with connected_pair(
            server_kwargs, {**client_kwargs, "reconnect": policy}
        ) as pair:
            yield pair

    await check_connection(make_pair)


async def test_heartbeat_timeouts_on_both_sides() -> None:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        watchdog = {"heartbeat_timeout": 30.0}
        async with connected_pair(
            {**server_kwargs, **watchdog}, {**client_kwargs, **watchdog}
        ) as pair:
            yield pair

    await check_connection(make_pair)


async def test_the_kit_fails_a_broken_pair() -> None:
    """Mismatched terminators: the kit must report it, not hang or pass."""

    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(
            server_kwargs, {**client_kwargs, "terminator": b"\n"}
        ) as pair:
            yield pair

    with pytest.raises(AssertionError, match="round_trip: timed out"):
        await check_connection(make_pair, timeout=0.5)
