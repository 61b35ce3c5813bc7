"""Parsing of the handshake's structured header values (RFC 7230 lists, RFC 6455 9.1)."""

from __future__ import annotations

import re

from ..exc import HandshakeError

__all__ = ["Headers", "split_tokens", "parse_extensions", "format_extension"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS_RE = re.compile(r"[ \t]*")


class Headers:
    """An ordered, case-insensitive multi-map of header fields.

    ``get`` joins repeated fields with ``", "`` (RFC 7230 section 3.2.2), and
    ``get_all`` returns each field's value.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = list(items) if items else []
        # Lower-cased name -> its values: a handshake looks up a dozen names.
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            values = index.get(lname := name.lower())
            if values is None:
                index[lname] = [value]
            else:
                values.append(value)
        self._index = index

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        values = self._index.get(lname := name.lower())
        if values is None:
            self._index[lname] = [value]
        else:
            values.append(value)

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_tokens(values: list[str]) -> list[str]:
    """Split comma-separated header values into their non-empty, stripped elements."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_extensions(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse ``Sec-WebSocket-Extensions`` values into ``(name, [(param, value)])``.

    Raises :class:`HandshakeError` (400) on anything outside the RFC 6455 grammar.
    """
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    for header in values:
        pos = 0
        while True:
            pos = _OWS_RE.match(header, pos).end()  # type: ignore[union-attr]
            if pos == len(header):
                break
            if header[pos] == ",":
                pos += 1
                continue
            match = _TOKEN_RE.match(header, pos)
            if match is None:
                raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {header!r}")
            name, pos = match.group(), match.end()
            params: list[tuple[str, str | None]] = []
            while True:
                pos = _OWS_RE.match(header, pos).end()  # type: ignore[union-attr]
                if pos == len(header) or header[pos] == ",":
                    break
                if header[pos] != ";":
                    raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {header!r}")
                pos = _OWS_RE.match(header, pos + 1).end()  # type: ignore[union-attr]
                match = _TOKEN_RE.match(header, pos)
                if match is None:
                    raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {header!r}")
                param, pos = match.group(), match.end()
                pos = _OWS_RE.match(header, pos).end()  # type: ignore[union-attr]
                value: str | None = None
                if pos < len(header) and header[pos] == "=":
                    pos = _OWS_RE.match(header, pos + 1).end()  # type: ignore[union-attr]
                    match = _TOKEN_RE.match(header, pos)
                    if match is not None:
                        value = match.group()
                    else:
                        match = _QUOTED_RE.match(header, pos)
                        if match is None:
                            raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {header!r}")
                        value = re.sub(r"\\(.)", r"\1", match.group(1))
                        # RFC 6455 9.1: a quoted value must still be a token.
                        if not _TOKEN_RE.fullmatch(value):
                            raise HandshakeError(f"invalid Sec-WebSocket-Extensions header: {header!r}")
                    pos = match.end()
                params.append((param, value))
            result.append((name, params))
    return result


def format_extension(name: str, params: list[tuple[str, str | None]]) -> str:
    """The header form of one extension: ``name; p1; p2=v``."""
    return "; ".join([name] + [p if v is None else f"{p}={v}" for p, v in params])
