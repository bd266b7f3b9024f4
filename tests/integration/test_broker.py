"""Lyre's kombu transport: one Redis client per channel, over a real Redis."""

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

from shared.infra import broker, queues
from shared.infra.settings import get_settings
from tests.services import REDIS_TEST_PREFIX, REDIS_TEST_URL, forget_redis_keys
from workers.app import create_app


def _sync_clients_built(monkeypatch) -> list[object]:
    built: list[object] = []
    stock = kombu_redis.Channel._create_client

    def counted(self, asynchronous=False):
        client = stock(self, asynchronous)
        if not asynchronous:
            built.append(client)
        return client

    monkeypatch.setattr(kombu_redis.Channel, "_create_client", counted)
    return built


def _round_trip(connection: Connection, queue: Queue, count: int) -> list[int]:
    """Publish ``count`` messages, then consume and ack them all; their bodies in order."""
    channel = connection.default_channel
    producer = Producer(channel)
    for i in range(count):
        producer.publish({"i": i}, exchange=queue.exchange, routing_key=queue.routing_key)
    received: list[int] = []

    def on_message(body, message):
        received.append(body["i"])
        message.ack()

    with Consumer(channel, [queue], callbacks=[on_message]):
        while len(received) < count:
            connection.drain_events(timeout=5)
    return received


def test_a_channel_publishes_and_acks_through_one_client(monkeypatch):
    built = _sync_clients_built(monkeypatch)
    name = f"{REDIS_TEST_PREFIX}broker"  # this run's own queue
    queue = Queue(name, Exchange(name), name)
    with Connection(REDIS_TEST_URL, transport=broker.TRANSPORT) as connection:
        queue(connection.default_channel).declare()
        assert _round_trip(connection, queue, 50) == list(range(50))
        assert len(built) == 1  # stock kombu: one per publish, per ack, per unacked record

        connection.default_channel._disconnect_pools()  # as after a lost connection
        assert _round_trip(connection, queue, 5) == list(range(5))
        assert len(built) == 2  # the old client's pool is gone: a client for the new one
        assert built[1].connection_pool is connection.default_channel.pool


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        (REDIS_TEST_URL, broker.TRANSPORT),
        ("rediss://127.0.0.1:6380/0", None),  # kombu's SSL defaults go by the scheme's name
        ("sentinel://127.0.0.1:26379", None),
    ],
)
def test_the_app_uses_it_for_redis_urls(monkeypatch, url, transport):
    monkeypatch.setenv("LYRE_REDIS__URL", url)
    get_settings.cache_clear()
    try:
        assert create_app().conf.broker_transport == transport
    finally:
        get_settings.cache_clear()


def test_farms_sharing_a_redis_database_keep_their_messages_apart(monkeypatch):
    """LYRE_REDIS__KEY_PREFIX puts every key of a farm under its prefix: its queue lists
    here, and with them Celery's events and remote control."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    prefixes = [f"{REDIS_TEST_PREFIX}farm-{n}:" for n in (1, 2)]
    monkeypatch.setenv("LYRE_REDIS__URL", REDIS_TEST_URL)
    for prefix in prefixes:
        monkeypatch.setenv("LYRE_REDIS__KEY_PREFIX", prefix)
        get_settings.cache_clear()
        try:
            app = create_app()
            app.send_task(queues.RECONCILE)
            app.send_task(queues.RECONCILE)
        finally:
            get_settings.cache_clear()
    try:
        assert [client.llen(f"{prefix}{queues.CPU}") for prefix in prefixes] == [2, 2]
        assert client.llen(queues.CPU) == 0
    finally:
        forget_redis_keys()


def test_urgent_messages_are_taken_before_books_already_queued(monkeypatch):
    """The dispatcher's urgency is Celery's priority on kombu's Redis transport: books' chunks
    go to the priority-6 list, urgent ones to the queue's own list, which a worker pops first."""
    import uuid

    from shared.farm.sender import CelerySender

    prefix = f"{REDIS_TEST_PREFIX}urgency:"
    monkeypatch.setenv("LYRE_REDIS__URL", REDIS_TEST_URL)
    monkeypatch.setenv("LYRE_REDIS__KEY_PREFIX", prefix)
    get_settings.cache_clear()
    try:
        app = create_app()
        sender = CelerySender(app)
        book, page = uuid.uuid4(), uuid.uuid4()
        for index in range(3):
            sender.generate(book, index)
        sender.generate(page, 0, urgent=True)
        lists = queues.queue_lists(prefix, queues.GPU)
        client = redis.Redis.from_url(REDIS_TEST_URL)
        assert [client.llen(name) for name in lists if client.llen(name)] == [1, 3]
        with app.connection_for_read() as connection:  # a worker's BRPOP order
            queue = Queue(queues.GPU, Exchange(queues.GPU), queues.GPU)
            taken: list[tuple[str, bool]] = []

            def on_message(body, message):
                _, kwargs, _ = body  # Celery's message protocol 2: args, kwargs, embed
                taken.append((kwargs["job_id"], kwargs["urgent"]))
                message.ack()

            with Consumer(connection.default_channel, [queue], callbacks=[on_message]):
                while len(taken) < 4:
                    connection.drain_events(timeout=5)
        assert taken[0] == (str(page), True)
        assert {job for job, _ in taken[1:]} == {str(book)}
    finally:
        get_settings.cache_clear()
        forget_redis_keys()
