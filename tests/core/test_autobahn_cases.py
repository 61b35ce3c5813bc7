"""Autobahn|Testsuite cases 1-7, 9 and 10, played against the sans-I/O core.

Each case is Autobahn's (crossbario/autobahn-testsuite,
``autobahntestsuite/case/case*.py``): the same frames, the same chopping,
the same expected events and close. Autobahn's fuzzingclient tests a server;
every case here also runs the other way round, the core as a client against
a fuzzing server that sends unmasked frames (what ``fuzzingserver`` does).
And like everything under ``tests/core``, once per frame codec.

Every case must end ``OK``, Autobahn's strict grade (``NON-STRICT`` fails
here); see :mod:`autobahn` for the harness.

Adapted from Autobahn, on purpose:

* Family 9 keeps every size (up to 16 MiB, the core's default
  ``max_message_size``) but not Autobahn's timing: it checks the echo,
  byte for byte, not the time it took.
* 6.4.1-6.4.4: the invalid bytes must fail the connection before the last
  fragment (6.4.1, 6.4.2) or the last chop of the one frame (6.4.3, 6.4.4)
  is sent (Autobahn's OK).
* 5.19/5.20 also pin that the first pong comes before the rest of the
  message is sent (Autobahn's expectation text, not in its event list).
* Where Autobahn admits several close codes the core's one is expected:
  the echoed code in 7.7.x (Autobahn: it or 1000), 1007 in 7.5.1 (or 1002),
  1002 for the out-of-range 5000 and 65535 of 7.13.x (INFORMATIONAL there).
  7.3.1 admits an empty close frame as the echo of an empty one.
* Every case must also raise ``ConnectionFailed`` with the code of the close
  frame when it fails the connection, and the testee's frames are checked
  for masking, reserved bits, control-frame rules and nothing after its
  close.
* :func:`test_autobahn_case_octet_wise` plays every case (but family 9 and
  7.1.6) again with each read cut into single octets.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from autobahn import (
    BINARY,
    CLOSE,
    CONT,
    NON_STRICT,
    OK,
    PING,
    PONG,
    TEXT,
    Case,
    Fuzzer,
    message,
    pong,
    problems,
    run_case,
    timeout,
)

from ws4py.protocol import Role

CASES: list[Case] = []


def add(
    case_id: str,
    description: str,
    script: Callable[[Fuzzer], None],
    ok: list | Callable[[], dict],
    *,
    non_strict: list | None = None,
    fails: int | None = None,
    **kwargs,
) -> None:
    """Register a case: ``fails=code`` when the testee must fail the connection with ``code``."""
    # A callable is called when the case runs (payloads of many MiB).
    expected = ok if callable(ok) else {OK: ok} if non_strict is None else {OK: ok, NON_STRICT: non_strict}
    if fails is not None:
        kwargs.update(closed_by_fuzzer=False, close_codes=(fails,), require_clean=False)
    CASES.append(Case(case_id, description, script, expected, **kwargs))


HELLO = b"Hello, world!"

# -- 1: framing -------------------------------------------------------------------

for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536), 1):
    for sub, opcode, byte in ((1, TEXT, b"*"), (2, BINARY, b"\xfe")):
        kind = "text" if opcode == TEXT else "binary"
        add(
            f"1.{sub}.{i}",
            f"Send {kind} message with payload of length {n}.",
            lambda p, o=opcode, d=byte * n: p.send_frame(o, d),
            [message(byte * n, opcode == BINARY)],
        )
for sub, opcode, byte in ((1, TEXT, b"*"), (2, BINARY, b"\xfe")):
    add(
        f"1.{sub}.8",
        "Send message with payload of length 65536, sent out in chops of 997 octets.",
        lambda p, o=opcode, d=byte * 65536: p.send_frame(o, d, chopsize=997),
        [message(byte * 65536, opcode == BINARY)],
    )

# -- 2: pings and pongs -----------------------------------------------------------

add("2.1", "Send ping without payload.", lambda p: p.send_frame(PING), [pong()])
add("2.2", "Send ping with small text payload.", lambda p: p.send_frame(PING, HELLO), [pong(HELLO)])
BIN8 = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
add("2.3", "Send ping with small binary (non UTF-8) payload.", lambda p: p.send_frame(PING, BIN8), [pong(BIN8)])
add(
    "2.4",
    "Send ping with binary payload of 125 octets.",
    lambda p: p.send_frame(PING, b"\xfe" * 125),
    [pong(b"\xfe" * 125)],
)
add("2.5", "Send ping with binary payload of 126 octets.", lambda p: p.send_frame(PING, b"\xfe" * 126), [], fails=1002)
add(
    "2.6",
    "Send ping with binary payload of 125 octets, in octet-wise chops.",
    lambda p: p.send_frame(PING, b"\xfe" * 125, chopsize=1),
    [pong(b"\xfe" * 125)],
)


def _case_2_7(p: Fuzzer) -> None:
    p.send_frame(PONG)
    p.send_close(1000)


def _case_2_8(p: Fuzzer) -> None:
    p.send_frame(PONG, b"unsolicited pong payload")
    p.send_close(1000)


def _case_2_9(p: Fuzzer) -> None:
    p.send_frame(PONG, b"unsolicited pong payload")
    p.send_frame(PING, b"ping payload")


def _ten_pings(chopsize: int | None) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        for i in range(10):
            p.send_frame(PING, f"payload-{i}", chopsize=chopsize)

    return script


add("2.7", "Send unsolicited pong without payload.", _case_2_7, [])
add("2.8", "Send unsolicited pong with payload.", _case_2_8, [])
add("2.9", "Send unsolicited pong with payload, then ping with payload.", _case_2_9, [pong(b"ping payload")])
add("2.10", "Send 10 pings with payload.", _ten_pings(None), [pong(f"payload-{i}") for i in range(10)])
add(
    "2.11", "Send 10 pings with payload, in octet-wise chops.", _ten_pings(1), [pong(f"payload-{i}") for i in range(10)]
)

# -- 3: reserved bits -------------------------------------------------------------


def _rsv_after_text(rsv: int, **how) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(TEXT, HELLO, **how)
        p.send_frame(TEXT, HELLO, rsv=rsv, **how)
        p.send_frame(PING, **how)

    return script


add("3.1", "Send small text message with RSV = 1.", lambda p: p.send_frame(TEXT, HELLO, rsv=1), [], fails=1002)
for case_id, rsv, how, text in (
    ("3.2", 2, {}, ""),
    ("3.3", 3, {"sync": True}, " Octets are sent in frame-wise chops."),
    ("3.4", 4, {"chopsize": 1}, " Octets are sent in octet-wise chops."),
):
    add(
        case_id,
        f"Send small text message, then again with RSV = {rsv}, then ping.{text}",
        _rsv_after_text(rsv, **how),
        [message(HELLO)],
        non_strict=[],
        fails=1002,
    )
add("3.5", "Send small binary message with RSV = 5.", lambda p: p.send_frame(BINARY, BIN8, rsv=5), [], fails=1002)
# Autobahn's 3.6 says "ping" but sends opcode 2; these are its bytes.
add("3.6", "Send (binary) frame with RSV = 6.", lambda p: p.send_frame(BINARY, HELLO, rsv=6), [], fails=1002)
add("3.7", "Send close with RSV = 7.", lambda p: p.send_frame(CLOSE, rsv=7), [], fails=1002)

# -- 4: reserved opcodes ----------------------------------------------------------


def _reserved_after_text(opcode: int, payload: bytes, **how) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(TEXT, HELLO, **how)
        p.send_frame(opcode, payload, **how)
        p.send_frame(PING, **how)

    return script


for sub, opcodes in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
    kind = "non-control" if sub == 1 else "control"
    first, second, third, fourth, fifth = opcodes
    add(
        f"4.{sub}.1",
        f"Send frame with reserved {kind} opcode {first}.",
        lambda p, o=first: p.send_frame(o),
        [],
        fails=1002,
    )
    add(
        f"4.{sub}.2",
        f"Send frame with reserved {kind} opcode {second} and non-empty payload.",
        lambda p, o=second: p.send_frame(o, b"reserved opcode payload"),
        [],
        fails=1002,
    )
    for n, opcode, payload, how in ((3, third, b"", {}), (4, fourth, HELLO, {}), (5, fifth, HELLO, {"chopsize": 1})):
        add(
            f"4.{sub}.{n}",
            f"Send small text message, then frame with reserved {kind} opcode {opcode}, then ping.",
            _reserved_after_text(opcode, payload, **how),
            [message(HELLO)],
            non_strict=[],
            fails=1002,
        )

# -- 5: fragmentation -------------------------------------------------------------


def _fragmented_control(opcode: int) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(opcode, b"fragment1", fin=False)
        p.send_frame(CONT, b"fragment2")

    return script


def _two_fragments(ping: bool, **how) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(TEXT, b"fragment1", fin=False, **how)
        if ping:
            p.send_frame(PING, b"ping payload", **how)
        p.send_frame(CONT, b"fragment2", **how)

    return script


def _continuation_first(fin: bool, **how) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(CONT, b"non-continuation payload", fin=fin, **how)
        p.send_frame(TEXT, HELLO, **how)

    return script


add("5.1", "Send ping fragmented into 2 fragments.", _fragmented_control(PING), [], fails=1002)
add("5.2", "Send pong fragmented into 2 fragments.", _fragmented_control(PONG), [], fails=1002)
WAYS = ({}, {"sync": True}, {"chopsize": 1})
WAY_TEXT = ("", " Octets are sent in frame-wise chops.", " Octets are sent in octet-wise chops.")
for n, how, text in zip((3, 4, 5), WAYS, WAY_TEXT, strict=True):
    add(
        f"5.{n}",
        f"Send text message fragmented into 2 fragments.{text}",
        _two_fragments(False, **how),
        [message(b"fragment1fragment2")],
    )
for n, how, text in zip((6, 7, 8), WAYS, WAY_TEXT, strict=True):
    add(
        f"5.{n}",
        f"Send text message fragmented into 2 fragments, one ping with payload in-between.{text}",
        _two_fragments(True, **how),
        [pong(b"ping payload"), message(b"fragment1fragment2")],
    )
for first, fin in ((9, True), (12, False)):
    for n, how, text in zip((first, first + 1, first + 2), WAYS, WAY_TEXT, strict=True):
        add(
            f"5.{n}",
            f"Send unfragmented text message after continuation frame with FIN = {fin}, "
            f"where there is nothing to continue.{text}",
            _continuation_first(fin, **how),
            [],
            fails=1002,
        )


def _case_5_15(p: Fuzzer) -> None:
    p.send_frame(TEXT, b"fragment1", fin=False)
    p.send_frame(CONT, b"fragment2")
    p.send_frame(CONT, b"fragment3", fin=False)
    p.send_frame(TEXT, b"fragment4")


def _orphan_continuations(fin: bool) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        for _ in range(2):
            p.send_frame(CONT, b"fragment1", fin=fin)
            p.send_frame(TEXT, b"fragment2", fin=False)
            p.send_frame(CONT, b"fragment3")

    return script


def _case_5_18(p: Fuzzer) -> None:
    p.send_frame(TEXT, b"fragment1", fin=False)
    p.send_frame(TEXT, b"fragment2")


def _pings_inside_message(sync: bool) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        p.send_frame(TEXT, b"fragment1", fin=False, sync=sync)
        p.send_frame(CONT, b"fragment2", fin=False, sync=sync)
        p.send_frame(PING, b"pongme 1!", sync=sync)
        p.wait()  # continueLater(1, part2)
        p.note("part 2")
        p.send_frame(CONT, b"fragment3", fin=False, sync=sync)
        p.send_frame(CONT, b"fragment4", fin=False, sync=sync)
        p.send_frame(PING, b"pongme 2!", sync=sync)
        p.send_frame(CONT, b"fragment5", sync=sync)

    return script


add(
    "5.15",
    "Send text message in 2 fragments, then continuation with FIN = false where there is nothing to continue, "
    "then unfragmented text message, all in one chop.",
    _case_5_15,
    [message(b"fragment1fragment2")],
    non_strict=[],
    fails=1002,
)
add(
    "5.16",
    "Repeated 2x: continuation with FIN = false (nothing to continue), then text message in 2 fragments.",
    _orphan_continuations(False),
    [],
    fails=1002,
)
add(
    "5.17",
    "Repeated 2x: continuation with FIN = true (nothing to continue), then text message in 2 fragments.",
    _orphan_continuations(True),
    [],
    fails=1002,
)
add("5.18", "Send text message in 2 fragments, both with the text opcode.", _case_5_18, [], fails=1002)
FIVE = b"fragment1fragment2fragment3fragment4fragment5"
for case_id, sync in (("5.19", False), ("5.20", True)):
    add(
        case_id,
        "A text message in 5 fragments; a ping after the 2nd, then a pause, 2 more fragments, "
        f"another ping and the last fragment (sync = {sync}).",
        _pings_inside_message(sync),
        [pong(b"pongme 1!"), ("note", "part 2"), pong(b"pongme 2!"), message(FIVE)],
    )

# -- 6: UTF-8 ---------------------------------------------------------------------

UTF8_HELLO = b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"  # Hello-µ@ßöäüàá-UTF-8!!
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # kosme in Greek, 11 bytes
INVALID = KOSME + b"\xed\xa0\x80" + b"edited"  # a surrogate, invalid exactly at byte 12 (0xa0)


def _fragments(payloads: list[bytes]) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        for i, payload in enumerate(payloads):
            p.send_frame(TEXT if i == 0 else CONT, payload, fin=i == len(payloads) - 1)

    return script


def _octets(payload: bytes) -> list[bytes]:
    return [payload[i : i + 1] for i in range(len(payload))]


def _valid_text(case_id: str, description: str, script: Callable[[Fuzzer], None], payload: bytes) -> None:
    add(case_id, description, script, [message(payload)])


_valid_text("6.1.1", "Send text message of length 0.", lambda p: p.send_frame(TEXT, b""), b"")
_valid_text("6.1.2", "Send fragmented text message, 3 fragments each of length 0.", _fragments([b""] * 3), b"")
_valid_text(
    "6.1.3",
    "Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.",
    _fragments([b"", b"middle frame payload", b""]),
    b"middle frame payload",
)
_valid_text("6.2.1", "Send a valid UTF-8 text message in one fragment.", _fragments([UTF8_HELLO]), UTF8_HELLO)
_valid_text(
    "6.2.2",
    "Send a valid UTF-8 text message in two fragments, fragmented on a code point boundary.",
    _fragments([UTF8_HELLO[:17], UTF8_HELLO[17:]]),  # "Hello-µ@ßöä" + "üàá-UTF-8!!"
    UTF8_HELLO,
)
_valid_text(
    "6.2.3",
    "Send a valid UTF-8 text message in fragments of 1 octet.",
    _fragments(_octets(UTF8_HELLO)),
    UTF8_HELLO,
)
_valid_text("6.2.4", "Send a valid UTF-8 text message in fragments of 1 octet.", _fragments(_octets(KOSME)), KOSME)
add("6.3.1", "Send invalid UTF-8 text message unfragmented.", _fragments([INVALID]), [], fails=1007)
add("6.3.2", "Send invalid UTF-8 text message in fragments of 1 octet.", _fragments(_octets(INVALID)), [], fails=1007)

FAIL_FAST = KOSME + b"\xf4\x90\x80\x80" + b"edited"  # 0x110000: invalid exactly at byte 12 (0x90)


def _fail_fast_frames(cuts: tuple[int, int]) -> Callable[[Fuzzer], None]:
    a, b = cuts

    def script(p: Fuzzer) -> None:
        p.send_frame(TEXT, FAIL_FAST[:a], fin=False)
        if p.wait("A"):
            p.send_frame(CONT, FAIL_FAST[a:b], fin=False)
            if p.wait("B"):
                p.send_frame(CONT, FAIL_FAST[b:])

    return script


def _fail_fast_chops(cuts: tuple[int, int]) -> Callable[[Fuzzer], None]:
    a, b = cuts

    def script(p: Fuzzer) -> None:
        p.begin_frame(TEXT, len(FAIL_FAST))
        p.send_frame_data(FAIL_FAST[:a])
        if p.wait("A"):
            p.send_frame_data(FAIL_FAST[a:b])
            if p.wait("B"):
                p.send_frame_data(FAIL_FAST[b:])

    return script


for case_id, script, how in (
    ("6.4.1", _fail_fast_frames((11, 15)), "3 fragments, the 2nd makes it invalid"),
    ("6.4.2", _fail_fast_frames((12, 13)), "3 fragments, the 2nd is the one octet that makes it invalid"),
    ("6.4.3", _fail_fast_chops((11, 15)), "3 chops of one frame, the 2nd makes it invalid"),
    ("6.4.4", _fail_fast_chops((12, 13)), "3 chops of one frame, the 2nd is the octet that makes it invalid"),
):
    add(
        case_id,
        f"Send invalid UTF-8 text message in {how}, waiting after the 1st and the 2nd.",
        script,
        [timeout("A")],
        non_strict=[timeout("A"), timeout("B")],
        fails=1007,
    )


def utf8_test_sequences() -> list[tuple[str, list[tuple[bool, bytes]]]]:
    """Autobahn's ``createUtf8TestSequences`` (from Markus Kuhn's UTF-8-test.txt), cases 6.5 to 6.23."""
    seqs: list[tuple[str, list[tuple[bool, bytes]]]] = []
    seqs.append(
        (
            "Some valid UTF-8 sequences",
            [
                (True, b"hello\x24world"),
                (True, b"hello\xc2\xa2world"),
                (True, b"hello\xe2\x82\xacworld"),
                (True, b"hello\xf0\xa4\xad\xa2world"),
                (True, KOSME),
            ],
        )
    )
    # Autobahn grades each prefix with its incremental validator: valid when it ends on a code point.
    seqs.append(("All prefixes of a valid UTF-8 string", [(i in (2, 5, 7, 9, 11), KOSME[:i]) for i in range(1, 12)]))
    seqs.append(
        (
            "First possible sequence of a certain length",
            [(True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")],
        )
    )
    seqs.append(
        (
            "First possible sequence length 5/6 (invalid codepoints)",
            [(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")],
        )
    )
    seqs.append(
        (
            "Last possible sequence of a certain length",
            [(True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")],
        )
    )
    seqs.append(
        (
            "Last possible sequence length 4/5/6 (invalid codepoints)",
            [(False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"), (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")],
        )
    )
    seqs.append(
        (
            "Other boundary conditions",
            [
                (True, b"\xed\x9f\xbf"),
                (True, b"\xee\x80\x80"),
                (True, b"\xef\xbf\xbd"),
                (True, b"\xf4\x8f\xbf\xbf"),
                (False, b"\xf4\x90\x80\x80"),
            ],
        )
    )
    continuation = [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80"]
    continuation += [b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xBF))]
    seqs.append(("Unexpected continuation bytes", [(False, s) for s in continuation]))
    lonely = [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)]
    seqs.append(
        ("Lonely start characters", [(False, b"".join(bytes((i, 0x20)) for i in range(a, b))) for a, b in lonely])
    )
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80"]
    missing += [b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    seqs.append(("Sequences with last continuation byte missing", [(False, s) for s in missing]))
    seqs.append(("Concatenation of incomplete sequences", [(False, b"".join(missing))]))
    seqs.append(("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]))
    overlong_slash = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf"]
    overlong_slash += [b"\xfc\x80\x80\x80\x80\xaf"]
    seqs.append(("Examples of an overlong ASCII character", [(False, s) for s in overlong_slash]))
    overlong_max = [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf"]
    overlong_max += [b"\xfc\x83\xbf\xbf\xbf\xbf"]
    seqs.append(("Maximum overlong sequences", [(False, s) for s in overlong_max]))
    overlong_nul = [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80"]
    overlong_nul += [b"\xfc\x80\x80\x80\x80\x80"]
    seqs.append(("Overlong representation of the NUL character", [(False, s) for s in overlong_nul]))
    single = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80"]
    single += [b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    seqs.append(("Single UTF-16 surrogates", [(False, s) for s in single]))
    high = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"]
    seqs.append(
        ("Paired UTF-16 surrogates", [(False, h + low) for h in high for low in (b"\xed\xb0\x80", b"\xed\xbf\xbf")])
    )
    nonchars = [(True, b"\xef\xbf\xbe"), (True, b"\xef\xbf\xbf")]
    for z1 in (0xF0, 0xF1, 0xF2, 0xF3, 0xF4):
        for z2 in (0x8F, 0x9F, 0xAF, 0xBF):
            if z1 == 0xF4 and z2 != 0x8F:
                continue  # beyond U+10FFFF
            for z3 in (0xBE, 0xBF):
                seq = bytes((z1, z2, 0xBF, z3))
                if seq not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                    nonchars.append((True, seq))
    seqs.append(("Non-character code points (valid UTF-8)", nonchars))
    seqs.append(
        ("Unicode specials (i.e. replacement char)", [(True, bytes((0xEF, 0xBF, b))) for b in range(0xB9, 0xC0)])
    )
    return seqs


for group, (title, sequences) in enumerate(utf8_test_sequences(), 5):
    for j, (valid, payload) in enumerate(sequences, 1):
        add(
            f"6.{group}.{j}",
            f"{title}: send a text message with payload {payload.hex()} in one fragment.",
            lambda p, d=payload: p.send_message(d),
            [message(payload)] if valid else [],
            fails=None if valid else 1007,
        )

# -- 7: closing -------------------------------------------------------------------


def _script(*steps: tuple) -> Callable[[Fuzzer], None]:
    """A script of ``(method name, args...)`` steps, for the short close cases."""

    def script(p: Fuzzer) -> None:
        for name, *args in steps:
            getattr(p, name)(*args)

    return script


add(
    "7.1.1",
    "Send a message followed by a close frame.",
    _script(("send_frame", TEXT, "Hello World!")),
    [message("Hello World!")],
)
add("7.1.2", "Send two close frames.", _script(("send_close", 1000), ("send_frame", CLOSE)), [])
add("7.1.3", "Send a ping after close message.", _script(("send_close", 1000), ("send_frame", PING)), [])
add(
    "7.1.4",
    "Send text message after sending a close frame.",
    _script(("send_close", 1000), ("send_frame", TEXT, "Hello World!")),
    [],
)


def _case_7_1_5(p: Fuzzer) -> None:
    p.send_frame(TEXT, b"fragment1", fin=False)
    p.send_close(1000)
    p.send_frame(CONT, b"fragment2")


def _case_7_1_6(p: Fuzzer) -> None:
    p.send_frame(TEXT, b"BAsd7&jh23", payload_len=256 * 2**10)
    p.send_frame(TEXT, b"Hello World!")
    p.send_close(1000)
    p.send_frame(PING)


add("7.1.5", "Send message fragment1 followed by close then fragment.", _case_7_1_5, [])
BIG_7_1_6 = (b"BAsd7&jh23" * 26215)[: 256 * 2**10]
add(
    "7.1.6",
    "Send 256K message followed by close then a ping.",
    _case_7_1_6,
    # What a streaming endpoint does; the core reads all four frames at once and
    # is closed before it can echo (Autobahn: INFORMATIONAL either way). No pong.
    [message(BIG_7_1_6), message("Hello World!")],
    non_strict=[],
    informational=True,
)
add("7.3.1", "Send a close frame with payload length 0.", _script(("send_close",)), [], close_codes=(1000, None))
add(
    "7.3.2",
    "Send a close frame with payload length 1.",
    _script(("send_close", None, b"a")),
    [],
    close_codes=(1002,),
    require_clean=False,
)
add("7.3.3", "Send a close frame with payload length 2 (regular close with a code).", _script(("send_close", 1000)), [])
add(
    "7.3.4",
    "Send a close frame with close code and close reason.",
    _script(("send_close", 1000, "Hello World!")),
    [],
)
add(
    "7.3.5",
    "Send a close frame with close code and close reason of maximum length (123).",
    _script(("send_close", 1000, "*" * 123)),
    [],
)
add(
    "7.3.6",
    "Send a close frame with close code and close reason which is too long (124).",
    _script(("send_close", 1000, "*" * 124)),
    [],
    close_codes=(1002,),
    require_clean=False,
)
add(
    "7.5.1",
    "Send a close frame with invalid UTF-8 payload.",
    _script(("send_close", 1000, INVALID)),
    [],
    close_codes=(1007,),
    require_clean=False,
)
for i, code in enumerate((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999), 1):
    add(f"7.7.{i}", f"Send close with valid close code {code}.", _script(("send_close", code)), [], close_codes=(code,))
for i, code in enumerate((0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999), 1):
    add(
        f"7.9.{i}",
        f"Send close with invalid close code {code}.",
        _script(("send_close", code)),
        [],
        close_codes=(1002,),
        require_clean=False,
    )
for i, code in enumerate((5000, 65535), 1):
    add(
        f"7.13.{i}",
        f"Send close with close code {code}.",
        _script(("send_close", code)),
        [],
        close_codes=(1002,),
        require_clean=False,
    )

# -- 9: limits and performance ----------------------------------------------------

KIB, MIB = 2**10, 2**20


def _repeat(pattern: bytes, n: int) -> bytes:
    return (pattern * (n // len(pattern) + 1))[:n]


def _big_frame(opcode: int, pattern: bytes, n: int, chopsize: int | None = None) -> Callable[[Fuzzer], None]:
    return lambda p: p.send_frame(opcode, pattern, payload_len=n, chopsize=chopsize)


def _big_fragmented(binary: bool, pattern: bytes, n: int, fragment_size: int) -> Callable[[Fuzzer], None]:
    return lambda p: p.send_message(_repeat(pattern, n), binary, fragment_size=fragment_size)


def _echo_of(pattern: bytes, n: int, binary: bool, count: int = 1) -> Callable[[], dict]:
    return lambda: {OK: [message(_repeat(pattern, n), binary)] * count}


def _round_trips(opcode: int, pattern: bytes, n: int, count: int) -> Callable[[Fuzzer], None]:
    def script(p: Fuzzer) -> None:
        for _ in range(count):
            p.send_frame(opcode, pattern, payload_len=n)
            p.wait()  # the next message goes when the echo came back

    return script


SIZES_9_1 = (64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB, 8 * MIB, 16 * MIB)
FRAGMENTS_9_3 = (64, 256, 1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB)
CHOPS_9_5 = (64, 128, 256, 512, 1024, 2048)
BIN5 = b"\x00\xfe\x23\xfa\xf0"
for sub, opcode, pattern in ((1, TEXT, b"BAsd7&jh23"), (2, BINARY, BIN5)):
    for i, n in enumerate(SIZES_9_1, 1):
        add(
            f"9.{sub}.{i}",
            f"Send a message of {n} bytes.",
            _big_frame(opcode, pattern, n),
            _echo_of(pattern, n, opcode == BINARY),
        )
for sub, binary, pattern in ((3, False, b"*"), (4, True, b"\xfe")):
    for i, size in enumerate(FRAGMENTS_9_3, 1):
        add(
            f"9.{sub}.{i}",
            f"Send a fragmented message of 4 MiB in fragments of {size}.",
            _big_fragmented(binary, pattern, 4 * MIB, size),
            _echo_of(pattern, 4 * MIB, binary),
        )
for sub, opcode, pattern in ((5, TEXT, b"BAsd7&jh23"), (6, BINARY, BIN5)):
    for i, chop in enumerate(CHOPS_9_5, 1):
        add(
            f"9.{sub}.{i}",
            f"Send a message of 1 MiB, sent out in chops of {chop} octets.",
            _big_frame(opcode, pattern, MIB, chopsize=chop),
            _echo_of(pattern, MIB, opcode == BINARY),
        )
for sub, opcode, pattern in ((7, TEXT, b"*"), (8, BINARY, b"\xfe")):
    for i, n in enumerate((0, 16, 64, 256, 1024, 4096), 1):
        add(
            f"9.{sub}.{i}",
            f"Send 1000 messages of payload size {n}, each after the echo of the one before.",
            _round_trips(opcode, pattern, n, 1000),
            _echo_of(pattern, n, opcode == BINARY, count=1000),
        )

# -- 10: auto-fragmentation -------------------------------------------------------

add(
    "10.1.1",
    "Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.",
    lambda p: p.send_message(b"*" * 65536, fragment_size=1300),
    [message(b"*" * 65536)],
)


# -- the test ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT], ids=["server", "client"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_autobahn_case(case: Case, role: Role) -> None:
    outcome = run_case(case, role)
    found = problems(case, outcome)
    assert not found, f"{case.id} ({role.value}): {case.description}\n  " + "\n  ".join(found)


# Autobahn (5.20): "Implementations must be agnostic to how octet stream is
# chopped up on wire". Every case again, each read cut into single octets
# (not family 9: megabytes one octet at a time; nor the 256 KiB of 7.1.6).
OCTET_WISE = [case for case in CASES if not case.id.startswith(("9.", "7.1.6"))]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT], ids=["server", "client"])
@pytest.mark.parametrize("case", OCTET_WISE, ids=str)
def test_autobahn_case_octet_wise(case: Case, role: Role) -> None:
    outcome = run_case(case, role, read_size=1)
    found = problems(case, outcome)
    assert not found, f"{case.id} ({role.value}, octet-wise): {case.description}\n  " + "\n  ".join(found)
