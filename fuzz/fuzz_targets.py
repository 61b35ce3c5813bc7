"""The fuzz targets by name: each ``check(data: bytes) -> None`` raises on a finding."""

from __future__ import annotations

from collections.abc import Callable

from frames_targets import check_codec, check_deflate, check_frames
from handshake_targets import check_handshake

TARGETS: dict[str, Callable[[bytes], None]] = {
    "codec": check_codec,
    "frames": check_frames,
    "deflate": check_deflate,
    "handshake": check_handshake,
}
