"""aiohttp (latest), its client: ``ClientSession.ws_connect``, ``await ws.send_str()`` / ``send_bytes()`` and
``await ws.receive_str()`` / ``receive_bytes()``.

Run in bench/.venvs/aiohttp: ``python aiohttp_client.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
No compression, no message size limit, no autoping; one session for the whole run (connect rows open
each connection from it, as an application does).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from _common import Run, async_rows, main, run_async


def run_client(run: Run) -> None:
    async def client() -> None:
        async with aiohttp.ClientSession() as session:

            def open_ws() -> Any:
                return session.ws_connect(run.url, compress=0, max_msg_size=0, autoping=False)

            async def cycle() -> None:
                ws = await open_ws()
                await ws.close()

            await async_rows(
                run,
                open_ws,
                cycle,
                lambda ws: ws.send_str if run.text else ws.send_bytes,
                lambda ws: ws.receive_str if run.text else ws.receive_bytes,
                send_end=lambda ws: ws.send_str,
                recv_reply=lambda ws: ws.receive_str,
            )

    run_async(run, client())


if __name__ == "__main__":
    main(run_client, __doc__ or "")
