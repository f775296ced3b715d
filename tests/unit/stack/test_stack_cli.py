from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.stack.cli import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_status_lists_every_component_of_an_empty_home(app: typer.Typer, tmp_path: Path) -> None:
    env = {"SWITCHYARD_HOME": str(tmp_path), "SWITCHYARD_PORT_OFFSET": "30000"}
    result = CliRunner().invoke(app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["COMPONENT", "STATE", "PID", "PORT", "HEALTH"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["kafka"] == ["stopped", "-", "39092", "-"]
    assert rows["ingress"] == ["stopped", "-", "38080", "-"]


def test_down_with_nothing_running(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["down"], env={"SWITCHYARD_HOME": str(tmp_path)})
    assert result.exit_code == 0
    assert "nothing was running" in result.output


def test_an_unknown_component_is_an_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["up", "--only", "kafak"], env={"SWITCHYARD_HOME": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "no component 'kafak'" in result.output
