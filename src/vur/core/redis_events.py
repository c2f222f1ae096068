"""Events through Redis pub/sub, when `VUR_REDIS_URL` is set (DESIGN §4, at scale).

Then every process, API or `vur worker`, publishes its events to one Redis channel
instead of its own bus, and every API process delivers what arrives on that channel to
its WebSocket subscribers. Any replica serves any subscriber, with no table to poll:
this replaces the event outbox (core/outbox.py), which stays the embedded default.
Pub/sub keeps nothing: a process that is disconnected misses what was said meanwhile,
as a WebSocket client does.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import structlog

from vur.core.events import Event, bus

if TYPE_CHECKING:
    from redis import Redis

log = structlog.get_logger("vur.events")

CHANNEL = "vur:events"
CONNECT_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 1.0


def client(url: str) -> Redis:
    import redis  # the `scale` extra; only loaded when a Redis URL is configured

    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS)


class RedisPublisher:
    """The bus forwarder of a process when Redis is configured: each event goes to the channel."""

    def __init__(self, url: str) -> None:
        self.redis = client(url)

    def __call__(self, event: Event) -> None:
        try:
            self.redis.publish(CHANNEL, json.dumps(event.to_dict()))
        except Exception as exc:  # a lost live update must not fail the request or job that sent it
            log.warning("redis_publish_failed", error=repr(exc), topic=event.topic)


class RedisRelay:
    """A thread of an API process: delivers every event on the channel to this process's
    subscribers, and subscribes again when the connection drops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vur-redis-relay", daemon=True)
        self._subscribed = threading.Event()

    def start(self, wait_seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
        """Starts the thread and waits (briefly) until it listens, so that the events of
        the first requests are not missed; a Redis that is down only logs and retries."""
        self._thread.start()
        self._subscribed.wait(wait_seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # Redis went away: keep trying
                log.warning("redis_relay_error", error=repr(exc))
                self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        pubsub = client(self.url).pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            self._subscribed.set()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None:
                    bus.deliver(Event(**json.loads(message["data"])))
        finally:
            pubsub.close()


def ping(url: str) -> float:
    """Milliseconds for a PING, or the exception that says why Redis cannot be reached."""
    started = time.perf_counter()
    connection = client(url)
    try:
        connection.ping()
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000
