"""WebSocket.send(): what each kind of payload becomes on the wire, and sends from many threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from threaded_support import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    RawClient,
    RecordingClient,
    ServeFactory,
    Server,
)

from ws4py.exc import StreamClosed
from ws4py.messaging import BinaryMessage, PingControlMessage, TextMessage
from ws4py.websocket import EchoWebSocket


def _raw_pair(server: Server) -> tuple[RawClient, Any]:
    peer = RawClient(server.port)
    return peer, server.accept()


@pytest.mark.parametrize(
    ("payload", "binary", "opcode", "data"),
    [
        ("héllo", False, OP_TEXT, "héllo".encode()),
        (b"utf-8 bytes", False, OP_TEXT, b"utf-8 bytes"),
        (b"\x00\xff", True, OP_BINARY, b"\x00\xff"),
        (bytearray(b"ba"), True, OP_BINARY, b"ba"),
        (memoryview(b"mv"), True, OP_BINARY, b"mv"),
        ("text stays text", True, OP_TEXT, b"text stays text"),
        (TextMessage("msg"), False, OP_TEXT, b"msg"),
        (BinaryMessage(b"\x01msg"), False, OP_BINARY, b"\x01msg"),
        (TextMessage("binary flag ignored"), True, OP_TEXT, b"binary flag ignored"),
    ],
    ids=[
        "str",
        "bytes-as-text",
        "bytes-binary",
        "bytearray-binary",
        "memoryview-binary",
        "str-with-binary-flag",
        "text-message",
        "binary-message",
        "message-keeps-its-opcode",
    ],
)
def test_payload_becomes_one_unfragmented_frame(
    server: Server, payload: Any, binary: bool, opcode: int, data: bytes
) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(payload, binary)
        frame = peer.recv_frame()
        assert (frame.fin, frame.opcode, frame.payload) == (True, opcode, data)
        assert not frame.masked, "a server never masks"


def test_send_of_a_ping_message_sends_a_ping(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(PingControlMessage(b"via send"))
        frame = peer.recv_frame()
        assert (frame.opcode, frame.payload) == (0x9, b"via send")


def _chunks(*parts: str | bytes) -> Iterator[str | bytes]:
    yield from parts


def test_generator_is_sent_as_one_fragmented_text_message(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(_chunks("frag", "mén", b"ted"))
        frames = [peer.recv_frame() for _ in range(3)]
        assert [(f.opcode, f.fin) for f in frames] == [(OP_TEXT, False), (OP_CONT, False), (OP_CONT, True)]
        assert b"".join(f.payload for f in frames) == "fragménted".encode()


def test_generator_with_binary_is_sent_as_one_fragmented_binary_message(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(_chunks(b"\x00", b"\x01"), binary=True)
        frames = [peer.recv_frame() for _ in range(2)]
        assert [(f.opcode, f.fin) for f in frames] == [(OP_BINARY, False), (OP_CONT, True)]
        assert b"".join(f.payload for f in frames) == b"\x00\x01"


def test_generator_of_one_chunk_is_one_final_frame(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(_chunks("only"))
        frame = peer.recv_frame()
        assert (frame.opcode, frame.fin, frame.payload) == (OP_TEXT, True, b"only")


def test_empty_generator_sends_an_empty_message(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.send(_chunks())
        frame = peer.recv_frame()
        assert (frame.opcode, frame.fin, frame.payload) == (OP_TEXT, True, b"")


def test_peer_receives_a_fragmented_send_as_one_message(connect: Any) -> None:
    client, ws = connect()
    parts = [f"part {i};" * 50 for i in range(20)]
    client.send(iter(parts))
    client.send((bytes([i]) * 1000 for i in range(5)), binary=True)
    text, binary = ws.wait_messages(2)
    assert str(text) == "".join(parts)
    assert binary.data == b"".join(bytes([i]) * 1000 for i in range(5))
    assert len(ws.messages) == 2


@pytest.mark.parametrize("payload", [42, 1.5, None, object()], ids=["int", "float", "None", "object"])
def test_other_payload_types_raise_value_error(connect: Any, payload: Any) -> None:
    client, ws = connect()
    with pytest.raises(ValueError):
        client.send(payload)
    client.send("still usable")
    assert str(ws.wait_messages(1)[0]) == "still usable"


def test_send_after_the_connection_closed_raises_stream_closed(connect: Any) -> None:
    client, ws = connect()
    ws.close()
    client.wait_closed()
    with pytest.raises(StreamClosed):
        client.send("too late")
    with pytest.raises(RuntimeError):  # what the original ws4py raised
        client.send(b"too late", binary=True)
    ws.wait_closed()
    with pytest.raises(StreamClosed):
        ws.send("too late")


def test_send_while_closing_raises_stream_closed(server: Server) -> None:
    peer, ws = _raw_pair(server)
    with peer.sock:
        ws.close(1000)
        with pytest.raises(StreamClosed):
            ws.send("after close()")
        with pytest.raises(StreamClosed):
            ws.send(_chunks("a", "b"))
        assert peer.recv_frame().opcode == OP_CLOSE
        peer.send_close(1000)
        peer.assert_eof()


def test_sends_from_a_callback_on_the_manager_thread_are_delivered(serve: ServeFactory) -> None:
    server = serve(EchoWebSocket)
    client = RecordingClient(server.url())
    client.connect()
    try:
        client.send("echo me")
        client.send(b"\x00\x01", binary=True)
        client.send(_chunks("frag", "ment"))
        text, binary, fragmented = client.wait_messages(3)
        assert text.is_text and str(text) == "echo me"
        assert binary.is_binary and binary.data == b"\x00\x01"
        assert str(fragmented) == "fragment"
    finally:
        client.close()
        client.wait_closed()


def _expected_messages(thread: int, count: int) -> list[str]:
    # Sizes from tiny to over the write buffer's high-water mark.
    return [f"<{thread}:{i}:" + chr(0x41 + thread) * ((i * 37_123 + thread) % 200_000) + ">" for i in range(count)]


def _send_from_threads(websocket: Any, threads: int, count: int) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def sender(thread: int) -> None:
        try:
            start.wait(TIMEOUT)
            for text in _expected_messages(thread, count):
                if thread % 2:
                    # Fragmented: three frames that must not interleave with others.
                    third = len(text) // 3
                    websocket.send(iter([text[:third], text[third : 2 * third], text[2 * third :]]))
                else:
                    websocket.send(text)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=sender, args=(t,), name=f"sender-{t}") for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(4 * TIMEOUT)
    assert not any(w.is_alive() for w in workers), "a sender is stuck"
    assert not errors, errors


def _check_received(received: list[str], threads: int, count: int) -> None:
    assert len(received) == threads * count
    for thread in range(threads):
        mine = [m for m in received if m.startswith(f"<{thread}:")]
        assert mine == _expected_messages(thread, count), f"thread {thread}'s messages are damaged or out of order"


def test_sends_from_eight_client_threads_arrive_whole_and_in_order(connect: Any) -> None:
    client, ws = connect()
    _send_from_threads(client, 8, 12)
    messages = ws.wait_messages(8 * 12, timeout=4 * TIMEOUT)
    _check_received([str(m) for m in messages], 8, 12)
    client.send("end")
    assert str(ws.wait_messages(8 * 12 + 1)[-1]) == "end"
    assert not ws.closed_event.is_set()


def test_sends_from_eight_server_threads_arrive_whole_and_in_order(connect: Any) -> None:
    client, ws = connect()
    _send_from_threads(ws, 8, 12)
    messages = client.wait_messages(8 * 12, timeout=4 * TIMEOUT)
    _check_received([str(m) for m in messages], 8, 12)
    assert not client.closed_event.is_set()


def test_a_ping_is_answered_in_the_middle_of_a_fragmented_send(server: Server) -> None:
    peer, ws = _raw_pair(server)
    release = threading.Event()

    def paused() -> Iterator[str]:
        # send() looks one chunk ahead (to know which is last), as ws4py always did.
        yield "first "
        yield "second "
        assert release.wait(TIMEOUT)
        yield "third"

    sender = threading.Thread(target=ws.send, args=(paused(),), name="fragment-sender")
    with peer.sock:
        sender.start()
        first = peer.recv_frame()
        assert (first.opcode, first.fin) == (OP_TEXT, False)
        peer.send_frame(0x9, b"mid-message")
        pong = peer.recv_frame()
        assert (pong.opcode, pong.payload) == (OP_PONG, b"mid-message")
        ws.ping(b"ours")  # another thread's control frame goes out too
        ping = peer.recv_frame()
        assert (ping.opcode, ping.payload) == (0x9, b"ours")
        release.set()
        frames = [peer.recv_frame() for _ in range(2)]
        assert [(f.opcode, f.fin, f.payload) for f in frames] == [
            (OP_CONT, False, b"second "),
            (OP_CONT, True, b"third"),
        ]
        sender.join(TIMEOUT)
        assert not sender.is_alive()


def test_a_text_send_waits_for_another_threads_fragmented_send(server: Server) -> None:
    peer, ws = _raw_pair(server)
    release = threading.Event()

    def paused() -> Iterator[str]:
        yield "one"
        yield "two"
        assert release.wait(TIMEOUT)
        yield "three"

    fragmented = threading.Thread(target=ws.send, args=(paused(),), name="fragment-sender")
    whole = threading.Thread(target=ws.send, args=("whole",), name="whole-sender")
    with peer.sock:
        fragmented.start()
        assert peer.recv_frame().payload == b"one"
        whole.start()
        whole.join(0.2)
        assert whole.is_alive(), "a data frame went out inside another fragmented message"
        release.set()
        frames = [peer.recv_frame() for _ in range(3)]
        assert [(f.opcode, f.fin, f.payload) for f in frames] == [
            (OP_CONT, False, b"two"),
            (OP_CONT, True, b"three"),
            (OP_TEXT, True, b"whole"),
        ]
        for thread in (fragmented, whole):
            thread.join(TIMEOUT)
            assert not thread.is_alive()
