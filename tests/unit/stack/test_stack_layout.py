from __future__ import annotations

from pathlib import Path

import pytest

from contracts.topics import PROVIDERS
from services.stack import StackLayout
from services.stack._components import stack_components, worker_groups


def test_defaults_resolve_home_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    layout = StackLayout.from_env({})
    assert layout.home == tmp_path / ".local"
    assert layout.kafka_bootstrap == "127.0.0.1:9092"
    assert layout.redis_url == "redis://127.0.0.1:6380/0"
    assert layout.base_url == "http://127.0.0.1:8080/v1"
    assert layout.clickhouse_dsn == f"chdb://{tmp_path / '.local' / 'clickhouse'}"


def test_port_offset_moves_every_port(tmp_path: Path) -> None:
    layout = StackLayout.from_env(
        {"SWITCHYARD_HOME": str(tmp_path), "SWITCHYARD_PORT_OFFSET": "10000"}
    )
    assert (layout.kafka_port, layout.kafka_controller_port) == (19092, 19093)
    assert layout.redis_port == 16380
    assert layout.ingress_port == 18080
    assert (layout.vendorsim_port, layout.metering_port, layout.router_port) == (
        18090,
        18091,
        18092,
    )
    assert layout.worker_port(0) == 18093
    assert layout.base_url == "http://127.0.0.1:18080/v1"
    assert layout.vendorsim_url == "http://127.0.0.1:18090"


def test_every_component_has_its_own_port(tmp_path: Path) -> None:
    ports = [c.port for c in stack_components(StackLayout(home=tmp_path))]
    ports.append(StackLayout(home=tmp_path).kafka_controller_port)
    assert len(ports) == len(set(ports))


def test_components_start_infra_first_and_ingress_last(tmp_path: Path) -> None:
    names = [c.name for c in stack_components(StackLayout(home=tmp_path))]
    assert names[:2] == ["kafka", "redis"]
    assert names[-1] == "ingress"
    assert {"vendorsim", "metering", "router", "worker-openai", "worker-anthropic"} <= set(names)


def test_worker_groups_serve_every_provider_exactly_once() -> None:
    served = [p for _, providers in worker_groups() for p in providers]
    assert sorted(served) == sorted(PROVIDERS)
    assert dict(worker_groups())["worker-openai"] == ("openai",)


def test_each_worker_gets_its_own_port_in_its_environment(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path, port_offset=5)
    workers = [c for c in stack_components(layout) if c.name.startswith("worker-")]
    assert [w.env["SWITCHYARD_WORKER_PORT"] for w in workers] == [str(w.port) for w in workers]


def test_service_env_names_the_whole_stack(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path, port_offset=10000)
    env = layout.service_env(admin_key="sy-admin-x")
    assert env["SWITCHYARD_HOME"] == str(tmp_path)
    assert env["SWITCHYARD_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
    assert env["SWITCHYARD_REDIS_URL"] == "redis://127.0.0.1:16380/0"
    assert env["SWITCHYARD_CLICKHOUSE_DSN"] == f"chdb://{tmp_path / 'clickhouse'}"
    assert env["SWITCHYARD_VENDORSIM_URL"] == "http://127.0.0.1:18090"
    assert env["SWITCHYARD_ADMIN_KEY"] == "sy-admin-x"
    for name in ("INGRESS", "VENDORSIM", "METERING", "ROUTER"):
        assert env[f"SWITCHYARD_{name}_PORT"].startswith("180")


def test_paths_live_under_home(tmp_path: Path) -> None:
    layout = StackLayout(home=tmp_path)
    assert layout.pid_file("router") == tmp_path / "run" / "router.pid"
    assert layout.log_file("router") == tmp_path / "log" / "router.log"
    assert layout.kafka_data_dir == tmp_path / "kafka" / "data"


def test_relative_home_and_bad_offsets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        StackLayout(home=Path("relative"))
    with pytest.raises(ValueError, match="integer"):
        StackLayout.from_env({"SWITCHYARD_HOME": str(tmp_path), "SWITCHYARD_PORT_OFFSET": "x"})
    with pytest.raises(ValueError, match="port range"):
        StackLayout(home=tmp_path, port_offset=60000)
