"""Kafka and Redis started for real by the same code as `make up`, through the ``infra``
fixture, plus a second, private stack for the tests that stop, kill and restart things."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.stack import RunningStack, Stack, StackLayout
from services.stack._health import tcp_open

pytestmark = pytest.mark.integration


def test_kafka_and_redis_are_healthy(infra: RunningStack) -> None:
    status = {s.name: s for s in infra.stack.status()}
    for name in ("kafka", "redis"):
        assert status[name].running
        assert status[name].healthy, status[name].problem


def test_stack_env_file_describes_the_test_stack(infra: RunningStack) -> None:
    path = infra.layout.stack_env_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert env["SWITCHYARD_KAFKA_BOOTSTRAP"] == infra.kafka_bootstrap
    assert env["SWITCHYARD_REDIS_URL"] == infra.redis_url
    assert env["SWITCHYARD_ADMIN_KEY"] == infra.admin_key


async def test_a_message_goes_through_kafka(kafka_bootstrap: str) -> None:
    topic = f"test.stack.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"request-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"request-1", b"hello")


def test_topics_are_never_created_by_accident(infra: RunningStack) -> None:
    config = (infra.layout.kafka_dir / "server.properties").read_text()
    assert "auto.create.topics.enable=false" in config


def test_redis_keeps_nothing_on_disk(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        # Sealing keys and replies must not outlive the process (zero data retention).
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}
    finally:
        client.close()


# A second stack, in a home and on ports of its own, for tests that stop what they start.


@pytest.fixture(scope="module")
def private_stack(test_layout: StackLayout, infra: RunningStack) -> Iterator[Stack]:
    layout = StackLayout(
        home=test_layout.home / "private", port_offset=test_layout.port_offset + 100
    )
    stack = Stack(layout, environ={})
    stack.down()  # leftovers of an earlier, crashed run
    try:
        yield stack
    finally:
        stack.down()


def test_down_stops_only_what_it_started(private_stack: Stack, infra: RunningStack) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert private_stack.up(["redis"]) == ["redis"]
        port = private_stack.layout.redis_port
        assert tcp_open(port)

        assert private_stack.down() == ["redis"]

        assert not tcp_open(port)
        assert bystander.poll() is None
        # The session's own infrastructure, in another home, is untouched.
        assert {s.name: s.healthy for s in infra.stack.status()}["redis"]
        assert {s.name: s.healthy for s in infra.stack.status()}["kafka"]
    finally:
        bystander.kill()
        bystander.wait()


def test_redis_killed_hard_comes_back_empty_and_leaves_no_files(private_stack: Stack) -> None:
    redis_dir = private_stack.layout.redis_dir
    # What an earlier, persistent Redis of this home left: deleted at start, never loaded.
    redis_dir.mkdir(parents=True, exist_ok=True)
    (redis_dir / "appendonlydir").mkdir(exist_ok=True)
    (redis_dir / "appendonlydir" / "appendonly.aof.1.incr.aof").write_bytes(b"SET sy:seal:x k")
    (redis_dir / "dump.rdb").write_bytes(b"REDIS0011")
    private_stack.up(["redis"])
    assert sorted(p.name for p in redis_dir.iterdir()) == ["redis.conf"]
    url = private_stack.layout.redis_url
    client = redis.Redis.from_url(url)
    try:
        client.set("stack-test:gone", "yes")
    finally:
        client.close()

    private_stack.kill("redis", signal.SIGKILL)
    assert not private_stack.is_running("redis")
    private_stack.restart("redis")

    client = redis.Redis.from_url(url)
    try:
        assert client.get("stack-test:gone") is None
    finally:
        client.close()
    private_stack.down(["redis"])
    assert sorted(p.name for p in redis_dir.iterdir()) == ["redis.conf"]


async def test_kafka_restart_keeps_topics_and_messages(private_stack: Stack) -> None:
    private_stack.up(["kafka"])
    bootstrap = private_stack.layout.kafka_bootstrap
    topic = f"test.stack.restart.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before restart")
    finally:
        await producer.stop()

    # Stop and start again: storage is formatted only once, so the data stays.
    private_stack.restart("kafka")

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert message.value == b"before restart"
    private_stack.down(["kafka"])
