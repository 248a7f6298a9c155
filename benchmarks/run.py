"""Side-by-side throughput and latency of anytcpip and the alternatives.

Every measurement runs a server process and a client process over loopback,
both using the implementation under test. Implementations run interleaved
(A B C A B C ...) and repeatedly; the table shows medians, min..max, and ratios
to asyncio streams and to raw blocking sockets. Every scenario verifies what
arrived (counts and CRC32 checksums), so a broken implementation cannot look
fast. Results also go to JSON.

Run it::

    python benchmarks/run.py                # full: 3 repeats, about 3 minutes
    python benchmarks/run.py --quick        # 1 repeat, small counts, < 1 minute
    python benchmarks/run.py --impls anytcpip-asyncio,anytcpip-asyncio@again
    python benchmarks/run.py --smoke        # CI: does everything work? < 30 s

``impl@label`` runs an implementation again under another name, to show the
noise between two identical runs.

lsst.ts.tcpip (the library anytcpip replaces) is an optional implementation,
``lsst-tcpip``: it is not a dependency, and it runs only when the directory
holding its ``lsst`` package (``python/`` in a checkout of
``lsst-ts/ts_tcpip``) is given with ``--lsst-path`` or the environment
variable ``ANYTCPIP_BENCH_LSST_PATH``. Its one other dependency,
``lsst.ts.utils``, is replaced by the small stand-in in
``benchmarks/_lsst_utils_standin.py`` when it is not installed.

``--smoke`` runs every implementation on every scenario with tiny counts,
verifying each result, and exits non-zero if any fails; it measures nothing
worth reading and judges no target.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import ctypes
import importlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

IMPLS = [
    "raw-sockets",
    "asyncio-streams",
    "uvloop-streams",
    "anyio-asyncio",
    "anyio-trio",
    "anytcpip-asyncio",
    "anytcpip-uvloop",
    "anytcpip-trio",
]
LSST = "lsst-tcpip"
LSST_PATH_ENV = "ANYTCPIP_BENCH_LSST_PATH"
SCENARIOS = ["A", "B", "Bx", "C", "D", "Dx", "E"]
FULL_N = {
    "A": 4096,
    "B": 100_000,
    "Bx": 300_000,
    "C": 5000,
    "D": 100_000,
    "Dx": 300_000,
    "E": 1000,
}
QUICK_N = {
    "A": 1024,
    "B": 20_000,
    "Bx": 50_000,
    "C": 1000,
    "D": 20_000,
    "Dx": 50_000,
    "E": 200,
}
SMOKE_N = {
    "A": 16,
    "B": 300,
    "Bx": 1000,
    "C": 50,
    "D": 300,
    "Dx": 1000,
    "E": 10,
}
UNITS = {
    "A": "MB/s",
    "B": "msg/s",
    "Bx": "msg/s",
    "C": "rt/s",
    "D": "msg/s",
    "Dx": "msg/s",
    "E": "cycles/s",
}
CHUNK = bytes(range(256)) * 256  # 64 KiB
BATCH = 100


class Sample(ctypes.Structure):
    """A 64-byte telemetry struct."""

    _fields_ = [("counter", ctypes.c_uint64), ("values", ctypes.c_double * 7)]


def line(i: int) -> str:
    return f"telemetry {i} 3.14159 2.71828 ok"


def expected(scenario: str, n: int) -> dict[str, int]:
    """What the receiver must report for ``n`` messages."""
    if scenario == "A":
        crc = 0
        for _ in range(n):
            crc = zlib.crc32(CHUNK, crc)
        return {"count": n * len(CHUNK), "check": crc}
    if scenario in ("B", "Bx", "C"):
        crc = 0
        for i in range(n):
            crc = zlib.crc32(line(i).encode(), crc)
        return {"count": n, "check": crc}
    if scenario in ("D", "Dx"):
        return {"count": n, "check": n * (n - 1) // 2}
    return {"count": n, "check": n}


# -- implementations -----------------------------------------------------------


class Conn:
    """What a scenario needs from a connection (async flavour)."""

    async def send(self, data: bytes) -> None: ...
    async def send_line(self, text: str) -> None: ...
    async def send_struct(self, sample: Sample) -> None: ...
    async def recv_line(self) -> str: ...
    async def recv_struct(self, sample: Sample) -> None: ...
    async def recv_some(self) -> bytes: ...
    async def close(self) -> None: ...


class AnytcpipConn(Conn):
    def __init__(self, conn: Any) -> None:
        self.c = conn

    async def send(self, data: bytes) -> None:
        await self.c.write(data)

    async def send_line(self, text: str) -> None:
        await self.c.write_str(text)

    async def send_struct(self, sample: Sample) -> None:
        await self.c.write_from(sample)

    async def recv_line(self) -> str:
        return await self.c.read_str()  # type: ignore[no-any-return]

    async def recv_struct(self, sample: Sample) -> None:
        await self.c.read_into(sample)

    async def recv_some(self) -> bytes:
        return await self.c.read(1 << 20)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.c.drain()


class StreamsConn(Conn):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.r, self.w = reader, writer

    async def send(self, data: bytes) -> None:
        self.w.write(data)
        await self.w.drain()

    async def send_line(self, text: str) -> None:
        await self.send(text.encode() + b"\r\n")

    async def send_struct(self, sample: Sample) -> None:
        await self.send(bytes(sample))

    async def recv_line(self) -> str:
        return (await self.r.readuntil(b"\r\n"))[:-2].decode()

    async def recv_struct(self, sample: Sample) -> None:
        data = await self.r.readexactly(ctypes.sizeof(sample))
        ctypes.memmove(ctypes.addressof(sample), data, len(data))

    async def recv_some(self) -> bytes:
        return await self.r.read(1 << 20)

    async def close(self) -> None:
        self.w.close()
        await self.w.wait_closed()


class AnyioConn(Conn):
    def __init__(self, stream: Any) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        self.s = stream
        self.b = BufferedByteReceiveStream(stream)

    async def send(self, data: bytes) -> None:
        await self.s.send(data)

    async def send_line(self, text: str) -> None:
        await self.s.send(text.encode() + b"\r\n")

    async def send_struct(self, sample: Sample) -> None:
        await self.s.send(bytes(sample))

    async def recv_line(self) -> str:
        return (await self.b.receive_until(b"\r\n", 65536)).decode()

    async def recv_struct(self, sample: Sample) -> None:
        data = await self.b.receive_exactly(ctypes.sizeof(sample))
        ctypes.memmove(ctypes.addressof(sample), data, len(data))

    async def recv_some(self) -> bytes:
        import anyio

        try:
            return await self.b.receive(1 << 20)  # type: ignore[no-any-return]
        except anyio.EndOfStream:
            return b""

    async def close(self) -> None:
        await self.s.aclose()


class LsstConn(Conn):
    """lsst.ts.tcpip's client or server (asyncio streams, drain per write)."""

    def __init__(self, conn: Any) -> None:
        self.c = conn

    async def send(self, data: bytes) -> None:
        await self.c.write(data)

    async def send_line(self, text: str) -> None:
        await self.c.write_str(text)

    async def send_struct(self, sample: Sample) -> None:
        await self.c.write_from(sample)

    async def recv_line(self) -> str:
        return await self.c.read_str()  # type: ignore[no-any-return]

    async def recv_struct(self, sample: Sample) -> None:
        await self.c.read_into(sample)

    async def recv_some(self) -> bytes:
        return await self.c.read(1 << 20)  # type: ignore[no-any-return]

    async def close(self) -> None:
        pass  # every write drained already; the owner closes


# -- scenarios (async) -----------------------------------------------------------


async def receive(conn: Conn, scenario: str, n: int) -> dict[str, Any]:
    start = None
    if scenario == "A":
        total = crc = 0
        while total < n * len(CHUNK):
            data = await conn.recv_some()
            if not data:
                break
            start = start or time.perf_counter()
            total += len(data)
            crc = zlib.crc32(data, crc)
        count, check = total, crc
    elif scenario in ("B", "Bx"):
        crc = 0
        text = await conn.recv_line()
        start = time.perf_counter()
        crc = zlib.crc32(text.encode(), crc)
        for _ in range(n - 1):
            crc = zlib.crc32((await conn.recv_line()).encode(), crc)
        count, check = n, crc
    else:  # D, Dx
        sample = Sample()
        await conn.recv_struct(sample)
        start = time.perf_counter()
        total = sample.counter
        for _ in range(n - 1):
            await conn.recv_struct(sample)
            total += sample.counter
        count, check = n, total
    return {
        "elapsed": time.perf_counter() - (start or 0),
        "count": count,
        "check": check,
    }


async def send(conn: Conn, scenario: str, n: int) -> None:
    if scenario == "A":
        for _ in range(n):
            await conn.send(CHUNK)
    elif scenario == "B":
        for i in range(n):
            await conn.send_line(line(i))
    elif scenario == "Bx":
        for first in range(0, n, BATCH):
            block = range(first, min(n, first + BATCH))
            await conn.send(b"".join(line(i).encode() + b"\r\n" for i in block))
    elif scenario == "D":
        sample = Sample()
        for i in range(n):
            sample.counter = i
            await conn.send_struct(sample)
    elif scenario == "Dx":
        for first in range(0, n, BATCH):
            block = range(first, min(n, first + BATCH))
            await conn.send(b"".join(bytes(Sample(i)) for i in block))
    await conn.close()


async def echo_client(conn: Conn, n: int) -> dict[str, Any]:
    crc = 0
    start = time.perf_counter()
    for i in range(n):
        await conn.send_line(line(i))
        crc = zlib.crc32((await conn.recv_line()).encode(), crc)
    elapsed = time.perf_counter() - start
    await conn.close()
    return {"elapsed": elapsed, "count": n, "check": crc}


async def echo_server(conn: Conn, n: int) -> None:
    for _ in range(n):
        await conn.send_line(await conn.recv_line())


# -- per-implementation plumbing ---------------------------------------------------


def report(result: dict[str, Any]) -> None:
    result["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


def announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


def anytcpip_run(impl: str, func: Callable[..., Awaitable[None]], *args: Any) -> None:
    import anyio

    backend, options = "asyncio", {}
    if impl.endswith("trio"):
        backend = "trio"
    elif impl.endswith("uvloop"):
        options = {"use_uvloop": True}
    anyio.run(func, *args, backend=backend, backend_options=options)


async def anytcpip_server(scenario: str, n: int) -> None:
    import anyio

    from anytcpip import OneClientServer

    if scenario == "E":
        seen = 0
        done = anyio.Event()

        async def count(server: Any) -> None:
            nonlocal seen
            if server.connected:
                seen += 1
            if seen + server.rejected_count >= n:
                done.set()

        async with OneClientServer(port=0, connect_callback=count) as server:
            announce(server.port)
            await done.wait()
            report({"elapsed": 0, "count": n, "check": seen + server.rejected_count})
        return
    async with OneClientServer(port=0, max_line_length=1 << 16) as server:
        announce(server.port)
        await server.wait_connected()
        conn = AnytcpipConn(server)
        if scenario == "C":
            await echo_server(conn, n)
            await server.drain()
        else:
            report(await receive(conn, scenario, n))


async def anytcpip_client(scenario: str, n: int, port: int) -> None:
    from anytcpip import Client

    if scenario == "E":
        start = time.perf_counter()
        for _ in range(n):
            async with Client("127.0.0.1", port):
                pass
        report({"elapsed": time.perf_counter() - start, "count": n, "check": n})
        return
    async with Client("127.0.0.1", port) as client:
        if scenario == "C":
            report(await echo_client(AnytcpipConn(client), n))
        else:
            await send(AnytcpipConn(client), scenario, n)


async def streams_server(scenario: str, n: int) -> None:
    connected: asyncio.Queue[StreamsConn] = asyncio.Queue()
    seen = 0
    done = asyncio.Event()

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal seen
        if scenario == "E":
            seen += 1
            writer.close()
            if seen >= n:
                done.set()
            return
        await connected.put(StreamsConn(reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    announce(server.sockets[0].getsockname()[1])
    if scenario == "E":
        await done.wait()
        report({"elapsed": 0, "count": n, "check": seen})
    else:
        conn = await connected.get()
        if scenario == "C":
            await echo_server(conn, n)
            await conn.w.drain()
        else:
            report(await receive(conn, scenario, n))
        conn.w.close()
    server.close()


async def streams_client(scenario: str, n: int, port: int) -> None:
    if scenario == "E":
        start = time.perf_counter()
        for _ in range(n):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
        report({"elapsed": time.perf_counter() - start, "count": n, "check": n})
        return
    conn = StreamsConn(*await asyncio.open_connection("127.0.0.1", port))
    if scenario == "C":
        report(await echo_client(conn, n))
    else:
        await send(conn, scenario, n)


async def anyio_server(scenario: str, n: int) -> None:
    import anyio

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        announce(listener.extra(anyio.abc.SocketAttribute.local_port))
        accept = listener.listeners[0].accept  # type: ignore[attr-defined]
        if scenario == "E":
            for _ in range(n):
                await (await accept()).aclose()
            report({"elapsed": 0, "count": n, "check": n})
            return
        conn = AnyioConn(await accept())
        if scenario == "C":
            await echo_server(conn, n)
        else:
            report(await receive(conn, scenario, n))
        await conn.close()


async def anyio_client(scenario: str, n: int, port: int) -> None:
    import anyio

    if scenario == "E":
        start = time.perf_counter()
        for _ in range(n):
            await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
        report({"elapsed": time.perf_counter() - start, "count": n, "check": n})
        return
    conn = AnyioConn(await anyio.connect_tcp("127.0.0.1", port))
    if scenario == "C":
        report(await echo_client(conn, n))
    else:
        await send(conn, scenario, n)


def lsst_tcpip() -> Any:
    """Import lsst.ts.tcpip from the path given (see the module docstring)."""
    path = os.environ.get(LSST_PATH_ENV)
    if not path:
        raise RuntimeError(f"lsst-tcpip needs --lsst-path or {LSST_PATH_ENV}")
    sys.path.insert(0, os.path.abspath(path))
    try:
        importlib.import_module("lsst.ts.utils")
    except ImportError:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _lsst_utils_standin

        _lsst_utils_standin.install()
    return importlib.import_module("lsst.ts.tcpip")


async def lsst_server(scenario: str, n: int) -> None:
    import logging

    tcpip = lsst_tcpip()
    log = logging.getLogger("lsst-bench")
    log.setLevel(logging.CRITICAL)  # it logs every rejected client as an error
    if scenario == "E":
        seen = 0
        done = asyncio.Event()

        base: Any = tcpip.OneClientServer

        class CountingServer(base):  # type: ignore[misc]
            async def _set_reader_writer(self, reader: Any, writer: Any) -> None:
                nonlocal seen
                seen += 1  # accepted, or rejected if it has not noticed yet
                await super()._set_reader_writer(reader, writer)
                if seen >= n:
                    done.set()

        server = CountingServer(host="127.0.0.1", port=0, log=log)
        await server.start_task
        announce(server.port)
        await done.wait()
        report({"elapsed": 0, "count": n, "check": seen})
        await server.close()
        return
    server = tcpip.OneClientServer(host="127.0.0.1", port=0, log=log)
    await server.start_task
    announce(server.port)
    await server.connected_task
    conn = LsstConn(server)
    if scenario == "C":
        await echo_server(conn, n)
    else:
        report(await receive(conn, scenario, n))
    await server.close()


async def lsst_client(scenario: str, n: int, port: int) -> None:
    import logging

    tcpip = lsst_tcpip()
    log = logging.getLogger("lsst-bench")
    log.setLevel(logging.CRITICAL)
    if scenario == "E":
        start = time.perf_counter()
        for _ in range(n):
            client = tcpip.Client(host="127.0.0.1", port=port, log=log)
            await client.start_task
            await client.close()
        report({"elapsed": time.perf_counter() - start, "count": n, "check": n})
        return
    client = tcpip.Client(host="127.0.0.1", port=port, log=log)
    await client.start_task
    if scenario == "C":
        report(await echo_client(LsstConn(client), n))
    else:
        await send(LsstConn(client), scenario, n)
    await client.close()


def run_asyncio(coro: Any, uvloop: bool) -> None:
    if not uvloop:
        asyncio.run(coro)
        return
    import uvloop as uv

    loop = uv.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


class RawReader:
    """A buffered reader over a blocking socket: the practical limit."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def fill(self) -> bool:
        data = self.sock.recv(1 << 20)
        self.buf += data
        return bool(data)

    def line(self) -> str:
        while (index := self.buf.find(b"\r\n")) < 0:
            if not self.fill():
                raise EOFError
        text = self.buf[:index].decode()
        del self.buf[: index + 2]
        return text

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self.fill():
                raise EOFError
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


def raw_server(scenario: str, n: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    announce(listener.getsockname()[1])
    if scenario == "E":
        for _ in range(n):
            listener.accept()[0].close()
        report({"elapsed": 0, "count": n, "check": n})
        return
    sock, _ = listener.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = RawReader(sock)
    start = None
    if scenario == "A":
        total = crc = 0
        while total < n * len(CHUNK):
            data = sock.recv(1 << 20)
            if not data:
                break
            start = start or time.perf_counter()
            total += len(data)
            crc = zlib.crc32(data, crc)
        result = {"count": total, "check": crc}
    elif scenario in ("B", "Bx"):
        crc = zlib.crc32(reader.line().encode())
        start = time.perf_counter()
        for _ in range(n - 1):
            crc = zlib.crc32(reader.line().encode(), crc)
        result = {"count": n, "check": crc}
    elif scenario == "C":
        for _ in range(n):
            sock.sendall(reader.line().encode() + b"\r\n")
        sock.close()
        return
    else:
        sample = Sample()
        size = ctypes.sizeof(Sample)
        ctypes.memmove(ctypes.addressof(sample), reader.exactly(size), size)
        start = time.perf_counter()
        total = sample.counter
        for _ in range(n - 1):
            ctypes.memmove(ctypes.addressof(sample), reader.exactly(size), size)
            total += sample.counter
        result = {"count": n, "check": total}
    report({"elapsed": time.perf_counter() - (start or 0), **result})
    sock.close()


def raw_client(scenario: str, n: int, port: int) -> None:
    if scenario == "E":
        start = time.perf_counter()
        for _ in range(n):
            socket.create_connection(("127.0.0.1", port)).close()
        report({"elapsed": time.perf_counter() - start, "count": n, "check": n})
        return
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if scenario == "A":
        for _ in range(n):
            sock.sendall(CHUNK)
    elif scenario == "B":
        for i in range(n):
            sock.sendall(line(i).encode() + b"\r\n")
    elif scenario == "Bx":
        for first in range(0, n, BATCH):
            block = range(first, min(n, first + BATCH))
            sock.sendall(b"".join(line(i).encode() + b"\r\n" for i in block))
    elif scenario == "C":
        reader = RawReader(sock)
        crc = 0
        start = time.perf_counter()
        for i in range(n):
            sock.sendall(line(i).encode() + b"\r\n")
            crc = zlib.crc32(reader.line().encode(), crc)
        report({"elapsed": time.perf_counter() - start, "count": n, "check": crc})
    elif scenario == "D":
        sample = Sample()
        for i in range(n):
            sample.counter = i
            sock.sendall(bytes(sample))
    elif scenario == "Dx":
        for first in range(0, n, BATCH):
            block = range(first, min(n, first + BATCH))
            sock.sendall(b"".join(bytes(Sample(i)) for i in block))
    sock.close()


def run_role(role: str, impl: str, scenario: str, n: int, port: int) -> None:
    if impl == "raw-sockets":
        raw_server(scenario, n) if role == "server" else raw_client(scenario, n, port)
    elif impl in ("asyncio-streams", "uvloop-streams"):
        coro = streams_server(scenario, n) if role == "server" else None
        run_asyncio(coro or streams_client(scenario, n, port), impl == "uvloop-streams")
    elif impl == LSST:
        coro = lsst_server(scenario, n) if role == "server" else None
        run_asyncio(coro or lsst_client(scenario, n, port), uvloop=False)
    elif impl.startswith("anyio-"):
        func = anyio_server if role == "server" else anyio_client
        args = (scenario, n) if role == "server" else (scenario, n, port)
        anytcpip_run(impl, func, *args)
    else:
        func = anytcpip_server if role == "server" else anytcpip_client
        args = (scenario, n) if role == "server" else (scenario, n, port)
        anytcpip_run(impl, func, *args)


# -- the parent: schedule, verify, tabulate ----------------------------------------


def measure(impl: str, scenario: str, n: int, timeout: float = 300) -> dict[str, Any]:
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--impl", impl, "--scenario", scenario, "--n", str(n)]
    server = subprocess.Popen(
        [*me, "--role", "server", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if not first.startswith("PORT "):
            raise RuntimeError(
                f"server did not start: {first!r} {server.stderr.read()}"
            )  # type: ignore[union-attr]
        port = first.split()[1]
        client = subprocess.run(
            [*me, "--role", "client", *common, "--port", port],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if client.returncode:
            raise RuntimeError(f"client failed: {client.stderr[-800:]}")
        out, err = server.communicate(timeout=timeout)
        if server.returncode:
            raise RuntimeError(f"server failed: {err[-800:]}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = [
        json.loads(x) for x in (out + client.stdout).splitlines() if x.startswith("{")
    ]
    server_result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    result = lines[-1] if scenario in ("C", "E") else server_result
    want = expected(scenario, n)
    if (result.get("count"), result.get("check")) != (want["count"], want["check"]):
        raise RuntimeError(f"wrong data: got {result}, expected {want}")
    amount = n * len(CHUNK) / 1e6 if scenario == "A" else n
    return {
        "rate": amount / result["elapsed"],
        "rss_kb": server_result.get("rss_kb", lines[0].get("rss_kb") if lines else 0),
    }


TARGETS: list[tuple[str, str, str, float, str]] = [
    # (scenario, impl, baseline, ratio, description): issue 13's table
    ("C", "anytcpip-asyncio", "asyncio-streams", 1.0, "C on asyncio"),
    ("C", "anytcpip-asyncio", LSST, 1.0, "C on asyncio vs lsst"),
    ("C", "anytcpip-uvloop", "uvloop-streams", 1.0, "C on uvloop"),
    ("C", "anytcpip-trio", "anyio-trio", 0.9, "C on trio"),
    ("A", "anytcpip-asyncio", "anyio-asyncio", 0.95, "A on asyncio"),
    ("A", "anytcpip-trio", "anyio-trio", 0.9, "A on trio"),
    ("A", "anytcpip-uvloop", "anytcpip-asyncio", 0.95, "A on uvloop"),
    ("Bx", "anytcpip-asyncio", "asyncio-streams", 1.1, "Bx on asyncio"),
    ("Dx", "anytcpip-asyncio", "asyncio-streams", 1.1, "Dx on asyncio"),
    ("Bx", "anytcpip-trio", "anyio-trio", 1.0, "Bx on trio"),
    ("B", "anytcpip-asyncio", "asyncio-streams", 2.0, "B on asyncio"),
    ("D", "anytcpip-asyncio", "asyncio-streams", 2.0, "D on asyncio"),
    ("E", "anytcpip-asyncio", "asyncio-streams", 0.5, "E on asyncio"),
    ("E", "anytcpip-asyncio", LSST, 1.0, "E on asyncio vs lsst"),
]


def smoke(impls: list[str], scenarios: list[str]) -> int:
    """Run each implementation on each scenario once, tiny; 1 if any fails."""
    started = time.perf_counter()
    jobs = [(label, scenario) for scenario in scenarios for label in impls]

    def one(job: tuple[str, str]) -> str | None:
        label, scenario = job
        try:
            measure(label.split("@")[0], scenario, SMOKE_N[scenario], timeout=60)
        except Exception as exc:
            return str(exc)
        return None

    # Each job is two short-lived processes; run as many at once as there
    # are cores (the counts are too small for the figures to mean anything).
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        errors = list(pool.map(one, jobs))
    failed = 0
    for (label, scenario), error in zip(jobs, errors, strict=True):
        verdict = "ok" if error is None else f"FAIL: {error[-300:]}"
        failed += error is not None
        print(f"{scenario:3} {label:22} {verdict}")
    print(
        f"smoke: {len(jobs) - failed}/{len(jobs)} passed "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["server", "client"], help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat, small counts")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check that every implementation works (tiny counts, no figures)",
    )
    parser.add_argument("--json", default="benchmarks/results/latest.json")
    parser.add_argument(
        "--lsst-path",
        default=os.environ.get(LSST_PATH_ENV),
        help="directory holding lsst.ts.tcpip's lsst package: adds lsst-tcpip",
    )
    args = parser.parse_args()
    if args.lsst_path:
        os.environ[LSST_PATH_ENV] = args.lsst_path  # for the child processes
        if args.impls == ",".join(IMPLS):
            args.impls += "," + LSST
    elif LSST in args.impls.split(","):
        parser.error(f"{LSST} needs --lsst-path or {LSST_PATH_ENV}")
    if args.role:
        run_role(args.role, args.impl, args.scenario, args.n, args.port)
        return 0
    if args.smoke:
        return smoke(args.impls.split(","), args.scenarios.split(","))
    counts = QUICK_N if args.quick else FULL_N
    repeat = 1 if args.quick else args.repeat
    impls = args.impls.split(",")
    scenarios = args.scenarios.split(",")
    rates: dict[tuple[str, str], list[float]] = {}
    rss: dict[tuple[str, str], int] = {}
    failures: dict[tuple[str, str], str] = {}
    started = time.perf_counter()
    for round_ in range(repeat):
        for scenario in scenarios:
            for label in impls:
                impl = label.split("@")[0]
                key = (scenario, label)
                if key in failures:
                    continue
                try:
                    result = measure(impl, scenario, counts[scenario])
                except Exception as exc:  # report and go on with the others
                    failures[key] = str(exc)
                    continue
                rates.setdefault(key, []).append(result["rate"])
                rss[key] = max(rss.get(key, 0), int(result["rss_kb"]))
        print(
            f"round {round_ + 1}/{repeat} done ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )

    def median(scenario: str, label: str) -> float | None:
        values = rates.get((scenario, label))
        return statistics.median(values) if values else None

    for scenario in scenarios:
        print(
            f"\n== {scenario} ({UNITS[scenario]}), n={counts[scenario]}, "
            f"{repeat} run(s)"
        )
        print(
            f"{'implementation':22} {'median':>12} {'min..max':>23} "
            f"{'/streams':>9} {'/raw':>7} {'rss MB':>7}"
        )
        base = median(scenario, "asyncio-streams")
        raw = median(scenario, "raw-sockets")
        for label in impls:
            key = (scenario, label)
            if key in failures:
                print(f"{label:22} FAIL: {failures[key][:150]}")
                continue
            value = median(scenario, label)
            if value is None:
                continue
            low, high = min(rates[key]), max(rates[key])
            vs_base = f"{value / base:.2f}x" if base else "-"
            vs_raw = f"{value / raw:.2f}x" if raw else "-"
            print(
                f"{label:22} {value:12,.0f} {low:11,.0f}..{high:<11,.0f} "
                f"{vs_base:>9} {vs_raw:>7} {rss[key] / 1024:7.1f}"
            )
    print("\n== targets (issue 13), each next to its measured ratio")
    verdicts = []
    for scenario, impl, baseline, ratio, text in TARGETS:
        value, base = median(scenario, impl), median(scenario, baseline)
        if value is None or base is None:
            verdict, shown = "n.a.", "-"
        else:
            shown = f"{value / base:.2f}x"
            verdict = "PASS" if value / base >= ratio else "FAIL"
        verdicts.append({"target": text, "ratio": shown, "verdict": verdict})
        print(
            f"{text:28} {impl} / {baseline} = {shown:>6} (>= {ratio:.2f}x)  {verdict}"
        )
    for scenario in ("A", "Bx"):
        ours, theirs = (
            rss.get((scenario, "anytcpip-asyncio")),
            rss.get((scenario, "asyncio-streams")),
        )
        if ours and theirs:
            verdict = "PASS" if ours < 2 * theirs else "FAIL"
            print(
                f"{'RSS ' + scenario + ' < 2x streams':28} {ours / 1024:.1f} MB vs "
                f"{theirs / 1024:.1f} MB  {verdict}"
            )
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as file:
        json.dump(
            {
                "counts": counts,
                "repeat": repeat,
                "rates": {f"{s}/{i}": v for (s, i), v in rates.items()},
                "rss_kb": {f"{s}/{i}": v for (s, i), v in rss.items()},
                "failures": {f"{s}/{i}": v for (s, i), v in failures.items()},
                "targets": verdicts,
            },
            file,
            indent=2,
        )
    print(f"\nwrote {args.json} in {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
