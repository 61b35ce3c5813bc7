"""Builds the optional C extensions (speed-ups, epoll busy poller, fan-out send); everything else is in pyproject.toml.

Set WS4PY_BUILD_EXTENSION=no to skip the extension, =yes to make a failed
build an error (the default is to fall back to pure Python quietly).
"""

import os

from setuptools import Extension, setup

build = os.environ.get("WS4PY_BUILD_EXTENSION", "auto")
ext_modules = []
if build != "no":
    ext_modules.append(
        Extension(
            "ws4py._speedups",
            sources=["src/ws4py/_speedups.c"],
            extra_compile_args=["-O3"] if os.name == "posix" else [],
            optional=build != "yes",
        )
    )
    if os.name == "posix":
        # One frame to many sockets with the GIL released (ws4py.fanout; its twin is pure Python).
        ext_modules.append(
            Extension(
                "ws4py._fanout",
                sources=["src/ws4py/_fanout.c"],
                extra_compile_args=["-O2"],
                optional=build != "yes",
            )
        )
        # Busy polling of an epoll set with the GIL released (Linux; elsewhere the module is empty).
        ext_modules.append(
            Extension(
                "ws4py._busypoll",
                sources=["src/ws4py/_busypoll.c"],
                extra_compile_args=["-O2"],
                optional=build != "yes",
            )
        )

setup(ext_modules=ext_modules)
