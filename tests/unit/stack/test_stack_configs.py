"""The Kafka and Redis configurations rendered from deploy/ templates."""

from __future__ import annotations

from pathlib import Path

from services.stack import StackLayout, _kafka, _redis


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def test_kafka_config_is_a_single_kraft_node_on_the_layout_ports(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path, port_offset=10000)
    config = _properties(_kafka.render_server_properties(layout).read_text())
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert config["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert config["auto.create.topics.enable"] == "false"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"


def test_kafka_cluster_id_is_made_once(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path)
    first = _kafka.cluster_id(layout)
    assert len(first) == 22
    assert not first.startswith("-")
    assert _kafka.cluster_id(layout) == first


def test_redis_config_keeps_nothing_on_disk_and_listens_on_loopback(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path, port_offset=10000)
    _redis.prepare(layout)
    lines = {
        tuple(line.split(None, 1))
        for line in _redis.config_path(layout).read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert ("port", "16380") in lines
    assert ("bind", "127.0.0.1") in lines
    # Nothing on disk: sealing keys and replies must not outlive a restart (zero retention).
    assert ("appendonly", "no") in lines
    assert ("save", '""') in lines
    assert ("daemonize", "no") in lines
    assert ("dir", str(tmp_path / "redis")) in lines
