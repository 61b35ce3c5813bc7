"""Issue 20, memory: what hostile peers can make a ws4py server hold is bounded by its limits.

Each test starts one of the three servers in a subprocess (a tiny app, small
limits), opens several connections of one hostile peer at once (the peers of
:mod:`memory_peers`, one per memory item of the issue) and asserts that the
server's resident set grew by no more than the bound docs/memory.md gives for
such a connection, times the connections, plus a fixed slack. The numbers are
in the assertion message; ``bench/memory_worst_case.py`` prints them all.
"""

from __future__ import annotations

import sys

import pytest
from memory_peers import PEERS, SERVERS, Measurement, measure

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")


def measured(server: str, peer: str) -> Measurement:
    result = measure(server, PEERS[peer])
    print(result.describe())
    return result


@pytest.mark.parametrize("server", SERVERS)
def test_an_idle_connection_costs_a_few_kilobytes(server: str) -> None:
    result = measured(server, "idle")
    assert result.within_bound, result.describe()
    assert result.threads_after == result.threads_before, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_header_claiming_a_big_payload_costs_only_the_bytes_that_arrived(server: str) -> None:
    # Item 1: 14 bytes must not commit max_message_size.
    result = measured(server, "big_header")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_frame_sent_but_its_last_byte_costs_its_payload_about_once(server: str) -> None:
    # Item 1, the honest worst case: what a peer that sends the bytes may make the server hold.
    result = measured(server, "frame_but_last_byte")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_fragmented_text_of_wide_characters_peaks_within_the_receiving_bound(server: str) -> None:
    # The receiving side's worst case: the parts as strs and the joined str, 4 bytes a character.
    result = measured(server, "wide_text_fragments")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_flood_of_empty_continuation_frames_is_bounded_by_max_message_size(server: str) -> None:
    # Item 2: each fragment costs a list slot at least, payload or not.
    result = measured(server, "empty_continuations")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_two_byte_fragments_cost_a_small_multiple_of_max_message_size(server: str) -> None:
    # Item 2: a 2-byte fragment is an object of about 50 bytes.
    result = measured(server, "small_fragments")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_ping_flood_from_a_peer_that_never_reads_is_bounded_by_the_write_limit(server: str) -> None:
    # Item 3: the server must stop reading while its writes are paused.
    result = measured(server, "ping_flood")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_an_echo_flood_from_a_peer_that_never_reads_is_bounded_by_the_write_limit(server: str) -> None:
    # Item 3: messages that get answers.
    result = measured(server, "echo_flood")
    assert result.within_bound, result.describe()


def test_broadcasts_queued_behind_a_fragmented_send_count_against_max_write_buffer() -> None:
    # Item 4 (threaded): what waits behind a fragmented send(iterable) is buffered too.
    result = measured("threaded", "fragmented_send_and_broadcasts")
    assert result.within_bound, result.describe()


def test_texts_the_app_does_not_recv_are_held_once_within_max_queue_bytes() -> None:
    # Item 5 (ws4py.asyncio): one representation of a text, and a queue bounded by what it holds.
    result = measured("asyncio", "unreceived_texts")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_the_messages_of_one_read_cost_a_bounded_multiple_of_the_read_size(server: str) -> None:
    # The queue's limits are checked once a read's messages are in: one read may cross them.
    result = measured(server, "tiny_messages")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_permessage_deflate_costs_its_zlib_state(server: str) -> None:
    # D of docs/memory.md: an inflater and a deflater per connection, kept between messages.
    result = measured(server, "deflate")
    assert result.within_bound, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_connections_that_never_send_a_head_cost_no_thread_and_little_memory(server: str) -> None:
    # Item 6: no thread per pending handshake.
    result = measured(server, "no_handshake")
    assert result.within_bound, result.describe()
    assert result.threads_after <= result.threads_before, result.describe()


@pytest.mark.parametrize("server", SERVERS)
def test_a_head_that_never_ends_costs_at_most_the_head_size_limit(server: str) -> None:
    # Item 6: a slow head is bounded by the head size limit, and still no thread.
    result = measured(server, "partial_head")
    assert result.within_bound, result.describe()
    assert result.threads_after <= result.threads_before, result.describe()
