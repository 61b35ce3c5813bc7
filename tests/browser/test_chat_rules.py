"""The chat's rules (``examples/chat/chatroom.py``) without a browser: the messages its docstring
documents, for the clients that are no chat page (any client can connect to the servers)."""

from __future__ import annotations

import json
import sys

from chat_harness import EXAMPLES

sys.path.insert(0, str(EXAMPLES / "chat"))
from chatroom import MAX_TEXT, Reply, Room, allowed_origins


def _decoded(reply: Reply) -> tuple[list[object], list[object]]:
    return [json.loads(text) for text in reply.to_sender], [json.loads(text) for text in reply.to_all]


def _error(reply: Reply) -> str:
    (sent,), everyone = _decoded(reply)
    assert everyone == [] and isinstance(sent, dict) and sent["type"] == "error", reply
    return str(sent["text"])


def test_a_peer_joins_says_renames_and_leaves_with_the_count() -> None:
    room = Room()
    assert _decoded(room.receive("a", '{"type": "hello", "name": "  Ada  Lovelace "}')) == (
        [{"type": "welcome", "name": "Ada Lovelace", "online": 1, "max_length": MAX_TEXT}],
        [{"type": "join", "name": "Ada Lovelace", "online": 1}],
    )
    room.receive("b", '{"type": "hello", "name": "Bob"}')
    assert _decoded(room.receive("a", json.dumps({"type": "say", "text": "<b>hi</b>"}))) == (
        [],
        [{"type": "message", "name": "Ada Lovelace", "text": "<b>hi</b>"}],
    )
    assert _decoded(room.receive("a", '{"type": "hello", "name": "Ada"}'))[1] == [
        {"type": "rename", "old": "Ada Lovelace", "name": "Ada", "online": 2}
    ]
    assert _decoded(room.leave("a")) == ([], [{"type": "leave", "name": "Ada", "online": 1}])
    assert _decoded(room.leave("listener")) == ([], [])  # never said hello: nobody is told
    assert room.online == 1


def test_what_the_room_refuses_gets_an_error_to_the_sender_only() -> None:
    room = Room()
    assert _error(room.receive("a", '{"type": "say", "text": "hi"}')).startswith("say hello first")
    assert _error(room.receive("a", b"\x00")).startswith("binary messages are not part of this chat")
    assert _error(room.receive("a", "hi")).startswith("not a chat message")
    assert _error(room.receive("a", "[1]")).startswith("not a chat message")
    assert _error(room.receive("a", '{"type": "shout"}')) == "unknown message type: 'shout'"
    assert _error(room.receive("a", '{"type": "hello", "name": " "}')).startswith("a name is needed")
    assert "too long: 33 characters" in _error(room.receive("a", json.dumps({"type": "hello", "name": "n" * 33})))
    room.receive("a", '{"type": "hello", "name": "Ada"}')
    assert _error(room.receive("a", '{"type": "say", "text": " \\n "}')) == "an empty message is not sent"
    assert _error(room.receive("a", json.dumps({"type": "say", "text": "😀" * (MAX_TEXT + 1)}))) == (
        "message not sent: it has 2,001 characters, the limit is 2,000"
    )
    assert _decoded(room.receive("a", json.dumps({"type": "say", "text": "😀" * MAX_TEXT})))[1] != []


def test_the_allowed_origins_are_the_pages_own() -> None:
    assert allowed_origins("127.0.0.1", 9000) == [
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://localhost:9000",
        None,
    ]
    assert allowed_origins("chat.example", 80, ["https://chat.example"]) == [
        "http://chat.example",
        "https://chat.example",
        None,
    ]
