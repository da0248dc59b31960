"""What the operator policy and the per-project role check add to a request, timed in-process.

* the policy: `check_instance()` on a typical operator create (limits, user keys, a pool root
  disk, a custom volume, a NIC on a managed bridge), and on a refused one (every violation);
* the role check: `require()` for a project-scoped route, for a global operator and for a tenant
  with project bindings;
* the user's standing read beside every JSON read, and the user load before every write, on
  SQLite: the queries they are now (the project bindings joined, plus "was this access token
  logged out"; the standing read in one thread hop on `sqlite3`, app/db/standing.py) against
  what they were before (the user's row alone, through the async engine).

    .venv/bin/python bench/policy_overhead.py [--rounds 20000]

Target (issue 13): the policy and the role check add at most 0.3 ms median to `POST
/instances` and to a list. Prints a table and, as its last line, one JSON object; exits 1 when
the target is missed. No LXD needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from app.auth.access import require
from app.auth.policy import InstanceWrite, Policy, PolicyMode, check_instance
from app.core.security import Role
from app.db.crud import get_standing, get_token_user
from app.db.migrations import upgrade_to_head
from app.db.models import ProjectBinding, User, utcnow
from app.db.session import make_engine, make_sessionmaker

TARGET_MS = 0.3
POLICY = Policy(mode=PolicyMode.default, image_servers=("https://images.example.org",))
SAFE = InstanceWrite(
    config={"limits.cpu": "2", "limits.memory": "1GiB", "user.team": "web"},
    devices={
        "root": {"type": "disk", "path": "/", "pool": "default"},
        "data": {"type": "disk", "path": "/srv", "pool": "default", "source": "data1"},
        "eth0": {"type": "nic", "network": "lxdbr0", "name": "eth0"},
    },
    source={"type": "image", "alias": "busybox"},
    managed_networks=frozenset({"lxdbr0"}),
)
REFUSED = InstanceWrite(
    config={"security.privileged": "true", "raw.lxc": "x", "volatile.x": "1"},
    devices={
        "host": {"type": "disk", "path": "/host", "source": "/"},
        "gpu": {"type": "gpu"},
        "sock": {"type": "proxy", "listen": "tcp:0.0.0.0:1", "connect": "unix:/x"},
    },
    source={"type": "image", "alias": "x", "server": "https://evil.example"},
)


class Member:
    def __init__(self, role: str, projects: dict[str, str]) -> None:
        self.role = role
        self.projects = projects


def per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median of 15 batches, microseconds per call."""
    batch = max(1, rounds // 15)
    samples = []
    for _ in range(15):
        started = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - started) / batch * 1e6)
    return statistics.median(samples)


async def interleaved_us(
    one: Callable[[], Awaitable[object]], two: Callable[[], Awaitable[object]], rounds: int
) -> tuple[float, float]:
    """Median microseconds of each, called in turn so that both see the same load."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, into in ((one, samples[0]), (two, samples[1])):
            started = time.perf_counter()
            await fn()
            into.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples[0]), statistics.median(samples[1])


async def standing_costs(rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(before, now) median microseconds of the standing read beside a list, and of the user
    load before a write, on SQLite."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        await asyncio.to_thread(upgrade_to_head, url)
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                user = User(
                    username="tenant",
                    username_key="tenant",
                    password_hash="x",  # noqa: S106 (never checked here)
                    role="none",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    bindings=[ProjectBinding(project=f"p{i}", role="operator") for i in range(5)],
                )
                session.add(user)
                await session.commit()
                user_id = user.id
            old = select(User.role, User.is_active, User.token_version).where(
                User.id == bindparam("user_id")
            )

            async def before() -> object:
                async with engine.connect() as connection:
                    return (await connection.execute(old, {"user_id": user_id})).first()

            async def now() -> object:
                return await get_standing(engine, user_id, "some-jti")

            sessionmaker = make_sessionmaker(engine)

            async def user_before() -> object:
                async with sessionmaker() as session:
                    stmt = select(User).options(lazyload(User.bindings)).where(User.id == user_id)
                    return (await session.execute(stmt)).scalar_one()

            async def user_now() -> object:
                return await get_token_user(engine, user_id, "some-jti")

            for warm in (before, now, user_before, user_now):
                for _ in range(200):
                    await warm()
            reads = await interleaved_us(before, now, rounds)
            users = await interleaved_us(user_before, user_now, rounds)
            return reads, users
        finally:
            await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()

    assert check_instance(POLICY, "operator", SAFE) == []
    assert len(check_instance(POLICY, "operator", REFUSED)) >= 6
    safe_us = per_call_us(lambda: check_instance(POLICY, "operator", SAFE), args.rounds)
    refused_us = per_call_us(lambda: check_instance(POLICY, "operator", REFUSED), args.rounds)
    operator = Member("operator", {})
    tenant = Member("none", {f"p{i}": "operator" for i in range(20)})
    role_global_us = per_call_us(
        lambda: require(operator, Role.operator, "project", "p3"), args.rounds
    )
    role_tenant_us = per_call_us(
        lambda: require(tenant, Role.operator, "project", "p3"), args.rounds
    )
    (before_us, now_us), (user_before_us, user_now_us) = asyncio.run(
        standing_costs(max(500, args.rounds // 10))
    )
    standing_added_us = max(0.0, now_us - before_us)
    user_added_us = max(0.0, user_now_us - user_before_us)
    create_ms = (safe_us + role_tenant_us + user_added_us) / 1000
    list_ms = (role_tenant_us + standing_added_us) / 1000

    rows = [
        ("policy check, safe create", safe_us),
        ("policy check, refused create (6 violations)", refused_us),
        ("role check, global operator", role_global_us),
        ("role check, tenant with 20 bindings", role_tenant_us),
        ("standing read before (3 columns)", before_us),
        ("standing read now (+ bindings, + logged-out jti)", now_us),
        ("user load before a write, before (user row)", user_before_us),
        ("user load now (+ bindings joined, + logged-out jti)", user_now_us),
    ]
    print(f"{'what':52} {'median us':>10}")
    for what, value in rows:
        print(f"{what:52} {value:10.1f}")
    print(f"added to POST /instances: {create_ms:.3f} ms (target <= {TARGET_MS} ms)")
    print(f"added to a list:          {list_ms:.3f} ms (target <= {TARGET_MS} ms)")
    ok = create_ms <= TARGET_MS and list_ms <= TARGET_MS
    print(
        json.dumps(
            {
                "policy_check_us": round(safe_us, 2),
                "policy_refused_us": round(refused_us, 2),
                "role_check_us": round(role_tenant_us, 2),
                "standing_before_us": round(before_us, 1),
                "standing_now_us": round(now_us, 1),
                "user_load_before_us": round(user_before_us, 1),
                "user_load_now_us": round(user_now_us, 1),
                "create_added_ms": round(create_ms, 4),
                "list_added_ms": round(list_ms, 4),
                "target_ms": TARGET_MS,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
