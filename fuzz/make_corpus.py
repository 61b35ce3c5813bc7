"""Write the seed corpus, fuzz/corpus/<target>/: ``python fuzz/make_corpus.py`` (its output is committed).

Each seed is an input in its target's format (see the targets' modules): the
shapes a fuzzer would take long to find alone, such as masked frames, a
fragmented message, control frames, a valid handshake and compressed messages.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
MASK = b"\x37\xfa\x21\x3d"
# The index in frames_targets._VALID_B0 of each first byte.
B0 = {b0: i for i, b0 in enumerate((0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2, 0x41, 0x42))}


def payload(data: bytes) -> bytes:
    assert len(data) < 0xF0
    return bytes((len(data),)) + data


def frame(b0: int, data: bytes, masked: bool) -> bytes:
    """A record of kind 1: a plausible frame (first byte from the table) and its payload."""
    return bytes((1, B0[b0])) + payload(data) + (MASK if masked else b"")


def any_frame(b0: int, data: bytes, masked: bool) -> bytes:
    """A record of kind 0: any first byte."""
    return bytes((0, b0)) + payload(data) + (MASK if masked else b"")


def fragmented(text: bool, parts: list[bytes], masked: bool) -> bytes:
    out = bytes((6 | (16 if text else 0), len(parts) - 1))
    for part in parts:
        out += payload(part) + (MASK if masked else b"")
    return out


def large(b0: int, pattern: bytes, units: int, masked: bool) -> bytes:
    """A payload of 126 + ``units`` * 2 bytes of ``pattern``, over 64 KiB from 32705 units on."""
    return bytes((1, B0[b0], 0xF1, len(pattern) - 1)) + pattern + units.to_bytes(2, "big") + (MASK if masked else b"")


def header_only(b0: int, length: int, masked: bool) -> bytes:
    return bytes((3, B0[b0])) + length.to_bytes(8, "big") + b"\0" + (MASK if masked else b"")


def compressed(text: bytes, final_block: int, parts: int, masked: bool, binary: bool = False) -> bytes:
    """A record of kind 6: a message compressed by the peer, in ``parts`` frames (or fewer)."""
    return (
        bytes((6 | (0 if binary else 16) | final_block,))
        + payload(text)
        + bytes((parts - 1,))
        + (MASK if masked else b"") * parts
    )


def action(n: int) -> bytes:
    return bytes((5, n))


def frames_seeds() -> dict[str, bytes]:
    seeds = {}
    for role, masked in (("server", True), ("client", False)):
        flag = 0 if masked else 1
        close = (1000).to_bytes(2, "big") + b"bye"
        seeds[f"{role}-text"] = bytes((flag, 0)) + frame(0x81, b"hello", masked)
        seeds[f"{role}-binary-close"] = (
            bytes((flag, 0)) + frame(0x82, b"\x00\xff" * 20, masked) + frame(0x88, close, masked)
        )
        seeds[f"{role}-fragmented-text"] = bytes((flag | 32, 1)) + fragmented(True, [b"h\xc3", b"\xa9l", b"lo"], masked)
        seeds[f"{role}-fragmented-binary-ping"] = (
            bytes((flag | 64, 2))
            + any_frame(0x02, b"ab", masked)
            + frame(0x89, b"ping", masked)
            + any_frame(0x80, b"cd", masked)
        )
        seeds[f"{role}-control"] = (
            bytes((flag | 96, 4)) + frame(0x89, b"", masked) + frame(0x8A, b"x", masked) + frame(0x88, b"", masked)
        )
        seeds[f"{role}-large"] = bytes((flag | 2 * 5, 4)) + large(0x82, b"0123456789abcdef", 32800, masked)
        seeds[f"{role}-large-text-chunked"] = bytes((flag | 2 * 5 | 64, 1)) + large(0x81, "é".encode(), 33000, masked)
        seeds[f"{role}-bad-utf8"] = bytes((flag, 2)) + frame(0x81, b"ok\xff", masked)
        seeds[f"{role}-header-claims-much"] = bytes((flag | 2 * 2, 1)) + header_only(0x82, 1 << 20, masked)
        seeds[f"{role}-local-close"] = (
            bytes((flag, 0)) + frame(0x81, b"a", masked) + action(0) + frame(0x88, close, masked) + action(1)
        )
    return seeds


def deflate_seeds() -> dict[str, bytes]:
    seeds = {}
    for role, masked in (("server", True), ("client", False)):
        flag = 0 if masked else 1
        bits = 7 | (7 << 3)  # both windows 15
        for params, name in ((0, "takeover"), (3, "no-takeover")):
            body = b""
            for text, fin_block in ((b"hello hello hello", 0), (b"\x00\x01" * 30, 8), (b"again hello", 0)):
                body += compressed(text, fin_block, 1, masked)
            seeds[f"{role}-{name}"] = bytes((flag, params, bits, 0)) + body
        fragmented = compressed(b"fragmented " * 12, 0, 3, masked)
        seeds[f"{role}-fragmented"] = bytes((flag | 64, 0, bits, 1)) + fragmented
        seeds[f"{role}-small-window"] = bytes((flag, 0, 1 | (2 << 3), 0)) + compressed(b"w" * 100, 0, 1, masked)
        too_large = compressed(bytes(range(200)), 0, 1, masked, binary=True)
        seeds[f"{role}-window-too-large"] = bytes((flag, 0x60, 64, 0)) + too_large
        garbage = bytes((7, B0[0x81])) + payload(b"\xff\xff not deflate") + (MASK if masked else b"")
        seeds[f"{role}-bad-data"] = bytes((flag, 0, bits, 0)) + garbage
        raw = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw_data = raw.compress(b"raw " * 10) + raw.flush(zlib.Z_SYNC_FLUSH)
        seeds[f"{role}-rsv1-raw"] = (
            bytes((flag, 0, bits, 0)) + bytes((7, B0[0x82])) + payload(raw_data[:-4]) + (MASK if masked else b"")
        )
    return seeds


def handshake_seeds() -> dict[str, bytes]:
    request = (
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Origin: https://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    )
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n"
    response = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: chat\r\n"
    agreed = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=9\r\n"
    return {
        "server-request": bytes((0, 0)) + request + b"\r\n",
        "server-request-deflate-chunked": bytes((0 | 16 | 32 | 128, 1 | 4)) + request + offer + b"\r\n",
        "server-request-bad-version": bytes((0, 0)) + request.replace(b"13", b"8") + b"\r\n",
        "server-request-frames-after": bytes((0, 0)) + request + b"\r\n\x81\x85" + MASK + b"hello",
        "client-response": bytes((1 | 8 | 16 | 32, 0)) + response + agreed + b"\r\n",
        "client-response-refused": bytes((1, 0)) + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        "extensions": bytes((2,)) + b'permessage-deflate; client_max_window_bits="10", x-webkit-deflate-frame',
        "extensions-windows": bytes((2 | 64,))
        + b"permessage-deflate; server_max_window_bits=8; client_no_context_takeover",
    }


def codec_seeds() -> dict[str, bytes]:
    masked_text = b"\x81\x85" + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(b"hello"))
    return {
        "masked-frames": bytes((1 | 0x40, 8)) + MASK + bytes((1, 0)) + masked_text * 2 + b"\x88\x80" + MASK,
        "unmasked-ascii": bytes((8, 8, 0, 0)) + b"\x81\x05hello\x82\x7e\x00\x80" + bytes(128),
        "long-length": bytes((0, 8, 0, 0)) + b"\x82\x7f" + (1 << 63).to_bytes(8, "big"),
        "utf8": bytes((0x80 | 0x40, 8)) + MASK + bytes((3, 5)) + "aé€😀".encode() + b"\xed\xa0\x80",
    }


def main() -> None:
    for target, seeds in (
        ("codec", codec_seeds()),
        ("frames", frames_seeds()),
        ("deflate", deflate_seeds()),
        ("handshake", handshake_seeds()),
    ):
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / f"{name}-{hashlib.sha1(data).hexdigest()[:8]}").write_bytes(data)


if __name__ == "__main__":
    main()
