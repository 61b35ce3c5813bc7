"""Mistakes on the command line: each ends in one clear ``error:`` line and status 2 (1: cannot connect)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import free_port

from ws4py.cli import main


@pytest.fixture(autouse=True)
def _in_this_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # where cli_apps is


def _error(argv: list[str], capsys: pytest.CaptureFixture[str], traceback: bool = False) -> str:
    """The error line of ``argv``; only an application failing as it is imported shows its traceback too."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert ("Traceback" in err) == traceback, err
    last = err.splitlines()[-1]
    assert last.startswith("error: "), err
    return last


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--close-timeout", "0"], "--close-timeout must be positive"),
        (["--keyfile", "key.pem"], "--keyfile and --cafile need --certfile"),
        (["--certfile", "no-such.pem"], "TLS: no such file: no-such.pem"),
        (["--certfile", __file__], "TLS: cannot load the certificate"),
    ],
)
def test_serve_options_that_cannot_work(options: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in _error(["serve", "cli_apps:echo", "--port", str(free_port()), *options], capsys)


def test_serve_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--port must be within 0-65535" in _error(["serve", "cli_apps:echo", "--port", "70000"], capsys)


def test_serve_a_module_that_fails_as_it_is_imported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_app.py").write_text("import no_such_dependency\n")
    (tmp_path / "raising_app.py").write_text("raise RuntimeError('misconfigured')\n")
    monkeypatch.chdir(tmp_path)
    broken = _error(["serve", "broken_app:app"], capsys, traceback=True)
    assert "importing 'broken_app' failed: No module named 'no_such_dependency'" in broken
    raising = _error(["serve", "raising_app:app"], capsys, traceback=True)
    assert "importing 'raising_app' failed: RuntimeError: misconfigured" in raising


def test_serve_an_unknown_broker(capsys: pytest.CaptureFixture[str]) -> None:
    message = _error(["serve", "cli_apps:echo", "--port", str(free_port()), "--broker", "kafka://x"], capsys)
    assert "--broker 'kafka://x'" in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connect", "http://127.0.0.1/"], "expected a ws:// or wss:// URL"),
        (["connect", "--header", "novalue", "ws://127.0.0.1/"], "--header wants NAME:VALUE"),
        (["connect", "--cafile", "no-such-ca.pem", "wss://127.0.0.1/"], "TLS: no such file: no-such-ca.pem"),
        (["publish", "kafka://x", "chan", "message"], "kafka://x"),
    ],
)
def test_client_commands_refuse_what_cannot_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in _error(argv, capsys)


def test_connect_to_a_port_nobody_listens_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connect", "--timeout", "2", f"ws://127.0.0.1:{free_port()}/"]) == 1
    assert "error: cannot connect to ws://127.0.0.1:" in capsys.readouterr().out
