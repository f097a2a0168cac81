"""A pipelining Redis (RESP2) client: one connection, every command written as it is issued.

redis-py's asyncio client spends about 0.2 ms of CPU per command (a pool checkout, a timer per
read, several event-loop turns), more than a whole cache hit costs in this gateway. Redis answers
a connection's commands in order, so one connection can carry every concurrent request's commands:
each is packed (hiredis), buffered until the event loop's next turn and written with the others
in one write; replies are parsed (hiredis) and handed to the waiting futures in order. Commands
issued together (``asyncio.gather``) therefore share one round trip. bench/redis_client_bench.py
measures both clients.

Failures surface as :class:`ServerUnavailable`: a refused or lost connection fails every command in
flight, and the next command connects again; a command without a reply within ``timeout_s``
closes the connection, since every later reply on it is stuck behind that one.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

Buffer = bytes | memoryview
"""A value sent as it is: bytes, or a view of a large one (a snapshot's columns) not copied."""

STREAM_SLICE = 1 << 20  # bytes written at a time by a streamed command

# hiredis's stub types the command as a one-element tuple; it takes any number of parts.
_pack = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)


def _pack_buffers(command: tuple[str | bytes | int | float | list[Buffer], ...]) -> list[Buffer]:
    """RESP for a command some of whose values are lists of buffers, as a list of buffers."""
    packed: list[Buffer] = [b"*%d\r\n" % len(command)]
    for argument in command:
        if isinstance(argument, list):
            chunks = argument
        elif isinstance(argument, bytes):
            chunks = [argument]
        elif isinstance(argument, str):
            chunks = [argument.encode()]
        else:
            chunks = [repr(argument).encode()]
        packed.append(b"$%d\r\n" % sum(len(chunk) for chunk in chunks))
        packed.extend(chunks)
        packed.append(b"\r\n")
    return packed


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen: nobody awaits it any more."""
    if not future.cancelled():
        future.exception()


class RespError(Exception):
    """Anything that kept a command from its reply."""


class ReplyError(RespError):
    """An error reply from the server (a wrong type, a script error); the connection is fine."""


class ServerUnavailable(RespError):
    """No connection, a lost one, or no reply in time."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, read from a ``redis://`` or ``rediss://`` (TLS) URL."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"REDIS_URL {url!r}: scheme must be redis or rediss")
        if parts.query:
            raise ValueError(
                f"REDIS_URL {url!r}: query options ({parts.query}) are not supported: give the "
                "database as the path, TLS as rediss://"
            )
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"REDIS_URL {url!r}: the path must be a database number, not {path!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(path or 0),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )


@dataclass(frozen=True)
class Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole only when the server lacks it."""

    source: str

    @cached_property
    def sha(self) -> str:
        """Computed once: every reservation and settlement sends it."""
        return hashlib.sha1(self.source.encode()).hexdigest()


class _Connection(asyncio.Protocol):
    """One socket; futures wait for replies in the order their commands were written."""

    def __init__(self, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outgoing: list[Buffer] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._streaming = False
        self._stream_lock = asyncio.Lock()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def send(self, packed: list[Buffer]) -> asyncio.Future[Any]:
        if self.closed:
            raise ServerUnavailable("the connection to the store is closed")
        future = self._loop.create_future()
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.extend(packed)
        self._waiting.append((future, self._loop.time()))
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._timeout_s, self._check_overdue)
        return future

    def _flush(self) -> None:
        if self._streaming:
            return  # written when the stream ends, after it
        if self._transport is not None and not self.closed and self._outgoing:
            self._transport.writelines(self._outgoing)
        self._outgoing = []

    async def stream(self, packed: list[Buffer]) -> asyncio.Future[Any]:
        """Send a large command in slices as the socket drains, so it is never copied whole
        into the transport's buffer (an 80 MB snapshot would triple the process's memory);
        commands sent meanwhile are written after it, streams one after the other. A stream
        left half-written (its caller cancelled) would make the server read what follows as its
        value, so it closes the connection."""
        async with self._stream_lock:
            self._flush()
            future = self.send([])
            self._streaming = True
            written = False
            try:
                for part in packed:
                    view = memoryview(part)
                    for start in range(0, len(view), STREAM_SLICE):
                        await self._writable.wait()
                        if self.closed or self._transport is None:
                            return future
                        self._transport.write(view[start : start + STREAM_SLICE])
                written = True
            finally:
                self._streaming = False
                if written:
                    self._flush()
                else:
                    future.add_done_callback(_retrieve)
                    self._fail(ServerUnavailable("a large value was left half-written"))
            return future

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(ServerUnavailable(f"unreadable reply from the store: {exc}"))
                return
            if reply is False:
                return
            if not self._waiting:
                self._fail(ServerUnavailable("the store sent a reply nobody asked for"))
                return
            future, _ = self._waiting.popleft()
            if not future.done():  # its caller may have been cancelled; the reply is dropped
                future.set_result(reply)

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        due = self._waiting[0][1] + self._timeout_s
        if self._loop.time() >= due:
            self._fail(ServerUnavailable(f"the store did not answer within {self._timeout_s:g} s"))
        else:
            self._watchdog = self._loop.call_at(due, self._check_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ServerUnavailable(f"the connection to the store was lost: {exc or 'closed'}"))

    def _fail(self, error: ServerUnavailable) -> None:
        self.closed = True
        self._writable.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._fail(ServerUnavailable("the client was closed"))


class RespClient:
    """Commands as tuples of str, bytes or numbers; replies as hiredis gives them (bytes, int,
    lists, None)."""

    def __init__(self, url: str, timeout_s: float = 5.0, connect_timeout_s: float = 5.0) -> None:
        self.endpoint = Endpoint.from_url(url)
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._closed = False

    async def execute(self, *command: str | bytes | int | float | list[Buffer]) -> Any:
        """Run one command. An argument given as a list of buffers is sent as one value without
        joining them (a snapshot's tens of MB are not copied on the way)."""
        connection = self._connection
        if connection is None or connection.closed:
            if self._closed:
                raise ServerUnavailable("the client was closed")
            connection = await self._connect()
        if any(isinstance(argument, list) for argument in command):
            reply = await (await connection.stream(_pack_buffers(command)))
        else:
            reply = await connection.send([_pack(command)])
        if isinstance(reply, ReplyError):
            if str(reply).startswith("READONLY"):
                # A failover demoted this node: the next command connects afresh, which
                # resolves the endpoint's name again and reaches the new primary.
                connection.close()
            raise reply
        return reply

    async def run_script(
        self, script: Script, keys: list[str], args: list[str | bytes | int | float]
    ) -> Any:
        """EVALSHA; if the server does not know the script yet (a restart, a new node), EVAL."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def _connect(self) -> _Connection:
        """One connection attempt at a time; every caller waiting meanwhile shares its outcome."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if attempt.cancelled() or attempt.exception() is not None:
            return
        if self._closed:
            attempt.result().close()
        else:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        endpoint, loop = self.endpoint, asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self._timeout_s),
                    endpoint.host,
                    endpoint.port,
                    ssl=ssl.create_default_context() if endpoint.tls else None,
                ),
                self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise ServerUnavailable(
                f"cannot connect to the store at {endpoint.host}:{endpoint.port}: {exc}"
            ) from exc
        handshake = []
        if endpoint.password is not None:
            credentials = (
                (endpoint.username, endpoint.password)
                if endpoint.username
                else (endpoint.password,)
            )
            handshake.append(connection.send([_pack(("AUTH", *credentials))]))
        if endpoint.db:
            handshake.append(connection.send([_pack(("SELECT", endpoint.db))]))
        for reply in await asyncio.gather(*handshake):
            if isinstance(reply, ReplyError):
                connection.close()
                raise ServerUnavailable(f"the store refused the connection: {reply}")
        return connection

    async def close(self) -> None:
        """Close the connection and any connection attempt; commands afterwards fail."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
