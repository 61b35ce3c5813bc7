"""TLS contexts from the command line's file names, with errors that name the file."""

from __future__ import annotations

import os
import ssl

from .errors import CliError

__all__ = ["client_context", "server_context"]


def server_context(certfile: str | None, keyfile: str | None, cafile: str | None) -> ssl.SSLContext | None:
    """The server's context for ``--certfile``/``--keyfile`` (``None`` without them).

    ``--cafile``: clients must present a certificate issued by one of these CAs.
    """
    if certfile is None:
        if keyfile is not None or cafile is not None:
            raise CliError("--keyfile and --cafile need --certfile")
        return None
    for path in (certfile, keyfile):
        if path is not None and not os.path.isfile(path):
            raise CliError(f"TLS: no such file: {path}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise CliError(f"TLS: cannot load the certificate {certfile!r} (and its key): {exc}") from None
    if cafile is not None:
        _load_ca(context, cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(insecure: bool, cafile: str | None) -> ssl.SSLContext:
    """A client's context: the system's trust store, ``cafile`` (a test CA), or no check at all (``--insecure``)."""
    context = ssl.create_default_context()
    if cafile is not None:
        _load_ca(context, cafile)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_ca(context: ssl.SSLContext, cafile: str) -> None:
    try:
        context.load_verify_locations(cafile)
    except FileNotFoundError:
        raise CliError(f"TLS: no such file: {cafile}") from None
    except (ssl.SSLError, OSError) as exc:
        raise CliError(f"TLS: cannot load the CA certificates {cafile!r}: {exc}") from None
