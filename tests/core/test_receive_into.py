"""``receive_buffer``/``received_into``: the rest of a large frame read straight into the core's buffer."""

from __future__ import annotations

import pytest

from ws4py.protocol import BinaryReceived, Connection, Role, TextReceived, frames


@pytest.mark.parametrize("codec", frames.available_implementations())
@pytest.mark.parametrize("text", [False, True])
def test_a_large_frame_read_into_the_cores_buffer_arrives_whole(codec: str, text: bool) -> None:
    with frames.using(codec):
        client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
        payload = bytes(range(97, 123)) * 40_000  # ASCII: valid as text too
        wire = client.send_text(payload) if text else client.send_binary(payload)
        assert server.receive_buffer() is None  # no large frame under way yet
        assert server.receive_data(wire[:300_000]) == []  # a quarter of the frame: it has its buffer
        events = []
        pos = 300_000
        while pos < len(wire):
            view = server.receive_buffer()
            assert view is not None and len(view) == len(wire) - pos  # what the frame lacks
            n = min(len(view), 300_000)
            view[:n] = wire[pos : pos + n]
            events += server.received_into(n)
            pos += n
        assert server.receive_buffer() is None
        expected = TextReceived(payload.decode()) if text else BinaryReceived(payload)
        assert events == [expected]


def test_received_into_without_a_large_frame_under_way_gives_nothing() -> None:
    assert Connection(Role.SERVER).received_into(10) == []
