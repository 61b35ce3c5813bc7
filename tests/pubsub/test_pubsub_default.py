"""The process's broker (get_broker / set_broker / WS4PY_BROKER) and brokers made from URLs."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ws4py.pubsub import InProcessBroker, RedisBroker, broker_from_url, get_broker, set_broker


@pytest.fixture(autouse=True)
def default_broker_reset() -> Iterator[None]:
    set_broker(None)
    yield
    set_broker(None)


@pytest.mark.parametrize("url", [None, "", "memory://"])
def test_no_url_or_memory_gives_the_in_process_broker(url: str | None) -> None:
    assert isinstance(broker_from_url(url), InProcessBroker)


@pytest.mark.parametrize(
    ("url", "cluster"),
    [
        ("redis://127.0.0.1:6379/0", False),
        ("rediss://example.org:6380", False),
        ("unix:///run/redis.sock", False),
        ("redis+cluster://127.0.0.1:7000", True),
        ("rediss+cluster://127.0.0.1:7000", True),
    ],
)
def test_redis_urls_give_a_redis_broker_that_connects_only_when_used(url: str, cluster: bool) -> None:
    before = threading.active_count()
    broker = broker_from_url(url)
    assert isinstance(broker, RedisBroker) and broker.cluster is cluster
    assert threading.active_count() == before  # nothing started, nothing connected
    broker.close()


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="scheme"):
        broker_from_url("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="not a Redis URL"):
        broker_from_url("127.0.0.1:6379")


def test_get_broker_is_made_once_from_the_environment_or_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS4PY_BROKER", raising=False)
    first = get_broker()
    assert isinstance(first, InProcessBroker) and get_broker() is first
    set_broker(None)
    monkeypatch.setenv("WS4PY_BROKER", "redis://127.0.0.1:1")
    from_env = get_broker()
    assert isinstance(from_env, RedisBroker) and from_env.url == "redis://127.0.0.1:1"
    mine = InProcessBroker()
    set_broker(mine)
    assert get_broker() is mine
    from_env.close()
