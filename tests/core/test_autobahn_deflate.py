"""Autobahn|Testsuite cases 12 and 13 (permessage-deflate), played against the sans-I/O core.

Both families send compressed messages of 16 bytes to 128 KiB, each after
the echo of the one before, some auto-fragmented into frames of 256 bytes to
32 KiB, and check every echo byte for byte. 12.x use Autobahn's default
offer with five data sets; 13.x use the JSON data set with seven
negotiations (``case12_x_x.py``: ``DEFLATE_PARAMS``).

The opening handshake goes through :class:`ServerHandshake` /
:class:`ClientHandshake`. With the core as server, the fuzzer offers
Autobahn's exact ``Sec-WebSocket-Extensions`` values. With the core as
client, it offers what the case's :class:`DeflateOptions` say (the first of
Autobahn's offers as options) and the fuzzer answers with Autobahn's server
accept function for the case. The fuzzer inflates with exactly the agreed
window and context rules, so a testee that overruns its window or keeps a
context it agreed to drop fails to be understood; every echo must also be
compressed when the testee's agreed window allows it (over 8 bits) and
plain otherwise.

:func:`test_deflate_parameters` adds the parameter combinations one by one
(no parameters; each ``no_context_takeover``; both; each ``max_window_bits``
from 8 to 15) in both roles, and checks what was agreed.

Adapted from Autobahn:

* The data sets are generated (deterministic), not Autobahn's files: a JSON
  document, a German text with umlauts sent as binary, an 8-bit bitmap, a
  small HTML page and a PDF-like mix of text and incompressible streams,
  each near its file's size. Messages are consecutive slices of the data
  set, wrapping around, as Autobahn takes them.
* 1000 messages per case would take minutes; each case sends
  :func:`message_count` messages instead (about 256 KiB in all, at least 2
  so that context takeover matters, at most 64).
* zlib cannot deflate within an 8-bit window, so where the fuzzer's window
  is 8 bits it deflates with run-length matches only (which fit), to still
  exercise the core's 8-bit inflater; the core sends plain messages there.
* In 13.2, 13.5 and 13.6 with the core as client, Autobahn's accept function
  only asks for ``client_no_context_takeover`` when the offer carried that
  hint. RFC 7692 (7.1.1.2) lets a server ask for it anyway, and the core's
  offer carries no hint, so the fuzzer asks regardless.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable

import pytest
from autobahn import OK, Case, DeflateSetup, Fuzzer, message, mirror_accept, problems, run_case

from ws4py.protocol import DeflateOptions, Role

KIB = 2**10

# (payload length, auto-fragment size): Autobahn's MSG_SIZES (each with 1000 messages there).
MSG_SIZES = [
    (16, 0),
    (64, 0),
    (256, 0),
    (1024, 0),
    (4096, 0),
    (8192, 0),
    (16384, 0),
    (32768, 0),
    (65536, 0),
    (131072, 0),
    (8192, 256),
    (16384, 256),
    (32768, 256),
    (65536, 256),
    (131072, 256),
    (131072, 1024),
    (131072, 4096),
    (131072, 32768),
]


def message_count(length: int) -> int:
    """How many messages a case sends (Autobahn: 1000)."""
    return max(2, min(64, 256 * KIB // length))


# -- data sets ----------------------------------------------------------------------


def _words(rng: random.Random, n: int, alphabet: str = "bcdfghklmnprstvwz", vowels: str = "aeiou") -> list[str]:
    return ["".join(rng.choice(alphabet) + rng.choice(vowels) for _ in range(rng.randint(1, 4))) for _ in range(n)]


@functools.cache
def data_set(name: str) -> bytes:
    """A deterministic stand-in for Autobahn's test data file ``name``."""
    rng = random.Random(name)
    if name == "json_data1":  # Large JSON data file (utf8, 194237 bytes)
        vocabulary = _words(rng, 400)
        records, size = [], 0
        while size < 194237:
            record = {
                "id": len(records),
                "name": " ".join(rng.choices(vocabulary, k=2)).title(),
                "email": f"{rng.choice(vocabulary)}@{rng.choice(vocabulary)}.example.org",
                "active": rng.random() < 0.5,
                "score": round(rng.uniform(0, 100), 3),
                "tags": rng.choices(vocabulary, k=rng.randint(0, 5)),
                "about": " ".join(rng.choices(vocabulary, k=rng.randint(5, 30))) + ".",
            }
            records.append(record)
            size += len(json.dumps(record, indent=2)) + 4
        return json.dumps(records, indent=2).encode()[:194237]
    if name == "gutenberg_faust":  # Goethe's Faust I, German (binary, 222218 bytes)
        vocabulary = [
            *_words(rng, 300),
            *("Faust", "Mephistopheles", "Gretchen", "Wagner", "Geist", "Herz", "Welt", "Natur", "schön", "Glück"),
            *("für", "über", "wär", "Mädchen", "Hölle", "Träume", "Blüte", "Frühling", "grün", "Äther", "Größe"),
        ]
        lines, size = [], 0
        while size < 222218:
            line = " ".join(rng.choices(vocabulary, k=rng.randint(3, 9))).capitalize() + rng.choice(",.;!?") + "\n"
            lines.append(line)
            size += len(line.encode())
        return "".join(lines).encode()[:222218]
    if name == "lena512":  # Lena picture, bitmap 512x512 (binary, 263222 bytes)
        noise = rng.randbytes(512 * 512)
        pixels = bytes(
            (((x - 256) ** 2 + (y - 256) ** 2) // 512 + noise[y * 512 + x] % 16) & 0xFF
            for y in range(512)
            for x in range(512)
        )
        palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
        header = b"BM" + (263222).to_bytes(4, "little") + bytes(4) + (1078).to_bytes(4, "little") + bytes(40)
        return (header + palette + pixels)[:263222]
    if name == "html_data1":  # Large HTML file (utf8, 2291 bytes)
        vocabulary = _words(rng, 60)
        items = "".join(f'  <li><a href="/{w}">{w.title()}</a></li>\n' for w in vocabulary)
        body = "".join(f"  <p>{' '.join(rng.choices(vocabulary, k=20))}.</p>\n" for _ in range(8))
        head = "<!DOCTYPE html>\n<html>\n<head><title>Test</title></head>\n<body>\n"
        page = f"{head}<ul>\n{items}</ul>\n{body}</body>\n</html>\n"
        return page.encode()[:2291]
    if name == "ooms":  # A larger PDF (binary, 1042328 bytes)
        parts, size, n = [], 0, 0
        while size < 1042328:
            n += 1
            stream = rng.randbytes(rng.randint(2000, 20000))
            text = f"{n} 0 obj\n<< /Type /Page /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode()
            parts += [text, stream, b"\nendstream\nendobj\n"]
            size += len(text) + len(stream) + 18
        return b"%PDF-1.4\n" + b"".join(parts)[: 1042328 - 9]
    raise KeyError(name)


def payload_slice(data: bytes, start: int, length: int) -> bytes:
    """``length`` bytes of ``data`` from ``start``, wrapping around (Autobahn's ``sendOne``)."""
    start %= len(data)
    out = data[start : start + length]
    while len(out) < length:
        out += data[: length - len(out)]
    return out


# -- cases -------------------------------------------------------------------------


def compressed_echo_case(
    case_id: str, data_name: str, binary: bool, length: int, fragment_size: int, setup: DeflateSetup
) -> Case:
    count = message_count(length)

    def payloads() -> list[bytes]:
        data = data_set(data_name)
        return [payload_slice(data, i * length, length) for i in range(count)]

    def script(p: Fuzzer) -> None:
        for payload in payloads():
            p.send_message(payload, binary, fragment_size=fragment_size or None)
            p.wait()  # the next message goes when the echo came back

    frag = f", auto-fragmented to {fragment_size} octets" if fragment_size else ""
    return Case(
        case_id,
        f"Send {count} compressed {'binary' if binary else 'text'} messages of {length} bytes of {data_name}{frag}.",
        script,
        lambda: {OK: [message(payload, binary) for payload in payloads()]},
        deflate=setup,
    )


def offer(request_no_context_takeover: bool = False, request_max_window_bits: int = 0) -> str:
    """Autobahn's ``PerMessageDeflateOffer(...).get_extension_string()`` (accepting both client parameters)."""
    value = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    if request_no_context_takeover:
        value += "; server_no_context_takeover"
    if request_max_window_bits:
        value += f"; server_max_window_bits={request_max_window_bits}"
    return value


def autobahn_accept(no_context_takeover: bool, max_window_bits: int) -> Callable:
    """Autobahn's ``PerMessageDeflateOfferAccept(offer, requestNoContextTakeover, requestMaxWindowBits)``.

    Mirrors what the offer asks of the server and asks the client for
    ``client_no_context_takeover`` and/or ``client_max_window_bits``; declines
    an offer that does not allow a client window to be asked for.
    """

    def accept(offers: list[dict]) -> list[tuple[str, str | None]] | None:
        for params in offers:
            if max_window_bits and "client_max_window_bits" not in params:
                continue
            response = [(name, value) for name, value in mirror_accept([params]) or [] if name.startswith("server_")]
            if no_context_takeover:
                response.append(("client_no_context_takeover", None))
            if max_window_bits:
                response.append(("client_max_window_bits", str(max_window_bits)))
            return response
        return None

    return accept


def _first_of(*accepts: Callable) -> Callable:
    def accept(offers: list[dict]) -> list[tuple[str, str | None]] | None:
        for one in accepts:
            answer = one(offers)
            if answer is not None:
                return answer
        return None

    return accept


DEFAULT_SETUP = DeflateSetup(fuzzer_offers=(offer(),), fuzzer_accept=autobahn_accept(False, 0))

# Autobahn's 13.x: (client offers (requestNoContextTakeover, requestMaxWindowBits), server accept).
DEFLATE_PARAMS = [
    ([(False, 0)], autobahn_accept(False, 0)),
    ([(True, 0)], autobahn_accept(True, 0)),
    ([(False, 8)], autobahn_accept(False, 8)),
    ([(False, 15)], autobahn_accept(False, 15)),
    ([(True, 8)], autobahn_accept(True, 8)),
    ([(True, 15)], autobahn_accept(True, 15)),
    (
        [(True, 8), (True, 0), (False, 0)],
        _first_of(autobahn_accept(True, 8), autobahn_accept(True, 0), autobahn_accept(False, 0)),
    ),
]

# 12.x: (data set, binary) in the order of Autobahn's report.
DATA_SETS_12 = [
    ("json_data1", False),
    ("lena512", True),
    ("gutenberg_faust", True),
    ("html_data1", False),
    ("ooms", True),
]

CASES: list[Case] = []
for j, (name, binary) in enumerate(DATA_SETS_12, 1):
    for i, (length, fragment_size) in enumerate(MSG_SIZES, 1):
        CASES.append(compressed_echo_case(f"12.{j}.{i}", name, binary, length, fragment_size, DEFAULT_SETUP))
for j, (offers, accept) in enumerate(DEFLATE_PARAMS, 1):
    nct, bits = offers[0]
    setup = DeflateSetup(
        fuzzer_offers=tuple(offer(*o) for o in offers),
        client_options=DeflateOptions(server_no_context_takeover=nct, server_max_window_bits=bits or None),
        fuzzer_accept=accept,
    )
    for i, (length, fragment_size) in enumerate(MSG_SIZES, 1):
        CASES.append(compressed_echo_case(f"13.{j}.{i}", "json_data1", False, length, fragment_size, setup))


def deflate_problems(case: Case, outcome) -> list[str]:  # type: ignore[no-untyped-def]
    found = problems(case, outcome)
    if outcome.deflate is None:
        return [*found, "permessage-deflate was not negotiated"]
    testee_bits = outcome.deflate.recv_bits
    expected = testee_bits > 8
    wrong = [i for i, compressed in enumerate(outcome.compressed) if compressed != expected]
    if wrong:
        how = "compressed" if not expected else "uncompressed"
        found.append(f"echo {wrong[0]} (of {len(wrong)}) was {how} with a {testee_bits}-bit testee window")
    return found


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT], ids=["server", "client"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_autobahn_deflate_case(case: Case, role: Role) -> None:
    outcome = run_case(case, role)
    found = deflate_problems(case, outcome)
    assert not found, f"{case.id} ({role.value}): {case.description}\n  agreed {outcome.agreed}\n  " + "\n  ".join(
        found
    )


# -- every parameter on its own ------------------------------------------------------

PARAMETERS: list[tuple[str, dict]] = [
    ("no-params", {}),
    ("client_no_context_takeover", {"client_no_context_takeover": True}),
    ("server_no_context_takeover", {"server_no_context_takeover": True}),
    ("both_no_context_takeover", {"client_no_context_takeover": True, "server_no_context_takeover": True}),
]
PARAMETERS += [(f"client_max_window_bits={b}", {"client_max_window_bits": b}) for b in range(8, 16)]
PARAMETERS += [(f"server_max_window_bits={b}", {"server_max_window_bits": b}) for b in range(8, 16)]
PARAMETER_SIZES = [(64, 0), (4096, 0), (65536, 0), (65536, 256)]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT], ids=["server", "client"])
@pytest.mark.parametrize(("length", "fragment_size"), PARAMETER_SIZES, ids=lambda v: str(v))
@pytest.mark.parametrize(("name", "params"), PARAMETERS, ids=[name for name, _ in PARAMETERS])
def test_deflate_parameters(name: str, params: dict, length: int, fragment_size: int, role: Role) -> None:
    options = DeflateOptions(**params)
    setup = DeflateSetup(
        # A plain offer: what is agreed comes from the testee's options.
        fuzzer_offers=("permessage-deflate; client_max_window_bits",),
        server_options=options,
        client_options=options,
        fuzzer_accept=mirror_accept,
    )
    case = compressed_echo_case(name, "json_data1", False, length, fragment_size, setup)
    outcome = run_case(case, role)
    found = deflate_problems(case, outcome)
    assert not found, f"{name} ({role.value}), {length} bytes/{fragment_size}:\n  " + "\n  ".join(found)
    deflate = outcome.deflate
    server_bits = params.get("server_max_window_bits", 15)
    client_bits = params.get("client_max_window_bits", 15)
    server_nct = params.get("server_no_context_takeover", False)
    client_nct = params.get("client_no_context_takeover", False)
    if role is Role.SERVER:  # the fuzzer is the client
        agreed = (
            deflate.recv_bits,
            deflate.recv_no_context_takeover,
            deflate.send_bits,
            deflate.send_no_context_takeover,
        )
    else:
        agreed = (
            deflate.send_bits,
            deflate.send_no_context_takeover,
            deflate.recv_bits,
            deflate.recv_no_context_takeover,
        )
    assert agreed == (server_bits, server_nct, client_bits, client_nct), outcome.agreed
