"""asyncio_compat's module functions, on plain asyncio streams (and on uvloop)."""

from __future__ import annotations

import asyncio
import socket
import unittest

import pytest

from anytcpip import asyncio_compat as tcpip
from asyncio_compat_support import TCP_TIMEOUT, ShortStruct, on_uvloop

# -- the module functions, on asyncio streams


class StreamFunctionsTestCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.accepted: asyncio.Queue[
            tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = asyncio.Queue()

        async def on_connect(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await self.accepted.put((reader, writer))

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.peer_reader, self.peer_writer = await asyncio.wait_for(
            self.accepted.get(), TCP_TIMEOUT
        )

    async def asyncTearDown(self) -> None:
        await tcpip.close_stream_writer(self.writer)
        await tcpip.close_stream_writer(self.peer_writer)
        self.server.close()
        await self.server.wait_closed()

    async def test_read_into_write_from(self) -> None:
        sent = ShortStruct(ushort_0=7, int64_0=-8, double_0=9.5, float_0=10.25)
        await tcpip.write_from(self.writer, sent, sent)
        for _ in range(2):
            received = ShortStruct()
            await asyncio.wait_for(
                tcpip.read_into(self.peer_reader, received), TCP_TIMEOUT
            )
            assert bytes(received) == bytes(sent)

    async def test_read_into_incomplete(self) -> None:
        self.writer.write(b"abc")
        await tcpip.close_stream_writer(self.writer)
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await asyncio.wait_for(
                tcpip.read_into(self.peer_reader, ShortStruct()), TCP_TIMEOUT
            )
        assert info.value.partial == b"abc"

    async def test_close_stream_writer_is_idempotent(self) -> None:
        await tcpip.close_stream_writer(self.writer)
        assert self.writer.is_closing()
        await tcpip.close_stream_writer(self.writer)
        assert await asyncio.wait_for(self.peer_reader.read(), TCP_TIMEOUT) == b""

    async def test_set_socket_options(self) -> None:
        await tcpip.set_socket_options(self.writer)
        sock = self.writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            assert idle == tcpip.KEEPALIVE_TIME


StreamFunctionsTestCaseOnUvloop = on_uvloop(StreamFunctionsTestCase)
