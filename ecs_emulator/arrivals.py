"""When a request reached the emulator, as the kernel saw it.

The emulator counts ECS calls per second to check a budget, as ECS does at its edge. It used to
count a call when its handler thread got to it. On a busy machine (three workers, the dev
server and the emulator sharing two cores) a request can wait in the emulator's socket for a
tenth of a second or more before a thread runs: for its process to be scheduled, for the GIL,
for a full garbage collection. The calls that waited were then counted together, in the second
the emulator caught up, not the one they arrived in. So the emulator's own stalls showed up as
a client that had sent too many calls in one second.

A connection's socket carries the kernel's receive time of its data (SO_TIMESTAMPNS, on
recvmsg); the reader below keeps the time of its latest read, and the request handler takes it
as the request's arrival once the request line has been read.
"""

from __future__ import annotations

import io
import socket
import struct

# Linux's SO_TIMESTAMPNS (Python's socket module does not name it): a struct timespec with each
# receive. The first packets after it is first enabled in a process may come without one (the
# kernel turns timestamps on asynchronously); those requests count when they are handled.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


def stamp_arrivals(connection: socket.socket) -> bool:
    """Ask the kernel for receive times on `connection`; False where it cannot give them."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class StampedSocketReader(io.RawIOBase):
    """A socket's raw reads, keeping the kernel's receive time of the last one (None where
    the kernel did not give one)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self.last_received: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count, ancillary, _, _ = self._connection.recvmsg_into([buffer], _ANCILLARY_SPACE)
        self.last_received = None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack(data[: _TIMESPEC.size])
                self.last_received = seconds + nanoseconds / 1e9
        return count
