"""ws4py.compat (0.6's Python 2/3 names, with their Python 3 meaning) and 0.6's exceptions."""

from __future__ import annotations

import socket

import pytest

from ws4py import compat
from ws4py.exc import FrameTooLargeException, ProtocolException, TextFrameEncodingException


def test_the_names_0_6_exported() -> None:
    namespace: dict[str, object] = {}
    exec("from ws4py.compat import *", namespace)  # as 0.6's own modules and tests imported it
    assert set(namespace) - {"__builtins__"} == set(compat.__all__)
    assert compat.py3k is True
    assert (compat.unicode, compat.range, compat.basestring) == (str, range, (bytes, str))
    assert compat.urlsplit("ws://h:1/p?q").port == 1
    assert (compat.ord(65), compat.ord("A"), compat.ord(b"A")) == (65, 65, 65)


def test_get_connection_and_detach_connection_on_a_real_socket() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(5)
        fileobj = left.makefile("rb")
        assert compat.get_connection(fileobj) is left
        compat.detach_connection(fileobj)
        with pytest.raises(ValueError):
            fileobj.read(1)  # detached: the file object has no stream any more, the socket stays open
        del fileobj
        right.sendall(b"still open")
        assert left.recv(10) == b"still open"


@pytest.mark.parametrize(
    ("exception", "code"),
    [(ProtocolException, 1002), (FrameTooLargeException, 1009), (TextFrameEncodingException, 1007)],
)
def test_exceptions_are_raised_without_arguments_as_0_6_raised_them(
    exception: type[ProtocolException], code: int
) -> None:
    with pytest.raises(exception) as raised:
        raise exception()
    assert (raised.value.code, raised.value.reason) == (code, "")
