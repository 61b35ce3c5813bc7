import os

from ws4py.protocol import frames


def test_compiled_codec_is_present_when_the_test_command_requires_it() -> None:
    # The README's test command sets WS4PY_REQUIRE_SPEEDUPS=1 so that a broken C
    # build cannot pass CI by silently testing the pure-Python codec twice.
    if os.environ.get("WS4PY_REQUIRE_SPEEDUPS") == "1":
        assert "c" in frames.available_implementations()


def test_codec_switch_changes_the_functions_in_use(codec: str) -> None:
    assert frames.implementation == codec
    module = "ws4py._speedups" if codec == "c" else "ws4py.protocol._frames_py"
    assert frames.parse_frames.__module__ in (module, None)


def test_ws4py_pure_python_env_selects_the_python_codec() -> None:
    import subprocess
    import sys

    code = "from ws4py.protocol import frames; print(frames.implementation)"
    env = {**os.environ, "WS4PY_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "python"
