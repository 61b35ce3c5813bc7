"""Close codes (RFC 6455 section 7.4 and the IANA registry)."""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "is_valid_on_wire"]


class CloseCode(enum.IntEnum):
    """The close codes the IANA registry assigns."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005  # never on the wire: "the close frame had no code"
    ABNORMAL_CLOSURE = 1006  # never on the wire: "no close frame at all"
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire


def is_valid_on_wire(code: int) -> bool:
    """Whether ``code`` may appear in a close frame.

    The registry's codes for use on the wire (1000-1003, 1007-1014) and the
    private range 3000-4999. Everything else, including the unassigned
    1016-2999, is a protocol error when received.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
