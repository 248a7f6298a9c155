"""Connection statistics, for control software to publish as telemetry."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConnectionStats", "Totals"]


@dataclass(frozen=True)
class ConnectionStats:
    """A snapshot of a client's or server's traffic and connection history.

    Counters cover the whole life of the instance, over every connection.

    Attributes
    ----------
    bytes_sent
        Bytes handed to the OS.
    bytes_received
        Bytes received from the OS.
    messages_sent
        Messages written (one per write call; one per struct for
        ``write_from``; heartbeats included).
    messages_received
        Messages read (one per successful read call; skipped heartbeats not
        included).
    connects
        Connections made (client) or clients served (server).
    disconnects
        Connections that ended.
    reconnect_attempts
        Connection attempts of a reconnecting client, successful or not;
        ``reconnect_attempts - connects`` of them failed.
    rejected_clients
        Extra clients a server turned away.
    last_received
        ``time.monotonic()`` when bytes last arrived, or None.
    round_trip_time
        The current connection's round-trip time in seconds, as the kernel's
        TCP stack measures it (smoothed over acknowledged segments, so
        heartbeats keep it fresh on an otherwise idle link); None while not
        connected, on an in-memory connection, or where the OS does not
        report it (it does on Linux).
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    connects: int = 0
    disconnects: int = 0
    reconnect_attempts: int = 0
    rejected_clients: int = 0
    last_received: float | None = None
    round_trip_time: float | None = None


@dataclass
class Totals:
    """Mutable totals of a client or server (internal).

    The counts of the connections before the last one (``stats`` reads the
    last one's live), and the connection history.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    connects: int = 0
    disconnects: int = 0
    last_received: float | None = None
