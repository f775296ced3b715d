"""Cluster DDL: metering's migrations rewritten for a replicated, sharded ClickHouse cluster.

``python -m services.metering.cluster_ddl deploy/clickhouse/cluster.sql`` (``make clickhouse-ddl``)
writes the file an operator applies with ``clickhouse-client --multiquery``; a unit test
regenerates it and compares it byte for byte, so the committed file follows every new migration.

What each migration statement becomes (every statement ``ON CLUSTER '{cluster}'``):

- ``CREATE TABLE name ... ENGINE = XMergeTree(args)`` -> ``name_local`` with
  ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/{database}/name_local', '{replica}', args)``
  and the same columns, indexes and clauses; plus ``name`` itself as a ``Distributed`` table over
  ``name_local``, so the services' queries and inserts work unchanged. Each table's sharding key is
  in ``SHARDING_KEYS``: a ReplacingMergeTree's duplicates must land on the same shard, since
  ``FINAL`` only collapses rows within one.
- ``CREATE MATERIALIZED VIEW mv TO target AS SELECT ... FROM source`` -> the same view reading
  ``source_local`` into ``target_local``: each shard rolls up the rows it holds.
- ``ALTER TABLE name ...``: on ``name_local``, and column changes on ``name`` as well (a
  Distributed table has columns but no indexes, TTL or sorting key).
- ``INSERT``: kept as written, run once through the Distributed tables (ClickHouse has no
  ``INSERT ... ON CLUSTER``). Like every migration statement it must be idempotent.

The services' ledger, ``schema_migrations``, is created the same way, and the file ends by
recording every migration it holds with that migration's checksum: metering, started against the
cluster, then finds its migrations applied and runs none of their single-node forms.

Limits, on purpose: the migrations are short and ours, so this is a small token-level rewrite
rather than a SQL parser (sqlglot's ClickHouse dialect would regenerate each statement from its
syntax tree, dropping the file's layout, to rename two identifiers). Statements must be one of the
shapes above, with ``IF NOT EXISTS`` (``IF EXISTS`` for drops of columns), unquoted identifiers
without a database prefix, and a view that reads one table with no JOIN or subquery. Anything
else raises ``ClusterDDLError`` naming the migration, and the test fails rather than a wrong file
being written. ClickHouse 22.8 or newer is assumed: it resolves ``AS name_local`` and
``currentDatabase()`` of an ``ON CLUSTER`` CREATE on the initiator, in the database the file is
applied to.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.metering.schema import _LEDGER_DDL, Migration, load_migrations

CLUSTER = "'{cluster}'"
ON_CLUSTER = f"ON CLUSTER {CLUSTER}"
LOCAL_SUFFIX = "_local"
LEDGER = "schema_migrations"

# How rows spread over shards when inserted through a Distributed table. usage_events and
# request_log by request: an event's duplicates (same event_id, so same request) and a request's
# attempts meet on one shard. The rollups are written by views on each shard's local table; their
# key only places rows a migration inserts (a backfill), and any key is right for a sum.
SHARDING_KEYS: dict[str, str] = {
    LEDGER: "version",
    "usage_events": "cityHash64(request_id)",
    "usage_minute": "rand()",
    "audit_log": "cityHash64(id)",
    "request_log": "cityHash64(request_id)",
    "spend_month": "cityHash64(tenant)",
    "usage_hour": "rand()",
    "usage_day": "rand()",
}

_ENGINES = frozenset(
    {"MergeTree", "ReplacingMergeTree", "AggregatingMergeTree", "SummingMergeTree"}
)
# ALTER actions that change columns, which a Distributed table has too; the rest of those allowed
# concern the stored data (indexes, TTL, projections, settings) and only the local table.
_COLUMN_ACTIONS = frozenset(
    {"ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN"}
)
_LOCAL_ACTIONS = frozenset(
    {
        "ADD INDEX",
        "DROP INDEX",
        "MATERIALIZE INDEX",
        "MODIFY TTL",
        "REMOVE TTL",
        "MATERIALIZE TTL",
        "MODIFY SETTING",
        "ADD PROJECTION",
        "DROP PROJECTION",
        "MATERIALIZE PROJECTION",
        "MATERIALIZE COLUMN",
    }
)
# Actions that re-run harmlessly only with their guard (cluster.sql is applied whole on every
# upgrade).
_GUARDS = {
    "ADD COLUMN": "IF NOT EXISTS",
    "ADD INDEX": "IF NOT EXISTS",
    "ADD PROJECTION": "IF NOT EXISTS",
    "DROP COLUMN": "IF EXISTS",
    "DROP INDEX": "IF EXISTS",
    "DROP PROJECTION": "IF EXISTS",
    "MODIFY COLUMN": "IF EXISTS",
    "RENAME COLUMN": "IF EXISTS",
}

_HEADER = """\
-- Switchyard's ClickHouse schema for a cluster: ReplicatedMergeTree tables on every shard, a
-- Distributed table over each under the name the services use, materialised views per shard.
--
-- GENERATED from services/metering/migrations by `make clickhouse-ddl`
-- (services/metering/cluster_ddl.py). Do not edit: write a migration and regenerate.
--
-- Every node needs the macros {cluster}, {shard} and {replica}; apply with
--   clickhouse-client --multiquery --database <db> < deploy/clickhouse/cluster.sql
-- before starting (or upgrading) the services. Every statement is idempotent: re-apply the whole
-- file after each upgrade. See deploy/clickhouse/README.md.
"""


class ClusterDDLError(ValueError):
    """A migration statement this generator cannot translate (see the module's limits)."""


def local_name(table: str) -> str:
    """The replicated table that holds the rows behind the Distributed table ``table``."""
    return f"{table}{LOCAL_SUFFIX}"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, string, quoted, number, punct, space; raw for text spliced in
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group()))
    return tokens


def _text(tokens: Sequence[_Token]) -> str:
    return "".join(t.text for t in tokens)


class _Cursor:
    """Walks a statement's tokens, skipping whitespace, and splices text into it."""

    def __init__(self, tokens: list[_Token], where: str) -> None:
        self.tokens = tokens
        self.where = where
        self.pos = 0

    def fail(self, reason: str) -> ClusterDDLError:
        return ClusterDDLError(f"{self.where}: {reason}")

    def _skip_space(self) -> None:
        while self.pos < len(self.tokens) and self.tokens[self.pos].kind == "space":
            self.pos += 1

    def peek(self) -> _Token | None:
        self._skip_space()
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at_words(self, *words: str) -> bool:
        saved = self.pos
        try:
            for word in words:
                token = self.peek()
                if token is None or token.upper != word:
                    return False
                self.pos += 1
            return True
        finally:
            self.pos = saved

    def expect_words(self, *words: str) -> None:
        if not self.at_words(*words):
            raise self.fail(f"expected {' '.join(words)}")
        for _ in words:
            self.peek()
            self.pos += 1

    def identifier(self) -> int:
        """The position of the identifier here; refuses quoted and database-qualified names."""
        token = self.peek()
        if token is None or token.kind != "word":
            raise self.fail("expected an unquoted table name")
        index = self.pos
        self.pos += 1
        following = self.peek()
        if following is not None and following.text == ".":
            raise self.fail("a table name with a database prefix is not supported")
        return index

    def skip_group(self) -> tuple[int, int]:
        """Past a parenthesised group starting here; returns its token span (both parens)."""
        token = self.peek()
        if token is None or token.text != "(":
            raise self.fail("expected (")
        start, depth = self.pos, 0
        for index in range(self.pos, len(self.tokens)):
            text = self.tokens[index].text
            depth += (text == "(") - (text == ")")
            if depth == 0:
                self.pos = index + 1
                return start, index
        raise self.fail("unbalanced parentheses")


def _rename(tokens: list[_Token], index: int, name: str) -> None:
    tokens[index] = _Token("word", name)


def _insert_after(tokens: list[_Token], index: int, text: str) -> None:
    tokens.insert(index + 1, _Token("raw", text))


@dataclass
class _Schema:
    """What the migrations built so far: tables (replicated + distributed) and views."""

    tables: set[str]
    views: set[str]


def translate(migrations: Sequence[Migration]) -> str:
    """The cluster DDL for these migrations, in order, as one file's text."""
    schema = _Schema(tables=set(), views=set())
    parts = [_HEADER, "\n-- The services' migration ledger (services.metering.schema).\n"]
    parts.extend(
        f"{statement};\n"
        for statement in _statements(_LEDGER_DDL.strip(), schema, f"{LEDGER} (schema.py)")
    )
    for migration in migrations:
        where = f"{migration.version:04d}_{migration.name}.sql"
        parts.append(f"\n-- {where}\n")
        for index, statement in enumerate(migration.statements(), start=1):
            parts.extend(
                f"{translated};\n"
                for translated in _statements(statement, schema, f"{where}, statement {index}")
            )
    if migrations:
        parts.append(
            "\n-- Recorded as applied, so that metering finds nothing left to run at start (a"
            "\n-- version already recorded with the same checksum is not recorded again).\n"
            f"{_record(migrations)};\n"
        )
    return "".join(parts)


def _record(migrations: Sequence[Migration]) -> str:
    rows = ",\n".join(f"    ({m.version}, '{m.name}', '{m.checksum}')" for m in migrations)
    return (
        f"INSERT INTO {LEDGER} (version, name, checksum)\n"
        "SELECT version, name, checksum\n"
        "FROM values(\n"
        "    'version UInt32, name String, checksum String',\n"
        f"{rows}\n"
        ")\n"
        "WHERE (version, checksum) NOT IN (\n"
        f"    SELECT version, argMax(checksum, applied_at) FROM {LEDGER} GROUP BY version\n"
        ")"
    )


def _statements(sql: str, schema: _Schema, where: str) -> Iterator[str]:
    cursor = _Cursor(_tokens(sql), where)
    if cursor.at_words("CREATE", "TABLE"):
        yield from _create_table(cursor, schema)
    elif cursor.at_words("CREATE", "MATERIALIZED", "VIEW"):
        yield _create_view(cursor, schema)
    elif cursor.at_words("ALTER", "TABLE"):
        yield from _alter_table(cursor, schema)
    elif cursor.at_words("INSERT", "INTO"):
        yield _insert(cursor, schema)
    else:
        raise cursor.fail("only CREATE TABLE, CREATE MATERIALIZED VIEW, ALTER TABLE and INSERT")


def _create_table(cursor: _Cursor, schema: _Schema) -> Iterator[str]:
    tokens = cursor.tokens
    cursor.expect_words("CREATE", "TABLE")
    cursor.expect_words("IF", "NOT", "EXISTS")
    name_at = cursor.identifier()
    name = tokens[name_at].text
    if name in schema.tables or name in schema.views:
        raise cursor.fail(f"{name} is created twice")
    sharding_key = SHARDING_KEYS.get(name)
    if sharding_key is None:
        raise cursor.fail(f"no sharding key for {name}: add one to SHARDING_KEYS")
    cursor.skip_group()  # the columns and indexes, kept as written
    engine_at = _find_engine(cursor)
    engine = tokens[engine_at].text
    if engine not in _ENGINES:
        raise cursor.fail(f"engine {engine} is not one of {', '.join(sorted(_ENGINES))}")
    local = local_name(name)
    replication = f"'/clickhouse/tables/{{shard}}/{{database}}/{local}', '{{replica}}'"
    cursor.pos = engine_at + 1
    following = cursor.peek()
    if following is not None and following.text == "(":
        open_at, close_at = cursor.skip_group()
        arguments = _text(tokens[open_at + 1 : close_at]).strip()
        inner = f"{replication}, {arguments}" if arguments else replication
        tokens[open_at + 1 : close_at] = [_Token("raw", inner)]
    else:
        _insert_after(tokens, engine_at, f"({replication})")
    tokens[engine_at] = _Token("word", f"Replicated{engine}")
    _rename(tokens, name_at, local)
    _insert_after(tokens, name_at, f" {ON_CLUSTER}")
    schema.tables.add(name)
    yield _text(tokens)
    yield (
        f"CREATE TABLE IF NOT EXISTS {name} {ON_CLUSTER} AS {local}\n"
        f"ENGINE = Distributed({CLUSTER}, currentDatabase(), {local}, {sharding_key})"
    )


def _find_engine(cursor: _Cursor) -> int:
    """The position of the engine's name after ``ENGINE =``, at the top level."""
    while (token := cursor.peek()) is not None:
        if token.upper == "ENGINE":
            cursor.pos += 1
            equals = cursor.peek()
            if equals is None or equals.text != "=":
                raise cursor.fail("expected ENGINE =")
            cursor.pos += 1
            engine = cursor.peek()
            if engine is None or engine.kind != "word":
                raise cursor.fail("expected an engine name")
            return cursor.pos
        if token.text == "(":
            cursor.skip_group()
        else:
            cursor.pos += 1
    raise cursor.fail("a table without ENGINE")


def _create_view(cursor: _Cursor, schema: _Schema) -> str:
    tokens = cursor.tokens
    cursor.expect_words("CREATE", "MATERIALIZED", "VIEW")
    cursor.expect_words("IF", "NOT", "EXISTS")
    name_at = cursor.identifier()
    name = tokens[name_at].text
    if name in schema.tables or name in schema.views:
        raise cursor.fail(f"{name} is created twice")
    cursor.expect_words("TO")
    target_at = cursor.identifier()
    cursor.expect_words("AS", "SELECT")
    select = range(cursor.pos, len(tokens))
    if any(tokens[index].upper in {"JOIN", "SELECT", "UNION"} for index in select):
        raise cursor.fail("a view must read one table: no JOIN, UNION or subquery")
    sources: list[int] = []
    for index in select:
        if tokens[index].upper == "FROM":
            cursor.pos = index + 1
            sources.append(cursor.identifier())
    if len(sources) != 1:
        raise cursor.fail("a view must read exactly one table")
    for at in (target_at, sources[0]):
        table = tokens[at].text
        if table not in schema.tables:
            raise cursor.fail(f"{table} is not a table created by an earlier migration")
        _rename(tokens, at, local_name(table))
    _insert_after(tokens, name_at, f" {ON_CLUSTER}")
    schema.views.add(name)
    return _text(tokens)


def _alter_table(cursor: _Cursor, schema: _Schema) -> Iterator[str]:
    tokens = cursor.tokens
    cursor.expect_words("ALTER", "TABLE")
    name_at = cursor.identifier()
    name = tokens[name_at].text
    if name not in schema.tables:
        raise cursor.fail(f"ALTER of {name}, which is not a table created by a migration")
    actions = _split_actions(cursor)
    kinds = [_action_kind(cursor, action) for action in actions]
    head, rest = tokens[: name_at + 1], tokens[name_at + 1 :]
    local_head = [*head[:-1], _Token("word", local_name(name)), _Token("raw", f" {ON_CLUSTER}")]
    yield _text([*local_head, *rest])
    column_actions = [a for a, kind in zip(actions, kinds, strict=True) if kind in _COLUMN_ACTIONS]
    if column_actions and len(column_actions) != len(actions):
        raise cursor.fail("mixes column changes with other actions: write two ALTERs")
    if column_actions:
        yield _text([*head, _Token("raw", f" {ON_CLUSTER}"), *rest])


def _split_actions(cursor: _Cursor) -> list[list[_Token]]:
    """The comma-separated actions after ``ALTER TABLE name``, each a token list."""
    actions: list[list[_Token]] = [[]]
    depth = 0
    for token in cursor.tokens[cursor.pos :]:
        depth += (token.text == "(") - (token.text == ")")
        if token.text == "," and depth == 0:
            actions.append([])
        else:
            actions[-1].append(token)
    return actions


def _action_kind(cursor: _Cursor, action: list[_Token]) -> str:
    words = [t.upper for t in action if t.kind != "space"]
    kind = " ".join(words[:2])
    if kind not in _COLUMN_ACTIONS | _LOCAL_ACTIONS:
        raise cursor.fail(f"ALTER ... {kind} is not supported")
    guard = _GUARDS.get(kind)
    if guard is not None and " ".join(words[2 : 2 + len(guard.split())]) != guard:
        raise cursor.fail(f"{kind} needs {guard}: cluster.sql is re-applied on every upgrade")
    return kind


def _insert(cursor: _Cursor, schema: _Schema) -> str:
    cursor.expect_words("INSERT", "INTO")
    name = cursor.tokens[cursor.identifier()].text
    if name not in schema.tables:
        raise cursor.fail(f"INSERT into {name}, which is not a table created by a migration")
    return _text(cursor.tokens)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.metering.cluster_ddl",
        description="Write metering's migrations as DDL for a ClickHouse cluster.",
    )
    parser.add_argument("output", nargs="?", default="-", help="file to write; - for stdout")
    args = parser.parse_args(argv)
    text = translate(load_migrations())
    if args.output == "-":
        sys.stdout.write(text)
        return
    path = Path(args.output)
    # Written whole or not at all: a failed run must not leave a half file to be committed.
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8", newline="\n")
    partial.replace(path)


if __name__ == "__main__":
    main()
