"""The gevent server's parsing of request header blocks (``read_header_block``): what pywsgi's gives.

The server parses a request's header fields with the core's parser instead of
pywsgi's ``email``-based one (a quarter of a WebSocket connection's cost); for
any block, well-formed or not, the handler must see what pywsgi would have
given it, and the stream must be left at the same place. Runs in the pytest
process: nothing here is monkey-patched or needs a hub.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pywsgi = pytest.importorskip("gevent.pywsgi")
geventserver = pytest.importorskip("ws4py.server.geventserver")

UPGRADE = (
    b"Host: 127.0.0.1:9000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Origin: http://127.0.0.1:9000\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
)

LINES = st.one_of(
    st.sampled_from(
        [
            b"Host: example.com\r\n",
            b"Content-Type: text/plain\r\n",
            b"content-length: 3\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"X-Empty:\r\n",
            b"X-Spaces:   padded   \r\n",
            b"X-Tab:\tvalue\r\n",
            b" folded continuation\r\n",
            b"\tfolded with a tab\r\n",
            b"no colon here\r\n",
            b"Name : space before the colon\r\n",
            b"Bare-LF: value\n",
            b"Bare-CR: va\rlue\r\n",
            b"Control: a\x01b\r\n",
            b"Latin-1: caf\xe9\r\n",
            b"Under_Score: x\r\n",
            b"X-Long: " + b"v" * 70000 + b"\r\n",
        ]
    ),
    st.builds(
        lambda name, value: name.encode() + b": " + value.encode("latin-1") + b"\r\n",
        st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", fullmatch=True),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30),
    ),
)


def parsed(parse, block: bytes) -> tuple[str, list[tuple[str, str]], bytes]:  # type: ignore[no-untyped-def]
    """What ``parse`` made of ``block`` (a header block then a body): status, fields, and the
    bytes left in the stream. Values are compared without the spaces around them, which
    neither the protocol (RFC 9112, 5.1) nor pywsgi's environ keeps."""
    rfile = io.BufferedReader(io.BytesIO(block))
    headers = parse(rfile)
    fields = [(name, value.strip(" \t")) for name, value in headers.items()]
    return headers.status, fields, rfile.read()


def test_an_upgrade_request_gives_the_fields_pywsgi_gives() -> None:
    ours = parsed(geventserver.read_header_block, UPGRADE + b"\x81\x80frame")
    assert ours == parsed(pywsgi.headers_factory, UPGRADE + b"\x81\x80frame")
    assert ours[1][1] == ("Upgrade", "websocket") and ours[2] == b"\x81\x80frame"


def test_the_header_object_answers_what_pywsgi_asks_of_it() -> None:
    headers = geventserver.read_header_block(io.BufferedReader(io.BytesIO(UPGRADE)))
    assert headers.get("connection") == "Upgrade" and headers.getheader("UPGRADE") == "websocket"
    assert headers.typeheader is None and headers.status == ""
    assert "Cookie: b=2\r\n" in list(headers.headers)
    del headers["Cookie"]
    assert headers.get("Cookie") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=8), st.sampled_from([b"\r\n", b"\n", b""]), st.binary(max_size=8))
def test_any_header_block_gives_what_pywsgi_gives(lines: list[bytes], end: bytes, body: bytes) -> None:
    block = b"".join(lines) + end + body
    assert parsed(geventserver.read_header_block, block) == parsed(pywsgi.headers_factory, block)


def test_over_a_hundred_fields_are_refused_as_pywsgi_refuses_them() -> None:
    block = b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(Exception) as ours:
        parsed(geventserver.read_header_block, block)
    with pytest.raises(Exception) as theirs:
        parsed(pywsgi.headers_factory, block)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
