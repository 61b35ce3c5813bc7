"""Sphinx configuration of ws4py's documentation (built by scripts/docs; the suite builds it with -W)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))

import ws4py  # noqa: E402

project = "ws4py"
author = "the ws4py developers"
copyright = "the ws4py developers"
release = ws4py.__version__
version = ".".join(release.split(".")[:2])

# No sphinx.ext.viewcode: its pages link back to the re-exported names (ws4py.asyncio.Connection...)
# with anchors that do not exist, which tests/docs' link check rightly fails.
# No sphinx.ext.viewcode: its pages link back to the re-exported names (ws4py.asyncio.Connection...)
# with anchors that do not exist, which tests/docs' link check rightly fails.
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# No intersphinx: the build never touches the network. References to other projects' names
# are left as text; a broken reference to one of ws4py's own names fails the build.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!ws4py\b).*"),  # anything outside ws4py (the standard library, CherryPy, gevent...)
    # ws4py's private names (a type hint may name one): the reference documents the public surface.
    (r"py:.*", r"ws4py(\.\w+)*\._\w+.*"),
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Quotes and ellipses, but no dashes: "--threaded" stays two hyphens (the command line's help, options).
smartquotes_action = "qe"
html_theme = "furo"
html_title = f"ws4py {release}"

# The reference (docs/reference/*.rst) is autodoc: every public name of every module, in the
# order of its source. tests/docs checks that none is missing.
autodoc_default_options = {"members": True}
# A type hint autodoc cannot resolve (a name imported for type checking only) is left as a bare
# name, which may match several ws4py names (ws4py.protocol.Connection and its re-exports): the
# first is linked, without a warning. A reference to a name that does not exist still fails.
suppress_warnings = ["ref.python"]

# ws4py 0.6's public names (the API of the original project, as its documentation lists it): each
# gets a note in the reference saying so. tests/docs checks that every one is documented with it.
COMPAT06_NOTE = "A ws4py 0.6 name: code written against ws4py 0.6 finds it here."
COMPAT06_NAMES = frozenset(
    [
        "ws4py.WS_KEY",
        "ws4py.WS_VERSION",
        "ws4py.configure_logger",
        "ws4py.format_addresses",
        "ws4py.exc.WebSocketException",
        "ws4py.exc.ProtocolException",
        "ws4py.exc.FrameTooLargeException",
        "ws4py.exc.UnsupportedFrameTypeException",
        "ws4py.exc.TextFrameEncodingException",
        "ws4py.exc.InvalidBytesError",
        "ws4py.exc.HandshakeError",
        "ws4py.exc.StreamClosed",
        "ws4py.compat.py3k",
        "ws4py.compat.urlsplit",
        "ws4py.compat.range",
        "ws4py.compat.unicode",
        "ws4py.compat.basestring",
        "ws4py.compat.ord",
        "ws4py.compat.get_connection",
        "ws4py.compat.detach_connection",
        "ws4py.framing.Frame",
        "ws4py.framing.OPCODE_CONTINUATION",
        "ws4py.framing.OPCODE_TEXT",
        "ws4py.framing.OPCODE_BINARY",
        "ws4py.framing.OPCODE_CLOSE",
        "ws4py.framing.OPCODE_PING",
        "ws4py.framing.OPCODE_PONG",
        "ws4py.messaging.Message",
        "ws4py.messaging.TextMessage",
        "ws4py.messaging.BinaryMessage",
        "ws4py.messaging.CloseControlMessage",
        "ws4py.messaging.PingControlMessage",
        "ws4py.messaging.PongControlMessage",
        "ws4py.streaming.Stream",
        "ws4py.streaming.VALID_CLOSING_CODES",
        "ws4py.utf8validator.Utf8Validator",
        "ws4py.websocket.WebSocket",
        "ws4py.websocket.EchoWebSocket",
        "ws4py.manager.WebSocketManager",
        "ws4py.manager.SelectPoller",
        "ws4py.manager.EPollPoller",
        "ws4py.manager.KQueuePoller",
        "ws4py.client.WebSocketBaseClient",
        "ws4py.client.threadedclient.WebSocketClient",
        "ws4py.client.geventclient.WebSocketClient",
        "ws4py.client.tornadoclient.TornadoWebSocketClient",
        "ws4py.server.wsgiutils.WebSocketWSGIApplication",
        "ws4py.server.wsgirefserver.WSGIServer",
        "ws4py.server.wsgirefserver.WebSocketWSGIHandler",
        "ws4py.server.wsgirefserver.WebSocketWSGIRequestHandler",
        "ws4py.server.geventserver.WSGIServer",
        "ws4py.server.geventserver.WebSocketWSGIHandler",
        "ws4py.server.geventserver.GEventWebSocketPool",
        "ws4py.server.cherrypyserver.WebSocketTool",
        "ws4py.server.cherrypyserver.WebSocketPlugin",
        "ws4py.async_websocket.WebSocket",
        "ws4py.async_websocket.EchoWebSocket",
        "ws4py.server.tulipserver.WebSocketProtocol",
    ]
)


def _mark_compat06(app: object, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """Put the 0.6 note first in the docstring of each of ws4py 0.6's names."""
    if name in COMPAT06_NAMES:
        lines[:0] = [".. admonition:: ws4py 0.6", "   :class: ws4py-06", "", f"   {COMPAT06_NOTE}", ""]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-docstring", _mark_compat06)
