"""``ServerHandshake.respond``: a whole HTTP response sent instead of the 101."""

from __future__ import annotations

from ws4py.protocol import Headers, Response, ServerHandshake
from ws4py.protocol.http11 import HeadReader


def _parsed(raw: bytes) -> tuple[Response, bytes]:
    reader = HeadReader(is_request=False)
    head = reader.feed(raw)
    assert isinstance(head, Response)
    return head, reader.leftover


def test_respond_sets_content_length_from_the_body_and_closes() -> None:
    raw = ServerHandshake.respond(Response(404, "Not Found", Headers([("Content-Length", "999")]), b"nope\n"))
    head, body = _parsed(raw)
    assert (head.status, head.reason) == (404, "Not Found")
    assert head.headers.get_all("Content-Length") == ["5"]
    assert head.headers.get("Connection") == "close"
    assert body == b"nope\n"


def test_respond_keeps_a_connection_header_it_was_given() -> None:
    raw = ServerHandshake.respond(Response(200, "OK", Headers([("Connection", "keep-alive")]), b""))
    head, _ = _parsed(raw)
    assert head.headers.get_all("Connection") == ["keep-alive"]
    assert head.headers.get("Content-Length") == "0"
