"""Two tiny real proxies on asyncio streams, for the client's ``proxy=``: HTTP CONNECT and SOCKS4/5."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from typing import TypeVar

from aio_support import HOST, within

P = TypeVar("P", bound="_Proxy")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF, then end ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class _Proxy:
    """A listener that relays each accepted connection to where its first bytes ask."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.targets: list[tuple[str, int]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self: P) -> P:
        self.server = await asyncio.start_server(self._accept, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(ConnectionError):
                await within(writer.wait_closed())
        await within(self.server.wait_closed())

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            target = await self.negotiate(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            target = None
        if target is None:
            writer.close()
            return
        self.targets.append(target)
        up_reader, up_writer = await asyncio.open_connection(*target)
        self._writers.append(up_writer)
        await self.established(writer)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        raise NotImplementedError

    async def established(self, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class ConnectProxy(_Proxy):
    """An HTTP proxy that only does CONNECT; ``refuse`` answers every request with that status instead."""

    def __init__(self, refuse: int | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.heads: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        method, authority, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        if self.refuse is not None or method != "CONNECT":
            status = self.refuse or 405
            writer.write(f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            return None
        host, _, port = authority.rpartition(":")
        return host.strip("[]"), int(port)

    async def established(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()


class SocksProxy(_Proxy):
    """A SOCKS5 (RFC 1928, with RFC 1929 username/password when ``credentials``) and SOCKS4 proxy."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials
        self.version = 0

    def url(self, scheme: str = "socks5") -> str:
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{auth}{HOST}:{self.port}"

    async def negotiate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        version = (await reader.readexactly(1))[0]
        self.version = version
        if version == 4:
            request = await reader.readexactly(7)  # command, port, IPv4 address
            await reader.readuntil(b"\0")  # user id
            if request[0] != 1:
                return None
            return socket.inet_ntoa(request[3:7]), int.from_bytes(request[1:3], "big")
        if version != 5:
            return None
        methods = await reader.readexactly((await reader.readexactly(1))[0])
        wanted = 2 if self.credentials else 0
        if wanted not in methods:
            writer.write(b"\x05\xff")
            return None
        writer.write(bytes([5, wanted]))
        if wanted == 2:
            await reader.readexactly(1)
            user = await reader.readexactly((await reader.readexactly(1))[0])
            password = await reader.readexactly((await reader.readexactly(1))[0])
            ok = (user.decode(), password.decode()) == self.credentials
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return None
        _, command, _, kind = list(await reader.readexactly(4))
        if kind == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
        if command != 1:
            writer.write(b"\x05\x07\x00\x01\0\0\0\0\0\0")
            return None
        return host, port

    async def established(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\x5a\0\0\0\0\0\0" if self.version == 4 else b"\x05\x00\x00\x01\0\0\0\0\0\0")
        await writer.drain()
