"""gevent peers for the tests, each run as a monkey-patched subprocess (never in pytest's process).

``python gevent_peers.py server [--handshake-timeout S] [--certfile F --keyfile K]``
    ws4py's gevent ``WSGIServer`` on 127.0.0.1 (a free port, printed as
    ``ready PORT``) with a routing WSGI application:

    * ``/echo``: ``WebSocketWSGIApplication(handler_cls=EchoWebSocket)``, permessage-deflate accepted;
    * ``/raise``: a websocket whose ``received_message`` raises;
    * ``/broadcast``: on the text ``go N SIZE``, ``server.pool.broadcast`` of N messages of SIZE bytes;
    * ``/compat``: a gevent-websocket style application echoing with ``environ['wsgi.websocket']``;
    * ``/plain``: a plain WSGI response;
    * ``/status``: JSON: websockets tracked, open descriptors, live greenlets, RSS (KiB).

    SIGTERM: ``server.stop()`` (every websocket closed with 1001), then exit 0.

``python gevent_peers.py clients PORT COUNT``
    COUNT gevent ``WebSocketClient`` connected at once to ``/echo`` on PORT, one
    echo each checked, all closed; then a JSON line: ok, failures, and the
    process's greenlets and descriptors before and after.

``python gevent_peers.py cycles PORT COUNT``
    COUNT connect / echo / close cycles, 100 at a time; the same JSON line.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent.event  # noqa: E402
from gevent.lock import BoundedSemaphore  # noqa: E402
from gevent.pool import Pool  # noqa: E402

import gevent  # noqa: E402
from ws4py.client.geventclient import WebSocketClient  # noqa: E402
from ws4py.messaging import Message  # noqa: E402
from ws4py.server.geventserver import WSGIServer  # noqa: E402
from ws4py.server.wsgiutils import WebSocketWSGIApplication  # noqa: E402
from ws4py.websocket import EchoWebSocket, WebSocket  # noqa: E402

server: WSGIServer | None = None
#: The page served at ``/`` (``--page``), if any.
PAGE: str | None = None


def live_greenlets() -> int:
    """gevent greenlets started and not yet dead."""
    return sum(1 for obj in gc.get_objects() if isinstance(obj, gevent.Greenlet) and not obj.dead)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ReportingEchoWebSocket(EchoWebSocket):
    """Echoes; the text ``report:<JSON>`` (the browser page's last message) is printed
    (``REPORT <JSON>``) and answered with a close (1000)."""

    def received_message(self, message: Message) -> None:
        if message.is_text and message.data.startswith(b"report:"):
            print("REPORT", message.data[len(b"report:") :].decode(), flush=True)
            self.close(1000, "thank you")
            return
        super().received_message(message)


class RaisingWebSocket(WebSocket):
    def received_message(self, message: Message) -> None:
        raise RuntimeError(f"the handler fails on {message}")


class BroadcastWebSocket(WebSocket):
    def received_message(self, message: Message) -> None:
        words = str(message).split()
        if words and words[0] == "say":
            assert server is not None
            server.pool.broadcast(" ".join(words[1:]))
        elif words and words[0] == "go":
            count, size = int(words[1]), int(words[2])
            assert server is not None
            payload = b"x" * size
            for _ in range(count):
                server.pool.broadcast(payload, binary=True)
                gevent.sleep(0.001)  # the peers that read get their turn to flush


class ProducingWebSocket(WebSocket):
    """On ``produce N SIZE``, a greenlet of its own sends N numbered messages of SIZE bytes
    (a sender other than the connection's greenlet: it is held back while the peer lags)."""

    def received_message(self, message: Message) -> None:
        words = str(message).split()
        if words and words[0] == "produce":
            gevent.spawn(self.produce, int(words[1]), int(words[2]))

    def produce(self, count: int, size: int) -> None:
        for seq in range(count):
            self.send(seq.to_bytes(4, "big") + b"p" * (size - 4), binary=True)


def compat_echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """What a gevent-websocket application does: receive until None, send back."""
    ws = environ["wsgi.websocket"]
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message)
    return []


def compat_once(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Send 300 kB first, echo one message, then close with 4000 (``closed`` before and after)."""
    ws = environ["wsgi.websocket"]
    ws.send(b"x" * 300_000)  # more than the write high water, before any receive()
    message = ws.receive()
    assert not ws.closed
    ws.send(message)
    ws.close(4000, b"done")
    assert ws.closed
    return []


def compat_raise(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Fails after its first message: the connection closes with 1011."""
    environ["wsgi.websocket"].receive()
    raise RuntimeError("the application fails")


ROUTES = {
    "/echo": WebSocketWSGIApplication(handler_cls=ReportingEchoWebSocket, extensions=["permessage-deflate"]),
    "/raise": WebSocketWSGIApplication(handler_cls=RaisingWebSocket),
    "/broadcast": WebSocketWSGIApplication(handler_cls=BroadcastWebSocket),
    "/produce": WebSocketWSGIApplication(handler_cls=ProducingWebSocket),
    "/compat": compat_echo,
    "/compat-once": compat_once,
    "/compat-raise": compat_raise,
}


def application(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "/")
    if path == "/" and "websocket" in environ.get("HTTP_UPGRADE", "").lower():
        path = "/echo"
    route = ROUTES.get(path)
    if route is not None:
        return route(environ, start_response)
    if path == "/status":
        gc.collect()
        assert server is not None
        body = json.dumps(
            {
                "websockets": len(server.pool.websockets),
                "fds": open_fds(),
                "greenlets": live_greenlets(),
                "rss": rss_kib(),
            }
        ).encode()
    elif path == "/plain":
        body = b"plain WSGI beside websockets\n"
    elif path == "/" and PAGE is not None:
        with open(PAGE, "rb") as page:
            body = page.read()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(args: list[str]) -> None:
    global server, PAGE
    raise_fd_limit()
    options = dict(zip(args[::2], args[1::2], strict=True))
    PAGE = options.get("--page")
    tls = {}
    if "--certfile" in options:
        tls = {"certfile": options["--certfile"], "keyfile": options["--keyfile"]}
    server = WSGIServer(("127.0.0.1", 0), application, log=None, backlog=4096, **tls)
    server.handshake_timeout = float(options.get("--handshake-timeout", 10.0))
    server.start()

    stopped = gevent.event.Event()

    def stop() -> None:
        assert server is not None
        server.stop(timeout=5)
        stopped.set()

    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(stop))
    print("ready", server.server_port, flush=True)
    stopped.wait()
    print("stopped", flush=True)  # and a normal exit: coverage and the like save their data


def one_echo(port: int, payload: str, hold: Any = None, slots: Any = None) -> str | None:
    """Connect (holding one of ``slots`` if given), echo ``payload`` once (checked), wait for
    ``hold`` if given, close; None or what failed."""
    client = WebSocketClient(f"ws://127.0.0.1:{port}/echo")
    try:
        if slots is None:
            client.connect()
        else:
            with slots:
                client.connect()
        client.send(payload)
        echo = client.receive()
        if echo is None or str(echo) != payload:
            return f"{payload}: got {echo!r}"
        if hold is not None:
            hold.wait()
        client.close()
        if client.receive() is not None:
            return f"{payload}: a message after the close"
        client.greenlet.join(10)
        if not client.terminated:
            return f"{payload}: not terminated after its close"
        return None
    except Exception as exc:
        return f"{payload}: {exc!r}"


def run_clients(args: list[str], concurrent: bool) -> None:
    raise_fd_limit()
    port, count = int(args[0]), int(args[1])
    failures: list[str] = []
    warm_up = one_echo(port, "warm-up")  # the resolver's threads and the like, before counting
    if warm_up:
        failures.append(warm_up)
    gc.collect()
    before = {"greenlets": live_greenlets(), "fds": open_fds()}
    if concurrent:
        # Every client holds its connection until all of them echoed: COUNT open at once.
        hold = gevent.event.Event()
        slots = BoundedSemaphore(1000)  # handshakes in flight at once, within the listen backlog
        connected = [0]
        greenlets = [
            gevent.spawn(one_echo_counted, port, f"client {i}", hold, connected, count, slots) for i in range(count)
        ]
        gevent.joinall(greenlets, timeout=60)
        failures += [g.value for g in greenlets if g.value]
        failures += [f"client {i} did not end" for i, g in enumerate(greenlets) if not g.dead]
    else:
        pool = Pool(100)
        greenlets = [pool.spawn(one_echo, port, f"cycle {i}") for i in range(count)]
        gevent.joinall(greenlets, timeout=60)
        failures += [g.value for g in greenlets if g.value]
    del greenlets
    gc.collect()
    after = {"greenlets": live_greenlets(), "fds": open_fds()}
    print(
        json.dumps({"failures": failures[:20], "failed": len(failures), "before": before, "after": after}), flush=True
    )


def one_echo_counted(port: int, payload: str, hold: Any, connected: list[int], count: int, slots: Any) -> str | None:
    """:func:`one_echo`, where the last client to have its echo releases them all."""

    class Counter:
        def wait(self) -> None:
            connected[0] += 1
            if connected[0] == count:
                hold.set()
            hold.wait(60)

    return one_echo(port, payload, Counter(), slots)


def check(name: str, results: dict[str, str | None], function: Any) -> None:
    """Run ``function()``; record None, or what failed."""
    try:
        with gevent.Timeout(10, AssertionError("timed out")):
            function()
        results[name] = None
    except BaseException as exc:
        results[name] = f"{type(exc).__name__}: {exc}"


def answered_at_once(read_ahead: int, count: int) -> tuple[int, list[int]]:
    """``count`` messages from a peer that writes the next one while the loop handles the last,
    through a :class:`~ws4py.geventloop.GreenletLoop` with ``read_ahead``, beside a greenlet that
    yields in a loop: the turns of the hub meanwhile, and per message how often that greenlet had run."""
    import socket as socket_module

    from ws4py.geventloop import GreenletLoop

    frame = bytes([0x82, 0x84, 0, 0, 0, 0]) + b"ping"  # a client's frame, masked with a zero key
    server_end, peer = socket_module.socketpair()
    handled: list[int] = []
    others: list[int] = []
    turns: list[int] = []

    class AnsweredAtOnce(WebSocket):
        def received_message(self, message: Any) -> None:
            handled.append(len(others))
            if len(handled) < count:
                peer.sendall(frame)

    def other() -> None:
        while len(handled) < count:
            others.append(1)
            gevent.sleep(0)

    websocket = AnsweredAtOnce(server_end)
    loop = GreenletLoop()
    loop.read_ahead = read_ahead
    websocket.bind_loop(loop)
    prepare = gevent.get_hub().loop.prepare()
    prepare.start(lambda: turns.append(1))  # once per turn of the hub
    driver = gevent.spawn(loop.run, websocket)
    side = gevent.spawn(other)
    try:
        peer.sendall(frame)
        with gevent.Timeout(5, AssertionError(f"{len(handled)} of {count} messages handled in 5 s")):
            while len(handled) < count:
                gevent.sleep(0.001)
    finally:
        prepare.stop()
        websocket.terminate()
        driver.join(2)
        side.kill()
        peer.close()
    return len(turns), handled


def client_checks(args: list[str]) -> None:
    """The gevent client's behaviour, each check in a greenlet of its own (JSON results)."""
    import ssl

    from gevent.queue import Empty

    port, tls_port, cafile = int(args[0]), int(args[1]), args[2]
    results: dict[str, str | None] = {}

    def echo_text_and_binary() -> None:
        client = WebSocketClient(f"ws://127.0.0.1:{port}/echo")
        client.connect()
        client.send(b"\x01" * 3_000_000, binary=True)  # at once: more than the socket takes
        message = client.receive()
        assert message is not None and message.data == b"\x01" * 3_000_000, message
        client.send("héllo")
        message = client.receive()
        assert message is not None and message.is_text and str(message) == "héllo", message
        client.send(b"\x00\xff" * 1000, binary=True)
        message = client.receive()
        assert message is not None and message.is_binary and message.data == b"\x00\xff" * 1000, message
        for i in range(20):
            client.send(f"message {i}")
        received = [str(client.receive()) for _ in range(20)]
        assert received == [f"message {i}" for i in range(20)], received
        client.close()

    def receive_none_after_close() -> None:
        client = WebSocketClient(f"ws://127.0.0.1:{port}/echo")
        client.connect()
        try:
            client.receive(block=False)
        except Empty:
            pass
        else:
            raise AssertionError("receive(block=False) returned with nothing received")
        client.close(1000, "bye")
        assert client.receive() is None
        assert client.receive() is None, "a second receive() after the close"
        client.run_forever()  # returns: the greenlet is over
        assert client.greenlet.dead and client.terminated
        assert client.protocol.close_code == 1000, client.protocol.close_code

    def server_failure_ends_receive() -> None:
        client = WebSocketClient(f"ws://127.0.0.1:{port}/raise")
        client.connect()
        client.send("boom")
        assert client.receive() is None
        assert client.protocol.close_code == 1011, client.protocol.close_code

    def wss_with_the_ca() -> None:
        client = WebSocketClient(f"wss://localhost:{tls_port}/echo", ssl_options={"ca_certs": cafile})
        client.connect()
        for size in (10, 100_000):
            client.send("x" * size)
            message = client.receive()
            assert message is not None and str(message) == "x" * size
        client.close()
        assert client.receive() is None

    def wss_untrusted_refused() -> None:
        fds = open_fds()
        client = WebSocketClient(f"wss://localhost:{tls_port}/echo")
        try:
            client.connect()
        except ssl.SSLCertVerificationError as exc:
            assert "certificate verify failed" in str(exc), exc
        else:
            raise AssertionError("connected to a server whose certificate no trusted CA issued")
        assert open_fds() == fds, "the refused connection's socket was not closed"

    def heartbeat_pings_answered() -> None:
        pongs: list[Any] = []

        class Pinging(WebSocketClient):
            def ponged(self, pong: Any) -> None:
                pongs.append(pong)

        client = Pinging(f"ws://127.0.0.1:{port}/echo", heartbeat_freq=0.1)
        client.connect()
        with gevent.Timeout(5, AssertionError(f"{len(pongs)} pongs in 5 s")):
            while len(pongs) < 3:
                gevent.sleep(0.02)
        client.close()
        assert client.receive() is None
        assert client.protocol.close_code == 1000, client.protocol.close_code

    def hub_polls_busily_after_a_read_then_sleeps() -> None:
        from ws4py.geventloop import GreenletLoop, busy_polling

        default = GreenletLoop.busy_poll
        try:
            for busy_poll in (0.5, 0.0):
                GreenletLoop.busy_poll = busy_poll
                client = WebSocketClient(f"ws://127.0.0.1:{port}/echo")
                client.connect()
                gevent.sleep(0.6)
                assert not busy_polling(), "busy polling with no read for 0.6 s"
                client.send("wake up")
                assert str(client.receive()) == "wake up"
                assert busy_polling() is (busy_poll > 0), f"busy_poll={busy_poll}: busy_polling() is {busy_polling()}"
                client.close()
                assert client.receive() is None
        finally:
            GreenletLoop.busy_poll = default

    def loop_reads_ahead_then_lets_the_hub_run() -> None:
        """A peer that answers at once (here: the next frame written while the loop is still
        handling the last one) has its messages read without a turn of the hub each, up to
        ``read_ahead`` in a row; then the hub runs, and so do the other greenlets."""
        from ws4py.geventloop import GreenletLoop

        count = 40
        turns, handled = answered_at_once(GreenletLoop.read_ahead, count)
        assert turns < count // 4, f"{turns} turns of the hub for {count} messages read ahead"
        # (the first two messages come through the hub; reading ahead starts with the third)
        assert handled[-1] > handled[2], "the other greenlet never ran while the messages were read ahead"
        turns, handled = answered_at_once(0, count)
        assert turns >= count, f"read_ahead=0: {turns} turns of the hub for {count} messages"

    for name, function in [
        ("loop_reads_ahead_then_lets_the_hub_run", loop_reads_ahead_then_lets_the_hub_run),
        ("hub_polls_busily_after_a_read_then_sleeps", hub_polls_busily_after_a_read_then_sleeps),
        ("heartbeat_pings_answered", heartbeat_pings_answered),
        ("echo_text_and_binary", echo_text_and_binary),
        ("receive_none_after_close", receive_none_after_close),
        ("server_failure_ends_receive", server_failure_ends_receive),
        ("wss_with_the_ca", wss_with_the_ca),
        ("wss_untrusted_refused", wss_untrusted_refused),
    ]:
        check(name, results, function)
    print(json.dumps(results), flush=True)


def killed_midway(args: list[str]) -> None:
    """Start a fragmented message and stop halfway (``midway`` printed): the test kills this process."""
    client = WebSocketClient(f"ws://127.0.0.1:{int(args[0])}/echo")
    client.connect()

    def chunks() -> Any:
        yield b"x" * 65536
        print("midway", flush=True)
        gevent.sleep(60)
        yield b"never sent"

    client.send(chunks(), binary=True)


if __name__ == "__main__":
    import gevent.event

    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "server":
        serve(rest)
    elif mode == "clients":
        run_clients(rest, concurrent=True)
    elif mode == "cycles":
        run_clients(rest, concurrent=False)
    elif mode == "client-checks":
        client_checks(rest)
    elif mode == "killed-midway":
        killed_midway(rest)
    else:
        raise SystemExit(f"unknown mode {mode}")
