"""ws4py.manager.WebSocketManager: membership, broadcast, close_all, stop, failures, pollers, idleness."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

import pytest
from threaded_support import (
    OP_CLOSE,
    OP_TEXT,
    TIMEOUT,
    RawClient,
    Recorder,
    RecordingClient,
    RecordingWebSocket,
    ServeFactory,
    Server,
    build_frame,
    close_payload,
    parse_close,
    wait_until,
)

from ws4py.client import WebSocketBaseClient
from ws4py.manager import (
    EPollPoller,
    KQueuePoller,
    PollPoller,
    SelectPoller,
    WebSocketManager,
    default_poller,
)
from ws4py.messaging import BinaryMessage, TextMessage
from ws4py.pollers import READ, WRITE
from ws4py.websocket import EchoWebSocket, WebSocket


class ManagedClient(Recorder, WebSocketBaseClient):
    """The manager page's client: hands itself to a manager once the handshake is done."""

    manager: WebSocketManager

    def handshake_ok(self) -> None:
        self.manager.add(self)


@pytest.fixture
def manager() -> Any:
    """A started client-side manager, stopped and joined at teardown."""
    m = WebSocketManager()
    m.start()
    yield m
    m.stop()
    m.join(TIMEOUT)
    assert not m.is_alive()


def _managed_client(manager: WebSocketManager, url: str) -> ManagedClient:
    client = ManagedClient(url)
    client.manager = manager
    client.connect()
    client.wait_opened()
    return client


# -- membership -------------------------------------------------------------------


def test_add_calls_opened_on_the_manager_thread_and_registers_the_fd(server: Server, manager: Any) -> None:
    client = _managed_client(manager, server.url())
    ws = server.accept()
    assert client.values("opened") == [None]
    assert client.calls[0][2] == manager.ident
    assert client in manager
    assert len(manager) == 1
    assert list(manager) == [client]
    assert manager.websockets == {client.sock.fileno(): client}
    client.close()
    client.wait_closed()
    ws.wait_closed()


def test_adding_a_websocket_twice_does_nothing(server: Server, manager: Any) -> None:
    client = _managed_client(manager, server.url())
    ws = server.accept()
    manager.add(client)
    client.send("after the second add")
    assert str(ws.wait_messages(1)[0]) == "after the second add"
    assert len(manager) == 1
    assert client.values("opened") == [None]
    client.close()
    client.wait_closed()


def test_websockets_is_a_snapshot_safe_to_iterate_while_others_come_and_go(server: Server, manager: Any) -> None:
    clients = [_managed_client(manager, server.url()) for _ in range(3)]
    for _ in clients:
        server.accept()
    snapshot = manager.websockets
    assert set(snapshot.values()) == set(clients)
    for fd, ws in snapshot.items():
        assert ws.sock.fileno() == fd
        ws.close()  # the manager drops each one while we iterate
    for client in clients:
        client.wait_closed()
    assert len(snapshot) == 3, "the snapshot is not the live mapping"
    snapshot.clear()
    wait_until(lambda: len(manager) == 0, what="the manager to drop closed websockets")
    assert manager.websockets == {}


def test_iterating_the_manager_while_websockets_are_added_does_not_fail(serve: ServeFactory, manager: Any) -> None:
    server = serve()
    stop = threading.Event()
    errors: list[BaseException] = []

    def iterate() -> None:
        try:
            while not stop.is_set():
                for ws in manager:
                    assert isinstance(ws, WebSocket)
                for _ in manager.websockets.values():
                    pass
                len(manager)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=iterate, name="iterate-manager")
    reader.start()
    try:
        clients = [_managed_client(manager, server.url()) for _ in range(10)]
        for client in clients[::2]:
            client.close()
        for client in clients[::2]:
            client.wait_closed()
    finally:
        stop.set()
        reader.join(TIMEOUT)
    assert not errors
    for client in clients[1::2]:
        client.close()
        client.wait_closed()


def test_remove_stops_watching_without_calling_closed(server: Server, manager: Any) -> None:
    client = _managed_client(manager, server.url())
    ws = server.accept()
    manager.remove(client)
    wait_until(lambda: client not in manager, what="remove()")
    assert len(manager) == 0
    ws.send("not read by anyone now")
    client.send("the socket still works")  # blocking send outside a manager
    assert str(ws.wait_messages(1)[0]) == "the socket still works"
    assert not client.closed_event.is_set()
    assert client.messages == []
    # Handed back to the manager, it reads again, from where it stopped.
    manager.add(client)
    assert str(client.wait_messages(1)[0]) == "not read by anyone now"
    client.close()
    client.wait_closed()


def test_a_closed_peer_leaves_the_manager_by_itself(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        assert ws in server.manager
        assert len(server.manager) == 1
        peer.send_close()
        ws.wait_closed()
        assert ws not in server.manager, "closed() runs after the websocket left the manager"
        assert len(server.manager) == 0
        assert server.manager.websockets == {}


def test_contains_is_false_for_strangers(server: Server) -> None:
    assert "not a websocket" not in server.manager
    assert WebSocket(None) not in server.manager


def test_adding_a_websocket_without_a_socket_raises_value_error(manager: Any) -> None:
    with pytest.raises(ValueError):
        manager.add(WebSocket(None))


def test_a_call_from_another_thread_while_the_loop_wakes_up_is_not_lost() -> None:
    """Regression (lost wake-up): another thread queues a call at the moment the loop starts
    draining its wake-up socket; once the loop is back asleep, stop() from another thread
    must still wake it. White-box (a profile hook on the loop's thread) to make the race
    deterministic; it fails every time if ``_wake_pending`` is cleared before the drain."""
    m = WebSocketManager()
    injected: list[bool] = []

    def nothing() -> None:
        """A call queued from another thread (remove() of an unknown websocket queued one
        before it became a no-op, as in ws4py 0.6)."""

    asleep = threading.Event()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if not injected:
            if event == "c_call" and frame.f_code.co_name == "_drain_wakeups":
                injected.append(True)
                other = threading.Thread(target=m.loop.call_soon, args=(nothing,), name="queue-a-call")
                other.start()
                other.join(TIMEOUT)
        elif event == "call" and frame.f_code.co_name == "poll" and frame.f_locals.get("timeout", 0) is None:
            asleep.set()  # the loop goes to sleep with nothing left to do

    def loop() -> None:
        sys.setprofile(hook)
        try:
            m.run()
        finally:
            sys.setprofile(None)

    runner = threading.Thread(target=loop, name="manager-loop", daemon=True)
    runner.start()
    m.loop.call_soon(nothing)  # wakes the idle loop: it drains its wake-up socket
    assert asleep.wait(TIMEOUT), "the loop never went back to sleep after draining its wake-up socket"
    assert injected
    m.stop()
    runner.join(1.0)
    stuck = runner.is_alive()
    if stuck:
        m._wake_w.send(b"\0")  # wake it by hand so that no thread outlives the test
        runner.join(TIMEOUT)
    assert not stuck, "stop() from another thread did not wake the idle manager"


# -- broadcast and close_all --------------------------------------------------------


def test_broadcast_reaches_every_websocket_with_the_right_type(connect: Any, server: Server) -> None:
    clients = [connect()[0] for _ in range(3)]
    server.manager.broadcast("to all")
    server.manager.broadcast(b"bytes are text by default")
    server.manager.broadcast(b"\x00\x01", binary=True)
    server.manager.broadcast(BinaryMessage(b"\x02"))
    server.manager.broadcast(TextMessage("a message object"))
    for client in clients:
        got = client.wait_messages(5)
        assert [(m.is_binary, m.data) for m in got] == [
            (False, b"to all"),
            (False, b"bytes are text by default"),
            (True, b"\x00\x01"),
            (True, b"\x02"),
            (False, b"a message object"),
        ]


def test_broadcast_skips_websockets_that_are_closing(server: Server) -> None:
    open_peer, closing_peer = RawClient(server.port), RawClient(server.port)
    with open_peer.sock, closing_peer.sock:
        server.accept()
        closing = server.accept()
        closing.close(1000)
        server.manager.broadcast("news")
        assert open_peer.recv_frame().payload == b"news"
        close = closing_peer.recv_frame()
        assert close.opcode == OP_CLOSE
        closing_peer.send_frame(OP_CLOSE, close.payload)
        closing_peer.assert_eof()


def test_broadcast_from_a_client_manager_is_masked_and_delivered(serve: ServeFactory, manager: Any) -> None:
    servers = [serve(), serve()]
    clients = [_managed_client(manager, s.url()) for s in servers]
    remotes = [s.accept() for s in servers]
    manager.broadcast("from the clients")
    for remote in remotes:
        assert str(remote.wait_messages(1)[0]) == "from the clients"
    for client in clients:
        client.close()
        client.wait_closed()


def test_close_all_sends_that_code_and_message_to_every_peer(connect: Any, server: Server) -> None:
    pairs = [connect() for _ in range(3)]
    server.manager.close_all(4002, "maintenance")
    for client, ws in pairs:
        assert client.wait_closed() == (4002, "maintenance")
        assert ws.wait_closed()[0] == 4002
    wait_until(lambda: len(server.manager) == 0, what="the manager to empty")


def test_close_all_defaults_to_1001(connect: Any, server: Server) -> None:
    client, _ = connect()
    server.manager.close_all()
    assert client.wait_closed() == (1001, "Server is shutting down")


# -- stop ---------------------------------------------------------------------------


def test_stop_closes_open_websockets_with_1001_and_join_returns(server: Server, manager: Any) -> None:
    clients = [_managed_client(manager, server.url()) for _ in range(3)]
    remotes = [server.accept() for _ in clients]
    manager.stop()
    manager.join(TIMEOUT)
    assert not manager.is_alive()
    for client, remote in zip(clients, remotes, strict=True):
        assert client.wait_closed()[0] == 1001
        assert remote.wait_closed()[0] == 1001
    assert not manager.running


def test_server_manager_stop_closes_its_websockets_with_1001(connect: Any, server: Server) -> None:
    client, ws = connect()
    assert server.manager.running
    server.manager.stop()
    server.manager.join(TIMEOUT)
    assert not server.manager.is_alive()
    assert client.wait_closed() == (1001, "Server is shutting down")
    assert ws.wait_closed()[0] == 1001


def test_stop_of_an_idle_manager_returns_at_once() -> None:
    m = WebSocketManager()
    m.start()
    m.stop()
    m.join(TIMEOUT)
    assert not m.is_alive()


def test_a_websocket_added_after_stop_is_terminated(server: Server) -> None:
    m = WebSocketManager()
    m.start()
    m.stop()
    m.join(TIMEOUT)
    client = ManagedClient(server.url())
    client.manager = m
    client.connect()
    try:
        assert client.closed_event.wait(1.0), "closed() was not called"
        assert client.values("closed")[0][0] == 1006
        assert client.sock.fileno() == -1
    finally:
        client.sock.close()


# -- failures in callbacks ------------------------------------------------------------


class FailsOnBoom(RecordingWebSocket):
    def received_message(self, message: Any) -> None:
        super().received_message(message)
        if str(message) == "boom":
            raise RuntimeError("handler bug")
        self.send("echo: " + str(message))


def test_an_exception_in_received_message_closes_that_websocket_with_1011(serve: ServeFactory) -> None:
    server = serve(FailsOnBoom)
    victim, bystander = RecordingClient(server.url()), RecordingClient(server.url())
    victim.connect()
    bystander.connect()
    try:
        server.accept()
        server.accept()
        victim.send("boom")
        assert victim.wait_closed() == (1011, "internal error")
        bystander.send("still served?")
        assert str(bystander.wait_messages(1)[0]) == "echo: still served?"
        assert server.manager.is_alive()
        # New connections are served too.
        late = RecordingClient(server.url())
        late.connect()
        late.send("late")
        assert str(late.wait_messages(1)[0]) == "echo: late"
        late.close()
        late.wait_closed()
    finally:
        bystander.close()
        bystander.wait_closed()


def test_an_exception_in_received_message_still_answers_a_close_read_with_it(serve: ServeFactory) -> None:
    server = serve(FailsOnBoom)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.sock.sendall(build_frame(OP_TEXT, b"boom") + build_frame(OP_CLOSE, close_payload(1000)))
        try:
            close = peer.recv_frame(1.0)
        except TimeoutError:
            pytest.fail("no close frame: the connection hangs")
        finally:
            peer.close()
            ws.wait_closed()
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload)[0] in (1000, 1011)


def test_an_exception_in_closed_does_not_stop_the_manager(serve: ServeFactory) -> None:
    class FailsOnClosed(RecordingWebSocket):
        def closed(self, code: int, reason: str | None = None) -> None:
            super().closed(code, reason)
            raise RuntimeError("bug in closed()")

    server = serve(FailsOnClosed)
    first = RawClient(server.port)
    first.close()
    server.accept().wait_closed()
    peer = RawClient(server.port)
    with peer.sock:
        server.accept()
        peer.send_frame(0x9, b"alive?")
        assert peer.recv_frame().payload == b"alive?"
        peer.send_close()
        peer.recv_frame()
        peer.assert_eof()


# -- idleness --------------------------------------------------------------------------


def _thread_cpu_seconds(native_id: int | None) -> float:
    """CPU time of one thread of this process (Linux), else of the whole process."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return time.process_time()


def test_an_idle_manager_with_100_connections_uses_no_cpu(server: Server) -> None:
    peers = []
    try:
        peers.extend(RawClient(server.port) for _ in range(100))  # their add()s race each other
        for _ in peers:
            server.accept()
        wait_until(lambda: len(server.manager) == 100, what="100 connections in the manager")
        idle = threading.Event()
        idle.wait(0.05)  # the last add's writes and busy polling are over
        # The manager's own thread: the rest of the process (coverage, the other servers' polling
        # threads) is not the manager's idleness.
        native_id = server.manager.native_id
        cpu_before, wall_before = _thread_cpu_seconds(native_id), time.monotonic()
        idle.wait(1.0)
        cpu = _thread_cpu_seconds(native_id) - cpu_before
        wall = time.monotonic() - wall_before
        assert wall >= 0.9
        assert cpu < 0.02, f"{cpu:.3f}s of CPU in {wall:.2f}s of idleness: a busy loop?"
        assert len(server.manager) == 100
    finally:
        for peer in peers:
            peer.close()
    wait_until(lambda: len(server.manager) == 0, what="the manager to drop the closed peers")


class RecordingPoller(EPollPoller):
    """A real epoll poller that records each wait: ``"poll None"``, ``"poll 0"`` (its
    timeout) or ``"spin"`` (busy polling) on entry, whether it found anything on return."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: list[str] = []
        self.found: list[bool] = []

    def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        self.entered.append(f"poll {timeout if timeout is None else round(timeout, 3):}")
        ready = super().poll(timeout)
        self.found.append(bool(ready))
        return ready

    def spin(self, seconds: float) -> bool:
        self.entered.append("spin")
        ready = super().spin(seconds)
        self.found.append(ready)
        return ready

    def sleeping(self) -> bool:
        """Whether its thread is in a poll with no timeout that has not returned."""
        entered = self.entered
        return len(entered) == len(self.found) + 1 and entered[-1] == "poll None"


def _polls_after_a_message(server: Server, busy_poll: float, cpus: set[int] | None = None) -> list[tuple[str, bool]]:
    """A client manager's waits, from the one that wakes for a message to the one it sleeps in;
    its thread bound to ``cpus`` if given."""
    poller = RecordingPoller()
    m = WebSocketManager(poller, busy_poll=busy_poll)
    if cpus is None:
        m.start()
    else:
        mine = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpus)  # a new thread takes its creator's
        try:
            m.start()
        finally:
            os.sched_setaffinity(0, mine)
    try:
        client = _managed_client(m, server.url())
        ws = server.accept()
        wait_until(poller.sleeping, what="the manager to sleep")
        mark = len(poller.found)
        ws.send("wake up")
        client.wait_messages(1)
        wait_until(poller.sleeping, what="the manager to sleep again")
        return list(zip(poller.entered[mark:], poller.found[mark:], strict=False))  # the last has not returned
    finally:
        m.stop()
        m.join(TIMEOUT)


def test_after_a_message_the_manager_polls_without_sleeping_before_it_sleeps(serve: ServeFactory) -> None:
    server = serve(busy_poll=0)  # a server that never holds the busy polling itself
    # Woken by the message, then polling without sleeping for 50 ms (nothing more comes), then asleep.
    assert _polls_after_a_message(server, busy_poll=0.05) == [("poll None", True), ("spin", False)]


def test_with_busy_poll_0_the_manager_sleeps_right_after_a_message(serve: ServeFactory) -> None:
    assert _polls_after_a_message(serve(busy_poll=0), busy_poll=0) == [("poll None", True)]


@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: ())(0)) < 2, reason="needs two CPUs")
def test_a_manager_bound_to_one_cpu_never_polls_busily(serve: ServeFactory) -> None:
    """On one CPU busy polling would only delay the peer it waits for."""
    one_cpu = {min(os.sched_getaffinity(0))}
    assert _polls_after_a_message(serve(busy_poll=0), busy_poll=0.05, cpus=one_cpu) == [("poll None", True)]


def test_only_one_manager_of_the_process_polls_busily_at_a_time(serve: ServeFactory) -> None:
    """Two threads polling busily would pass the GIL back and forth: the second one sleeps."""
    server = serve(busy_poll=0)
    pollers = [RecordingPoller(), RecordingPoller()]
    managers = [WebSocketManager(poller, busy_poll=0.5) for poller in pollers]
    try:
        sides = []
        for m, poller in zip(managers, pollers, strict=True):
            m.start()
            client = _managed_client(m, server.url())
            sides.append((client, server.accept(), poller))
            wait_until(poller.sleeping, what="the manager to sleep")
        (first, first_peer, first_poller), (second, second_peer, second_poller) = sides
        first_peer.send("spin")
        first.wait_messages(1)
        wait_until(lambda: first_poller.entered[-1] == "spin", what="the first manager to poll busily")
        mark = len(second_poller.found)
        second_peer.send("sleep")
        second.wait_messages(1)
        wait_until(second_poller.sleeping, what="the second manager to sleep again")
        polls = list(zip(second_poller.entered[mark:], second_poller.found[mark:], strict=False))
        assert polls == [("poll None", True)], f"the second manager polled busily beside the first: {polls}"
        assert first_poller.entered[-1] == "spin", "the first manager stopped polling busily within its 0.5 s"
    finally:
        for m in managers:
            m.stop()
        for m in managers:
            m.join(TIMEOUT)


def test_a_negative_busy_poll_is_refused() -> None:
    with pytest.raises(ValueError, match="busy_poll"):
        WebSocketManager(busy_poll=-1)


# -- pollers ---------------------------------------------------------------------------


POLLERS = [SelectPoller, PollPoller, EPollPoller]


@pytest.mark.parametrize("poller_cls", POLLERS, ids=[cls.__name__ for cls in POLLERS])
def test_each_poller_drives_a_server_manager_end_to_end(serve: ServeFactory, poller_cls: type) -> None:
    if poller_cls.selector_class is None:
        pytest.skip(f"{poller_cls.__name__} is not available here")
    server = serve(EchoWebSocket, poller=poller_cls())
    assert isinstance(server.manager.poller, poller_cls)
    client = RecordingClient(server.url())
    client.connect()
    big = bytes(range(256)) * 16 * 1024  # 4 MiB: the echo is written in many steps
    client.send("hello")
    client.send(big, binary=True)
    client.ping(b"p")
    text, binary = client.wait_messages(2, timeout=3 * TIMEOUT)
    assert str(text) == "hello"
    assert binary.data == big
    client.wait_for("pong")
    client.close()
    assert client.wait_closed()[0] == 1000
    wait_until(lambda: len(server.manager) == 0, what="the server to drop the connection")


@pytest.mark.parametrize("poller_cls", POLLERS, ids=[cls.__name__ for cls in POLLERS])
def test_each_poller_drives_a_client_manager(server: Server, poller_cls: type) -> None:
    if poller_cls.selector_class is None:
        pytest.skip(f"{poller_cls.__name__} is not available here")
    m = WebSocketManager(poller_cls())
    m.start()
    try:
        client = _managed_client(m, server.url())
        ws = server.accept()
        ws.send("to the client")
        assert str(client.wait_messages(1)[0]) == "to the client"
        client.close()
        client.wait_closed()
    finally:
        m.stop()
        m.join(TIMEOUT)
    assert not m.is_alive()


@pytest.mark.parametrize("poller_cls", POLLERS, ids=[cls.__name__ for cls in POLLERS])
def test_spin_tells_when_a_socket_becomes_ready_and_leaves_its_event_to_poll(poller_cls: type) -> None:
    if poller_cls.selector_class is None:
        pytest.skip(f"{poller_cls.__name__} is not available here")
    poller = poller_cls()
    a, b = socket.socketpair()
    try:
        poller.register(a.fileno(), READ, "a")
        assert poller.spin(0.01) is False  # nothing: polled for 10 ms, then gave up
        threading.Timer(0.02, b.send, (b"x",)).start()
        assert poller.spin(5.0) is True  # the byte came while it polled
        assert poller.poll(0) == [("a", READ)]  # and its event is still there
    finally:
        poller.release()
        a.close()
        b.close()


def _poller_story(poller_cls: type) -> list[object]:
    """What a poller reports along one story of two socket pairs (registration, data, a write
    interest, a peer's hang-up, a closed descriptor); every poller must tell the same one."""
    poller = poller_cls()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    seen: list[object] = []
    try:
        poller.register(a.fileno(), READ, "a")
        poller.register(a.fileno(), WRITE, "again")  # a repeat is ignored, as in 0.6
        poller.register(c, READ, "c")  # a socket object is taken for its descriptor
        seen.append(sorted(poller.poll(0)))  # nothing to read yet
        b.send(b"x")
        seen.append(sorted(poller.poll(1.0)))
        poller.modify(a.fileno(), READ | WRITE, "a+")
        seen.append(sorted(poller.poll(1.0)))  # readable and writable, with the new data
        d.close()  # the peer hangs up: a reader is woken
        seen.append(sorted(poller.poll(1.0)))
        seen.append((poller.is_registered(c.fileno()), poller.is_registered(b.fileno())))
        poller.unregister(c.fileno())
        poller.unregister(c.fileno())  # not registered any more: ignored
        poller.unregister(b.fileno())  # never registered: ignored
        with pytest.raises(KeyError):
            poller.modify(c.fileno(), READ)
        a_fd = a.fileno()
        a.close()  # closed without unregistering: the kernel forgets it
        poller.unregister(a_fd)
        seen.append(poller.poll(0))
    finally:
        poller.release()
        for s in (a, b, c, d):
            s.close()
    return seen


def test_every_poller_reports_what_selectors_does() -> None:
    expected = [
        [],
        [("a", READ)],
        [("a+", READ | WRITE)],
        [("a+", READ | WRITE), ("c", READ)],
        (True, False),
        [],
    ]
    for poller_cls in POLLERS:
        if poller_cls.selector_class is not None:
            assert _poller_story(poller_cls) == expected, poller_cls.__name__


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kqueue exists on BSD and macOS")
def test_kqueue_poller_raises_oserror_on_linux() -> None:
    with pytest.raises(OSError):
        KQueuePoller()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll is Linux's")
def test_default_poller_is_epoll_on_linux() -> None:
    poller = default_poller()
    try:
        assert isinstance(poller, EPollPoller)
    finally:
        poller.release()


# -- the manager page's client example ----------------------------------------------------


def test_manager_page_client_pattern(serve: ServeFactory) -> None:
    server = serve(EchoWebSocket)
    m = WebSocketManager()
    m.start()
    try:
        clients = [_managed_client(m, server.url("/ws")) for _ in range(5)]
        for i, client in enumerate(clients):
            client.send(f"hello {i}")
        for i, client in enumerate(clients):
            assert str(client.wait_messages(1)[0]) == f"hello {i}"
        server.manager.close_all()
        # The page's loop: wait until no managed websocket is left open.
        deadline = time.monotonic() + TIMEOUT
        pause = threading.Event()
        while any(not ws.terminated for ws in m.websockets.values()):
            assert time.monotonic() < deadline
            pause.wait(0.01)
        assert all(client.terminated for client in clients)
    finally:
        m.close_all()
        m.stop()
        m.join(TIMEOUT)
