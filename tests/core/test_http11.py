"""The strict, bounded HTTP/1.1 head parser used by the handshake (RFC 7230 section 3)."""

from __future__ import annotations

import pytest

from ws4py.exc import HandshakeError
from ws4py.protocol import Request, Response, ServerHandshake
from ws4py.protocol.http11 import MAX_HEADERS, MAX_LINE, MAX_SIZE, HeadReader, serialize_request, serialize_response

GOOD = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def request_error(data: bytes, **kwargs: int) -> HandshakeError:
    reader = HeadReader(is_request=True, **kwargs)
    with pytest.raises(HandshakeError) as info:
        reader.feed(data)
    return info.value


def test_a_valid_request_is_parsed() -> None:
    request = HeadReader(is_request=True).feed(GOOD)
    assert isinstance(request, Request)
    assert request.method == "GET"
    assert request.target == "/chat"
    assert request.headers.get("host") == "server.example.com"
    assert request.headers.get_all("Sec-WebSocket-Version") == ["13"]
    assert len(request.headers) == 5


def test_header_values_are_stripped_of_surrounding_whitespace() -> None:
    request = HeadReader(is_request=True).feed(b"GET / HTTP/1.1\r\nHost: \t example.com \t\r\nX-Empty:\r\n\r\n")
    assert isinstance(request, Request)
    assert request.headers.get_all("Host") == ["example.com"]
    assert request.headers.get_all("X-Empty") == [""]


def test_incomplete_head_returns_none() -> None:
    reader = HeadReader(is_request=True)
    assert reader.feed(GOOD[:-2]) is None
    assert isinstance(reader.feed(GOOD[-2:]), Request)


def test_byte_by_byte_feeding_works() -> None:
    reader = HeadReader(is_request=True)
    trailer = b"\x81\x80abcd"
    data = GOOD + trailer
    results = []
    for i in range(len(GOOD)):
        results.append(reader.feed(data[i : i + 1]))
    assert results[:-1] == [None] * (len(GOOD) - 1)
    assert isinstance(results[-1], Request)
    assert results[-1].headers.get("Upgrade") == "websocket"
    assert reader.leftover == b""


def test_leftover_bytes_after_the_head_are_kept() -> None:
    reader = HeadReader(is_request=True)
    assert reader.feed(GOOD + b"\x81\x85rest") is not None
    assert reader.leftover == b"\x81\x85rest"


def test_every_chunking_of_the_end_of_head_is_found() -> None:
    for cut in range(len(GOOD) - 6, len(GOOD)):
        reader = HeadReader(is_request=True)
        assert reader.feed(GOOD[:cut]) is None
        assert isinstance(reader.feed(GOOD[cut:] + b"xy"), Request)
        assert reader.leftover == b"xy"


# -- limits ----------------------------------------------------------------------


def test_more_than_max_headers_fields_is_431() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(11)) + b"\r\n"
    assert request_error(head, max_headers=10).status == 431
    ok = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10)) + b"\r\n"
    assert isinstance(HeadReader(is_request=True, max_headers=10).feed(ok), Request)


def test_default_max_headers_is_enforced() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n"
    assert request_error(head).status == 431


def test_complete_head_larger_than_max_size_is_431() -> None:
    head = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n"
    assert request_error(head, max_size=100).status == 431


def test_incomplete_head_growing_past_max_size_is_431() -> None:
    reader = HeadReader(is_request=True, max_size=100)
    assert reader.feed(b"GET / HTTP/1.1\r\nX-Big: ") is None
    with pytest.raises(HandshakeError) as info:
        for _ in range(200):
            reader.feed(b"a")
    assert info.value.status == 431


def test_default_max_size_is_enforced() -> None:
    head = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * MAX_SIZE + b"\r\n\r\n"
    assert request_error(head).status == 431


def test_long_request_line_is_414() -> None:
    line = b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert request_error(line).status == 414


def test_long_request_line_without_its_end_yet_is_414() -> None:
    reader = HeadReader(is_request=True)
    with pytest.raises(HandshakeError) as info:
        reader.feed(b"GET /" + b"a" * (MAX_LINE + 10))
    assert info.value.status == 414


def test_server_handshake_passes_its_limits_to_the_parser() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5)) + b"\r\n"
    with pytest.raises(HandshakeError) as info:
        ServerHandshake(max_headers=4).receive_data(head)
    assert info.value.status == 431
    with pytest.raises(HandshakeError) as info:
        ServerHandshake(max_request_size=50).receive_data(GOOD)
    assert info.value.status == 431


# -- strictness ------------------------------------------------------------------


@pytest.mark.parametrize("fold", [b" continued", b"\tcontinued", b" X-Other: y"])
def test_obs_fold_is_400(fold: bytes) -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n" + fold + b"\r\n\r\n"
    error = request_error(head)
    assert error.status == 400


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
    ],
    ids=["bare-lf-in-headers", "bare-lf-after-request-line", "bare-cr", "cr-cr-lf"],
)
def test_bare_lf_or_cr_is_400(head: bytes) -> None:
    assert request_error(head).status == 400


@pytest.mark.parametrize(
    "line",
    [b"Host : x", b"Ho st: x", b": x", b"H\x00st: x", b"H\xc3\xa9: x", b"(Host): x", b"Host", b'Ho"st: x'],
)
def test_invalid_header_name_is_400(line: bytes) -> None:
    assert request_error(b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n").status == 400


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x7fb", b"a\x01"])
def test_control_characters_in_header_values_are_400(value: bytes) -> None:
    assert request_error(b"GET / HTTP/1.1\r\nX-A: " + value + b"\r\n\r\n").status == 400


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b""])
def test_http_1_0_and_other_versions_are_400(version: bytes) -> None:
    assert request_error(b"GET / " + version + b"\r\nHost: x\r\n\r\n").status == 400


@pytest.mark.parametrize(
    "line",
    [b"GET  / HTTP/1.1", b"GET / HTTP/1.1 extra", b"GET", b"G(T / HTTP/1.1", b"GET /a b HTTP/1.1", b" GET / HTTP/1.1"],
)
def test_malformed_request_line_is_400(line: bytes) -> None:
    assert request_error(line + b"\r\nHost: x\r\n\r\n").status == 400


def test_later_minor_versions_are_accepted() -> None:
    assert isinstance(HeadReader(is_request=True).feed(b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"), Request)


# -- responses ------------------------------------------------------------------------


def test_a_response_is_parsed() -> None:
    reader = HeadReader(is_request=False)
    response = reader.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (101, "Switching Protocols")
    assert response.headers.get("upgrade") == "websocket"
    assert reader.leftover == b"\x81\x00"


@pytest.mark.parametrize("line", [b"HTTP/1.1 10 OK", b"HTTP/1.1 abc OK", b"HTTP/1.1", b"garbage", b"ICY 200 OK"])
def test_invalid_status_line_is_a_handshake_error(line: bytes) -> None:
    with pytest.raises(HandshakeError):
        HeadReader(is_request=False).feed(line + b"\r\n\r\n")


# -- serialising -----------------------------------------------------------------------


def test_serialize_request_and_response() -> None:
    assert serialize_request("GET", "/", [("Host", "x")]) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert serialize_response(101, [("Upgrade", "websocket")]) == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    )
    assert serialize_response(404, [], b"body") == b"HTTP/1.1 404 Not Found\r\n\r\nbody"


@pytest.mark.parametrize(
    "header",
    [("X-A", "a\r\nInjected: yes"), ("X-A", "a\nb"), ("X-A", "a\rb"), ("X-A\r\nB", "v"), ("X:A", "v")],
)
def test_serializing_refuses_header_injection(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        serialize_response(200, [header])
    with pytest.raises(ValueError):
        serialize_request("GET", "/", [header])
