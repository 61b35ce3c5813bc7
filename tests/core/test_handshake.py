"""The opening handshake (RFC 6455 section 4), server and client."""

from __future__ import annotations

import pytest

from ws4py.exc import HandshakeError
from ws4py.protocol import (
    ClientHandshake,
    Connection,
    Headers,
    Request,
    Response,
    Role,
    ServerHandshake,
    TextReceived,
    accept_key,
    frames,
)
from ws4py.protocol.handshake import check_extra_response_headers
from ws4py.protocol.http11 import HeadReader

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

DEFAULT_HEADERS = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", RFC_KEY),
    ("Sec-WebSocket-Version", "13"),
]


def make_request(
    method: str = "GET",
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    add: list[tuple[str, str]] | None = None,
) -> Request:
    replace = replace or {}
    headers = [(n, replace.get(n, v)) for n, v in DEFAULT_HEADERS if n not in drop]
    return Request(method, "/chat", Headers(headers + (add or [])))


def raw_request(headers: list[tuple[str, str]], method: str = "GET") -> bytes:
    lines = [f"{method} /chat HTTP/1.1"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def refused(request: Request, **kwargs: object) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        ServerHandshake(**kwargs).accept(request)  # type: ignore[arg-type]
    return info.value


def parse_response(data: bytes) -> tuple[Response, bytes]:
    reader = HeadReader(is_request=False)
    response = reader.feed(data)
    assert isinstance(response, Response)
    return response, reader.leftover


def response_101(key: str, extra: list[tuple[str, str]] | None = None, *, drop: tuple[str, ...] = ()) -> bytes:
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    headers = [(n, v) for n, v in headers if n not in drop] + (extra or [])
    lines = ["HTTP/1.1 101 Switching Protocols"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- Sec-WebSocket-Accept (section 4.2.2) ---------------------------------------


def test_accept_key_of_the_rfc_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT
    assert accept_key(RFC_KEY.encode()) == RFC_ACCEPT


def test_server_accepts_a_valid_request_with_101() -> None:
    server = ServerHandshake()
    assert server.receive_data(raw_request(DEFAULT_HEADERS)) is not None
    raw = server.accept()
    assert raw.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert raw.endswith(b"\r\n\r\n")
    response, leftover = parse_response(raw)
    assert leftover == b""
    assert response.status == 101
    assert response.headers.get_all("Upgrade") == ["websocket"]
    assert response.headers.get_all("Connection") == ["Upgrade"]
    assert response.headers.get_all("Sec-WebSocket-Accept") == [RFC_ACCEPT]
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert "Sec-WebSocket-Extensions" not in response.headers


def test_server_accepts_token_lists_and_any_case() -> None:
    request = make_request(replace={"Upgrade": "WebSocket", "Connection": "keep-alive, upgrade"})
    assert ServerHandshake().accept(request).startswith(b"HTTP/1.1 101 ")


def test_accept_appends_extra_headers() -> None:
    raw = ServerHandshake().accept(make_request(), headers=[("Server", "ws4py")])
    response, _ = parse_response(raw)
    assert response.headers.get_all("Server") == ["ws4py"]


def test_response_headers_follow_the_negotiated_fields_in_the_101() -> None:
    server = ServerHandshake()
    server.response_headers = [("Set-Cookie", "a=1"), ("X-Trace", "abc def")]
    response, _ = parse_response(server.accept(make_request()))
    assert response.headers.items()[-2:] == [("Set-Cookie", "a=1"), ("X-Trace", "abc def")]
    assert response.headers.get_all("Sec-WebSocket-Accept") == [RFC_ACCEPT]


@pytest.mark.parametrize(
    "field",
    [
        ("Sec-WebSocket-Protocol", "chat"),  # chosen with select_subprotocol, never as a header
        ("connection", "close"),
        ("SEC-WEBSOCKET-EXTENSIONS", "permessage-deflate"),
        ("Sec-WebSocket-Accept", RFC_ACCEPT),
        ("Upgrade", "h2c"),
        ("X-Ok", "a\r\nSet-Cookie: injected=1"),  # response splitting
        ("Bad Name", "x"),
        ("X-Nul", "a\x00b"),
        ("X-Wide", "\u20ac"),
    ],
)
def test_extra_response_headers_that_would_break_the_101_are_refused(field: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        check_extra_response_headers([field])
    server = ServerHandshake()
    server.response_headers = [field]
    with pytest.raises(HandshakeError) as info:
        server.accept(make_request())
    assert info.value.status == 500


def test_accept_without_a_complete_request_raises() -> None:
    server = ServerHandshake()
    assert server.receive_data(b"GET /chat HTTP/1.1\r\n") is None
    with pytest.raises(HandshakeError):
        server.accept()


# -- server checks (section 4.2.1) ----------------------------------------------


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "get"])
def test_method_other_than_get_is_refused_with_405(method: str) -> None:
    error = refused(make_request(method))
    assert error.status == 405
    assert ("Allow", "GET") in error.headers


def test_missing_host_is_refused_with_400() -> None:
    assert refused(make_request(drop=("Host",))).status == 400


def test_multiple_host_headers_are_refused_with_400() -> None:
    assert refused(make_request(add=[("Host", "other.example.com")])).status == 400


@pytest.mark.parametrize("value", [None, "h2c", "websockets", ""])
def test_missing_or_wrong_upgrade_is_refused_with_400_and_a_clear_message(value: str | None) -> None:
    request = make_request(drop=("Upgrade",)) if value is None else make_request(replace={"Upgrade": value})
    error = refused(request)
    assert error.status == 400
    assert "Upgrade" in error.msg
    assert "websocket" in error.msg


@pytest.mark.parametrize("value", [None, "keep-alive", "close", ""])
def test_missing_or_wrong_connection_is_refused_with_400_and_a_clear_message(value: str | None) -> None:
    request = make_request(drop=("Connection",)) if value is None else make_request(replace={"Connection": value})
    error = refused(request)
    assert error.status == 400
    assert "Connection" in error.msg


@pytest.mark.parametrize(
    "key",
    [
        "not base64!",
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
        "dGhlIHNhbXBsZSBub25j",  # 15 bytes
        "dGhlIHNhbXBsZSBub25jZTE=",  # 17 bytes
        "",
        "dGhlIHNhbXBsZSBub25jZQ==\u00e9",
    ],
)
def test_bad_key_is_refused_with_400(key: str) -> None:
    error = refused(make_request(replace={"Sec-WebSocket-Key": key}))
    assert error.status == 400
    assert "Sec-WebSocket-Key" in error.msg


def test_missing_or_repeated_key_is_refused_with_400() -> None:
    assert refused(make_request(drop=("Sec-WebSocket-Key",))).status == 400
    assert refused(make_request(add=[("Sec-WebSocket-Key", RFC_KEY)])).status == 400


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8", " "])
def test_wrong_version_is_refused_with_426_and_the_supported_version(version: str | None) -> None:
    if version is None:
        request = make_request(drop=("Sec-WebSocket-Version",))
    else:
        request = make_request(replace={"Sec-WebSocket-Version": version})
    error = refused(request)
    assert error.status == 426
    assert ("Sec-WebSocket-Version", "13") in error.headers
    response, _ = parse_response(ServerHandshake.reject(error))
    assert response.status == 426
    assert response.headers.get_all("Sec-WebSocket-Version") == ["13"]


def test_repeated_version_header_is_refused_with_426() -> None:
    error = refused(make_request(add=[("Sec-WebSocket-Version", "13")]))
    assert error.status == 426


def test_origin_check() -> None:
    allowed = ["https://good.example"]
    request = make_request(add=[("Origin", "https://good.example")])
    assert ServerHandshake(origins=allowed).accept(request).startswith(b"HTTP/1.1 101 ")
    assert refused(make_request(add=[("Origin", "https://evil.example")]), origins=allowed).status == 403
    assert refused(make_request(), origins=allowed).status == 403
    assert ServerHandshake(origins=[*allowed, None]).accept(make_request()).startswith(b"HTTP/1.1 101 ")
    two = make_request(add=[("Origin", "https://good.example"), ("Origin", "https://good.example")])
    assert refused(two, origins=allowed).status == 403
    # Without an origins list, any Origin is accepted.
    assert ServerHandshake().accept(make_request(add=[("Origin", "https://evil.example")]))


# -- subprotocols (section 4.2.2) --------------------------------------------------


def _chosen(raw: bytes) -> list[str]:
    response, _ = parse_response(raw)
    return response.headers.get_all("Sec-WebSocket-Protocol")


def test_subprotocol_follows_the_server_preference_order() -> None:
    server = ServerHandshake(subprotocols=["chat.v2", "chat.v1"])
    raw = server.accept(make_request(add=[("Sec-WebSocket-Protocol", "chat.v1, chat.v2")]))
    assert _chosen(raw) == ["chat.v2"]
    assert server.subprotocol == "chat.v2"
    assert server.connection().subprotocol == "chat.v2"


def test_subprotocols_offered_in_several_headers_are_all_considered() -> None:
    server = ServerHandshake(subprotocols=["b"])
    raw = server.accept(make_request(add=[("Sec-WebSocket-Protocol", "a"), ("Sec-WebSocket-Protocol", "b")]))
    assert _chosen(raw) == ["b"]


def test_no_common_subprotocol_means_no_protocol_header() -> None:
    server = ServerHandshake(subprotocols=["x"])
    raw = server.accept(make_request(add=[("Sec-WebSocket-Protocol", "a, b")]))
    assert _chosen(raw) == []
    assert server.subprotocol is None
    raw = ServerHandshake(subprotocols=["x"]).accept(make_request())
    assert _chosen(raw) == []


def test_select_subprotocol_hook_overrides_the_choice() -> None:
    seen: list[list[str]] = []

    def pick(offered: list[str]) -> str | None:
        seen.append(offered)
        return offered[-1]

    server = ServerHandshake(subprotocols=["a"], select_subprotocol=pick)
    raw = server.accept(make_request(add=[("Sec-WebSocket-Protocol", "a, b")]))
    assert seen == [["a", "b"]]
    assert _chosen(raw) == ["b"]
    server = ServerHandshake(subprotocols=["a"], select_subprotocol=lambda offered: None)
    assert _chosen(server.accept(make_request(add=[("Sec-WebSocket-Protocol", "a")]))) == []


def test_select_subprotocol_hook_returning_something_not_offered_is_an_error() -> None:
    server = ServerHandshake(select_subprotocol=lambda offered: "zzz")
    with pytest.raises(HandshakeError):
        server.accept(make_request(add=[("Sec-WebSocket-Protocol", "a, b")]))


# -- reject() ----------------------------------------------------------------------


def test_reject_produces_a_complete_response_with_content_length_and_connection_close() -> None:
    error = refused(make_request("POST"))
    raw = ServerHandshake.reject(error)
    response, body = parse_response(raw)
    assert raw.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert response.status == 405
    assert response.headers.get_all("Connection") == ["close"]
    assert response.headers.get_all("Content-Length") == [str(len(body))]
    assert response.headers.get_all("Allow") == ["GET"]
    assert body == (error.msg + "\n").encode()


def test_reject_with_a_status_and_a_body() -> None:
    raw = ServerHandshake.reject(404, "nothing here ✓")
    response, body = parse_response(raw)
    assert response.status == 404
    assert body == "nothing here ✓\n".encode()
    assert response.headers.get_all("Content-Length") == [str(len(body))]
    assert response.headers.get_all("Connection") == ["close"]


# -- client checks (section 4.1) -----------------------------------------------------


def test_client_request_bytes() -> None:
    client = ClientHandshake("example.com", "/chat", key=RFC_KEY, origin="https://example.com", subprotocols=["a", "b"])
    raw = client.request_bytes()
    assert raw.startswith(b"GET /chat HTTP/1.1\r\n")
    request = HeadReader(is_request=True).feed(raw)
    assert isinstance(request, Request)
    assert request.headers.items() == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", RFC_KEY),
        ("Sec-WebSocket-Version", "13"),
        ("Origin", "https://example.com"),
        ("Sec-WebSocket-Protocol", "a, b"),
    ]


def test_client_key_is_a_fresh_16_byte_nonce() -> None:
    import base64

    keys = {ClientHandshake("example.com").key for _ in range(10)}
    assert len(keys) == 10
    assert all(len(base64.b64decode(k, validate=True)) == 16 for k in keys)


def test_client_and_server_agree() -> None:
    client = ClientHandshake("example.com", "/chat", subprotocols=["b", "a"])
    server = ServerHandshake(subprotocols=["a"])
    server.receive_data(client.request_bytes())
    response = client.receive_data(server.accept())
    assert isinstance(response, Response)
    assert response.status == 101
    assert client.subprotocol == server.subprotocol == "a"
    assert client.connection().role is Role.CLIENT
    assert server.connection().role is Role.SERVER


@pytest.mark.parametrize("status", [200, 301, 400, 403, 404, 426, 500, 503])
def test_client_non_101_response_raises_with_the_servers_status(status: int) -> None:
    client = ClientHandshake("example.com")
    raw = f"HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(HandshakeError) as info:
        client.receive_data(raw)
    assert info.value.status == status


def test_client_raises_on_the_servers_reject_response() -> None:
    client = ClientHandshake("example.com")
    error = refused(make_request(replace={"Sec-WebSocket-Version": "8"}))
    with pytest.raises(HandshakeError) as info:
        client.receive_data(ServerHandshake.reject(error))
    assert info.value.status == 426


def test_client_missing_accept_is_an_error() -> None:
    client = ClientHandshake("example.com")
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, drop=("Sec-WebSocket-Accept",)))


def test_client_wrong_accept_is_an_error() -> None:
    client = ClientHandshake("example.com", key=RFC_KEY)
    with pytest.raises(HandshakeError):
        client.receive_data(response_101("x3JJHMbDL1EzLkh9GBhXDw=="))
    client = ClientHandshake("example.com", key=RFC_KEY)
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(RFC_KEY, [("Sec-WebSocket-Accept", RFC_ACCEPT)]))


@pytest.mark.parametrize("drop", ["Upgrade", "Connection"])
def test_client_missing_upgrade_or_connection_is_an_error(drop: str) -> None:
    client = ClientHandshake("example.com")
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, drop=(drop,)))


def test_client_subprotocol_not_offered_is_an_error() -> None:
    client = ClientHandshake("example.com", subprotocols=["a"])
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, [("Sec-WebSocket-Protocol", "b")]))
    client = ClientHandshake("example.com")
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, [("Sec-WebSocket-Protocol", "a")]))
    client = ClientHandshake("example.com", subprotocols=["a", "b"])
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, [("Sec-WebSocket-Protocol", "a, b")]))


def test_client_accepts_an_offered_subprotocol() -> None:
    client = ClientHandshake("example.com", subprotocols=["a", "b"])
    client.receive_data(response_101(client.key, [("Sec-WebSocket-Protocol", "b")]))
    assert client.subprotocol == "b"
    assert client.connection().subprotocol == "b"


@pytest.mark.parametrize("extension", ["permessage-deflate", "x-webkit-deflate-frame", "foo; bar=1"])
def test_client_extension_not_offered_is_an_error(extension: str) -> None:
    client = ClientHandshake("example.com")
    with pytest.raises(HandshakeError):
        client.receive_data(response_101(client.key, [("Sec-WebSocket-Extensions", extension)]))


# -- leftover bytes --------------------------------------------------------------------


def test_server_keeps_bytes_after_the_request_head_and_they_parse_as_frames() -> None:
    frame = frames.build_frame(0x81, b"early", b"\x01\x02\x03\x04")
    server = ServerHandshake()
    assert server.receive_data(raw_request(DEFAULT_HEADERS) + frame) is not None
    assert server.leftover == frame
    server.accept()
    assert server.connection().receive_data(server.leftover) == [TextReceived("early")]


def test_client_keeps_bytes_after_the_response_head_and_they_parse_as_frames() -> None:
    client = ClientHandshake("example.com")
    frame = frames.build_frame(0x81, b"welcome", None)
    assert client.receive_data(response_101(client.key) + frame) is not None
    assert client.leftover == frame
    conn = client.connection()
    assert isinstance(conn, Connection)
    assert conn.receive_data(client.leftover) == [TextReceived("welcome")]


def test_request_fed_byte_by_byte_then_leftover() -> None:
    frame = frames.build_frame(0x82, b"\x00\x01", b"\x09\x08\x07\x06")
    data = raw_request(DEFAULT_HEADERS) + frame
    server = ServerHandshake()
    request = None
    for i in range(len(data)):
        request = server.receive_data(data[i : i + 1])
        if request is not None:
            break
    assert request is not None
    assert request.headers.get_all("Sec-WebSocket-Key") == [RFC_KEY]
    rest = server.leftover + data[i + 1 :]
    assert rest == frame


def test_response_fed_byte_by_byte() -> None:
    client = ClientHandshake("example.com")
    data = response_101(client.key)
    results = [client.receive_data(data[i : i + 1]) for i in range(len(data))]
    assert results[:-1] == [None] * (len(data) - 1)
    assert isinstance(results[-1], Response)


# -- request headers -----------------------------------------------------------------------


def _headers(client: ClientHandshake) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in client.request_headers():
        out.setdefault(name.lower(), []).append(value)
    return out


def test_client_headers_override_defaults_of_the_same_name() -> None:
    client = ClientHandshake(
        "example.com",
        origin="https://default.example",
        headers=[("origin", "https://mine.example"), ("User-Agent", "agent/1"), ("Host", "proxy.example")],
    )
    headers = _headers(client)
    assert headers["origin"] == ["https://mine.example"]
    assert headers["host"] == ["proxy.example"]
    assert headers["user-agent"] == ["agent/1"]


def test_client_exclude_headers_removes_defaults_and_extra_headers() -> None:
    client = ClientHandshake(
        "example.com",
        origin="https://default.example",
        headers=[("X-Extra", "1"), ("X-Gone", "2")],
        exclude_headers=["Origin", "x-gone"],
    )
    headers = _headers(client)
    assert "origin" not in headers
    assert "x-gone" not in headers
    assert headers["x-extra"] == ["1"]
    assert headers["sec-websocket-key"] == [client.key]


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", None, False, "example.com"),
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 8080, False, "example.com:8080"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("::1", None, False, "[::1]"),
        ("::1", 80, False, "[::1]"),
        ("::1", 8080, False, "[::1]:8080"),
        ("2001:db8::1", 443, True, "[2001:db8::1]"),
        ("2001:db8::1", 9443, True, "[2001:db8::1]:9443"),
        ("127.0.0.1", 9000, False, "127.0.0.1:9000"),
    ],
)
def test_host_header_brackets_ipv6_and_omits_default_ports(
    host: str, port: int | None, secure: bool, expected: str
) -> None:
    client = ClientHandshake(host, port=port, secure=secure)
    assert _headers(client)["host"] == [expected]


def test_client_resource_defaults_to_slash() -> None:
    assert ClientHandshake("example.com", "").request_bytes().startswith(b"GET / HTTP/1.1\r\n")
    assert ClientHandshake("example.com", "/a?b=c").request_bytes().startswith(b"GET /a?b=c HTTP/1.1\r\n")
