"""The cluster DDL (deploy/clickhouse/cluster.sql): in step with the migrations byte for byte,
replicated or distributed throughout, every statement accepted by ClickHouse's own parser, and
anything the generator cannot translate refused rather than written wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from services.metering.cluster_ddl import (
    ON_CLUSTER,
    SHARDING_KEYS,
    ClusterDDLError,
    main,
    translate,
)
from services.metering.schema import Migration, load_migrations

COMMITTED = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse" / "cluster.sql"

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER '\{cluster\}'")
_REPLICATED = re.compile(
    r"ENGINE = Replicated(\w*)MergeTree\('/clickhouse/tables/\{shard\}/\{database\}/(\w+)',"
    r" '\{replica\}'"
)
_DISTRIBUTED = re.compile(
    r"AS (\w+)\nENGINE = Distributed\('\{cluster\}', currentDatabase\(\), (\w+), [^)]+\)+$"
)


def statements(sql: str) -> list[str]:
    # As clickhouse-client --multiquery reads the file: comments out, split on ';'.
    return Migration(0, "cluster", sql).statements()


def generated() -> list[str]:
    return statements(translate(load_migrations()))


def test_the_committed_file_is_what_the_migrations_generate() -> None:
    expected = translate(load_migrations())
    assert COMMITTED.read_text("utf-8") == expected, (
        "deploy/clickhouse/cluster.sql is stale: run `make clickhouse-ddl`"
    )


def test_the_command_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "cluster.sql"
    main([str(target)])
    assert target.read_bytes() == COMMITTED.read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_every_table_is_replicated_or_distributed_and_every_ddl_on_cluster() -> None:
    replicated: dict[str, str] = {}
    distributed: dict[str, str] = {}
    for statement in generated():
        if statement.startswith("INSERT INTO"):
            continue  # no INSERT ... ON CLUSTER: it runs once, through the Distributed tables
        assert ON_CLUSTER in statement.splitlines()[0], statement
        create = _CREATE_TABLE.match(statement)
        if create is None:
            assert statement.startswith(("ALTER TABLE", "CREATE MATERIALIZED VIEW")), statement
            continue
        name = create.group(1)
        if (engine := _REPLICATED.search(statement)) is not None:
            assert engine.group(2) == name == f"{name.removesuffix('_local')}_local"
            replicated[name] = engine.group(1)
        else:
            over = _DISTRIBUTED.search(statement)
            assert over is not None, f"{name} is neither replicated nor distributed"
            assert over.group(1) == over.group(2) == f"{name}_local"
            distributed[name] = over.group(2)
    # Each local table has its Distributed table, under the name the services use.
    assert {f"{name}_local" for name in distributed} == set(replicated)
    assert set(distributed) == set(SHARDING_KEYS)
    # One ZooKeeper path per table: two tables on one path would share their data.
    paths = re.findall(r"'/clickhouse/tables/[^']+'", translate(load_migrations()))
    assert len(paths) == len(set(paths)) == len(replicated)


def test_the_services_tables_are_all_there_with_their_names(clickhouse: Client) -> None:
    """The migrated single-node schema and the cluster's agree on names: each table is a
    Distributed table of the same name, each view reads and fills local tables."""
    objects = clickhouse.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    text = translate(load_migrations())
    for name, engine in objects:
        if engine == "MaterializedView":
            view = re.search(
                rf"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} ON CLUSTER '{{cluster}}'"
                r" TO (\w+) AS\n.*?\nFROM (\w+)\n",
                text,
                re.DOTALL,
            )
            assert view is not None, name
            assert view.group(1).endswith("_local")
            assert view.group(2).endswith("_local")
        else:
            assert (
                f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER '{{cluster}}' AS {name}_local\n"
                in text
            )
            assert f"ENGINE = Distributed('{{cluster}}', currentDatabase(), {name}_local" in text


def test_column_changes_reach_both_tables_and_the_rest_only_the_local_one() -> None:
    sql = translate(load_migrations())
    for table in ("usage_events_local", "usage_events"):
        assert (
            f"ALTER TABLE {table} ON CLUSTER '{{cluster}}' ADD COLUMN IF NOT EXISTS user_tag" in sql
        )
    extra = Migration(
        99,
        "extra",
        "ALTER TABLE usage_events MODIFY TTL toDateTime(ts) + INTERVAL 1 DAY;\n"
        "ALTER TABLE usage_events ADD INDEX IF NOT EXISTS idx_tag user_tag TYPE bloom_filter",
    )
    tail = statements(translate([*load_migrations(), extra]))
    assert [s for s in tail if "idx_tag" in s or "MODIFY TTL" in s] == [
        "ALTER TABLE usage_events_local ON CLUSTER '{cluster}' MODIFY TTL toDateTime(ts)"
        " + INTERVAL 1 DAY",
        "ALTER TABLE usage_events_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_tag"
        " user_tag TYPE bloom_filter",
    ]


def test_clickhouse_parses_every_statement(clickhouse: Client) -> None:
    # ClickHouse's own parser, through chDB: what clickhouse-client would send, it accepts.
    # (Executing needs a cluster and Keeper; chDB has neither.)
    for statement in generated():
        formatted = clickhouse.query(
            "SELECT formatQuery({statement:String})", parameters={"statement": statement}
        ).result_rows[0][0]
        assert formatted


def test_recording_the_migrations_twice_records_nothing_new(clickhouse: Client) -> None:
    """The ledger INSERT at the end of the file, run against a ledger that has the migrations
    (the unit tests' migrated chDB), adds no row: re-applying the file keeps the ledger clean."""
    record = statements(translate(load_migrations()))[-1]
    assert record.startswith("INSERT INTO schema_migrations")
    before = clickhouse.command("SELECT count() FROM schema_migrations")
    clickhouse.command(record)
    assert clickhouse.command("SELECT count() FROM schema_migrations") == before


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        ("DROP TABLE usage_events", "only CREATE TABLE"),
        ("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a", "expected IF NOT EXISTS"),
        ("CREATE TABLE IF NOT EXISTS db.t (a UInt8) ENGINE = MergeTree", "database prefix"),
        ("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = MergeTree ORDER BY a", "sharding key"),
        ("CREATE TABLE IF NOT EXISTS usage_events (a UInt8) ENGINE = Memory", "created twice"),
        ("ALTER TABLE nowhere ADD COLUMN IF NOT EXISTS a UInt8", "not a table created"),
        ("ALTER TABLE usage_events ADD COLUMN a UInt8", "needs IF NOT EXISTS"),
        ("ALTER TABLE usage_events DELETE WHERE 1", "ALTER ... DELETE WHERE is not supported"),
        (
            "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS a UInt8,"
            " MODIFY TTL toDateTime(ts) + INTERVAL 1 DAY",
            "write two ALTERs",
        ),
        (
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO usage_minute AS"
            " SELECT * FROM usage_events JOIN audit_log USING (tenant)",
            "read one table",
        ),
        (
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO usage_minute AS"
            " SELECT * FROM (SELECT * FROM usage_events)",
            "read one table",
        ),
        (
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO nowhere AS SELECT * FROM usage_events",
            "nowhere is not a table",
        ),
        ("INSERT INTO nowhere SELECT 1", "not a table created"),
    ],
)
def test_what_it_cannot_translate_is_refused(sql: str, refusal: str) -> None:
    broken = Migration(99, "broken", sql)
    with pytest.raises(ClusterDDLError, match=re.escape(refusal)) as raised:
        translate([*load_migrations(), broken])
    assert "0099_broken.sql" in str(raised.value)


def test_an_engine_outside_the_merge_tree_family_is_refused() -> None:
    memory = Migration(
        1, "memory", "CREATE TABLE IF NOT EXISTS usage_events (a UInt8) ENGINE = Memory"
    )
    with pytest.raises(ClusterDDLError, match="engine Memory is not one of"):
        translate([memory])
