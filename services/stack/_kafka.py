"""The local Kafka broker: one KRaft node acting as broker and controller, run from the jars that
``scripts/bootstrap.sh`` put in ``.local/kafka/libs``.

Its configuration is ``deploy/kafka/server.properties`` with the layout's ports and paths filled
in. Storage is formatted once, with a cluster id kept in ``$SWITCHYARD_HOME/kafka/cluster.id``.
"""

from __future__ import annotations

import base64
import os
import shutil
import string
import subprocess
import uuid
from pathlib import Path

from services.stack._errors import StackError
from services.stack._layout import StackLayout

# Small and fixed: the local broker holds little data, and a developer machine runs a dozen
# other processes beside it. G1 with a short pause goal keeps the broker's GC out of request
# latency; ExitOnOutOfMemoryError makes an OOM a visible crash rather than a hung broker.
JVM_OPTIONS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java not found: install Java 17+ (scripts/bootstrap.sh checks this)")
    return found


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding (22 characters), as
    Kafka's own ``Uuid.randomUuid`` makes them, which also avoids a leading '-' so the id can't be
    mistaken for a command-line option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def cluster_id(layout: StackLayout) -> str:
    path = layout.kafka_dir / "cluster.id"
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    created = new_cluster_id()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(created + "\n")
    return created


def server_properties_path(layout: StackLayout) -> Path:
    return layout.kafka_dir / "server.properties"


def render_server_properties(layout: StackLayout) -> Path:
    template = (layout.repo_root / "deploy" / "kafka" / "server.properties").read_text()
    text = string.Template(template).substitute(
        port=layout.kafka_port,
        controller_port=layout.kafka_controller_port,
        data_dir=layout.kafka_data_dir,
    )
    path = server_properties_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _classpath(layout: StackLayout) -> str:
    if not any(layout.kafka_libs.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"no Kafka jars in {layout.kafka_libs}: run scripts/bootstrap.sh (or `make up`)"
        )
    return f"{layout.kafka_libs}/*"


def _java_base(layout: StackLayout) -> list[str]:
    log4j = layout.repo_root / "deploy" / "kafka" / "log4j2.properties"
    return [
        java_executable(),
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={layout.log_dir}",
        "-cp",
        _classpath(layout),
    ]


def prepare(layout: StackLayout) -> None:
    """Render the configuration and format the storage if it never was. Formatting an already
    formatted directory is refused by Kafka, so ``meta.properties`` is the marker."""
    config = render_server_properties(layout)
    if (layout.kafka_data_dir / "meta.properties").exists():
        return
    layout.kafka_data_dir.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        *_java_base(layout),
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--cluster-id",
        cluster_id(layout),
        "--config",
        str(config),
    ]
    with layout.log_file("kafka").open("ab") as log:
        result = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120
        )
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka storage failed (exit {result.returncode}); "
            f"see {layout.log_file('kafka')}"
        )


def server_argv(layout: StackLayout) -> list[str]:
    return [*_java_base(layout), "kafka.Kafka", str(server_properties_path(layout))]
