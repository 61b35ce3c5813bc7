"""redis-py clients from a URL: ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``, ``rediss+cluster://``."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["RedisURL", "cluster_client", "node_client", "parse", "single_client"]

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SINGLE_SCHEMES = ("redis", "rediss", "unix")


class RedisURL(NamedTuple):
    """A Redis to talk to: the URL redis-py understands, and whether it is a cluster."""

    url: str
    cluster: bool


def parse(url: str, cluster: bool | None = None) -> RedisURL:
    """Where ``url`` points; ``cluster`` forces the kind (``None``: the scheme says)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a Redis URL: {url!r}")
    scheme = scheme.lower()
    if scheme in _CLUSTER_SCHEMES:
        return RedisURL(f"{_CLUSTER_SCHEMES[scheme]}://{rest}", cluster is not False)
    if scheme in _SINGLE_SCHEMES:
        if cluster and scheme == "unix":
            raise ValueError("a Redis Cluster is not reached through a Unix socket")
        return RedisURL(url, bool(cluster))
    raise ValueError(
        f"unknown Redis URL scheme {scheme!r} in {url!r}: "
        "redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// expected"
    )


def _retry(retries: int) -> Any:
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError
    from redis.retry import Retry

    # Only errors after which Redis certainly did not run the command are retried
    # (a timeout is not: the message may have been published). With no retry, no
    # error is "supported": redis-py would otherwise connect again (and subscribe
    # again) at once in its failure handler, before raising, defeating the back-off.
    return Retry(NoBackoff(), retries, supported_errors=(ConnectionError,) if retries else ())


def _options(timeout: float, retries: int) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": _retry(retries)}


def single_client(url: str, timeout: float, retries: int = 1, **extra: Any) -> Any:
    """A ``redis.Redis`` for ``url``, every wait bounded by ``timeout``."""
    import redis

    return redis.Redis.from_url(url, **_options(timeout, retries), **extra)


def cluster_client(url: str, timeout: float) -> Any:
    """A ``redis.cluster.RedisCluster`` for ``url`` (any node of the cluster)."""
    from redis.cluster import RedisCluster

    return RedisCluster.from_url(url, **_options(timeout, 1))


def node_client(url: str, host: str, port: int, timeout: float, **extra: Any) -> Any:
    """A ``redis.Redis`` for one node of the cluster of ``url`` (same credentials and TLS)."""
    import redis
    from redis.connection import parse_url

    kwargs: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    kwargs.update(host=host, port=port)
    kwargs.pop("path", None)
    return redis.Redis(**kwargs, **_options(timeout, 0), **extra)
