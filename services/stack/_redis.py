"""The local Redis: Debian's ``redis-server`` run in the foreground with a generated config
(``deploy/redis/redis.conf`` with the layout's port and data directory filled in)."""

from __future__ import annotations

import shutil
import string
from pathlib import Path

from services.stack._errors import StackError
from services.stack._layout import StackLayout


def config_path(layout: StackLayout) -> Path:
    return layout.redis_dir / "redis.conf"


# Files an earlier, persistent Redis of this home may have left: they hold sealing keys and
# replies, so they are deleted at every start rather than loaded (redis.conf says why).
_PERSISTENCE_LEFTOVERS = ("appendonlydir", "appendonly.aof", "dump.rdb")


def prepare(layout: StackLayout) -> None:
    for name in _PERSISTENCE_LEFTOVERS:
        leftover = layout.redis_dir / name
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    template = (layout.repo_root / "deploy" / "redis" / "redis.conf").read_text()
    text = string.Template(template).substitute(port=layout.redis_port, dir=layout.redis_dir)
    layout.redis_dir.mkdir(parents=True, exist_ok=True)
    config_path(layout).write_text(text)


def server_argv(layout: StackLayout) -> list[str]:
    found = shutil.which("redis-server")
    if found is None:
        raise StackError(
            "redis-server not found: run scripts/bootstrap.sh (installs Debian's redis-server "
            "as root) or install Redis 7+"
        )
    return [found, str(config_path(layout))]
