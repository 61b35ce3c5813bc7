from collections.abc import Sequence

from .fanout import OutletLike

class Outlet:
    fd: int
    def __init__(self, fd: int = -1) -> None: ...

def send_ready(outlets: Sequence[OutletLike], data: bytes) -> list[tuple[int, int]]: ...
