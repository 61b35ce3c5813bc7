"""Builds the optional C extensions (speed-ups, epoll busy poller, fan-out send); everything else is in pyproject.toml.

Set WS4PY_BUILD_EXTENSION=no to skip the extension, =yes to make a failed
build an error (the default is to fall back to pure Python quietly).
"""

import os

from setuptools import Extension, setup

build = os.environ.get("WS4PY_BUILD_EXTENSION", "auto")


def extension(name: str, optimize: str) -> Extension:
    """``ws4py.<name>`` from ``src/ws4py/<name>.c``; optional unless WS4PY_BUILD_EXTENSION=yes."""
    return Extension(
        f"ws4py.{name}",
        sources=[f"src/ws4py/{name}.c"],
        extra_compile_args=[optimize] if os.name == "posix" else [],
        optional=build != "yes",
    )


ext_modules = []
if build != "no":
    # The frame codec (ws4py.protocol.frames; its twin is pure Python).
    ext_modules.append(extension("_speedups", "-O3"))
    if os.name == "posix":
        # One frame to many sockets with the GIL released (ws4py.fanout; its twin is pure Python).
        ext_modules.append(extension("_fanout", "-O2"))
        # Busy polling of an epoll set with the GIL released (Linux; elsewhere the module is empty).
        ext_modules.append(extension("_busypoll", "-O2"))

setup(ext_modules=ext_modules)
