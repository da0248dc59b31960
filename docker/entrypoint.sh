#!/bin/sh
# Check what the container cannot run without, migrate the user store, then serve. uvicorn
# trusts proxy headers only from FORWARDED_ALLOW_IPS (see `python -m app`).
#
# Refuses to start (exit 78, EX_CONFIG) without JWT_SECRET, and on an empty user store without
# SEED_ADMIN_USERNAME/SEED_ADMIN_PASSWORD (a server nobody can log in to). Both go in `.env`:
#   sed -i "s/^JWT_SECRET=.*/JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')/" .env
set -eu

die() {
    echo "lxd-api: $*" >&2
    exit 78
}

[ -n "${JWT_SECRET:-}" ] || die "JWT_SECRET is not set: put a random value of at least 32 bytes \
in .env (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"

alembic upgrade head

# An empty store needs the seed admin (created by the app at start); the password is not printed.
python - <<'PY' || exit 78
import asyncio
import sys

from app.core.config import get_settings
from app.db import crud
from app.db.session import make_engine, make_sessionmaker


async def users() -> int:
    engine = make_engine(get_settings().DATABASE_URL)
    try:
        async with make_sessionmaker(engine)() as session:
            return await crud.count_users(session)
    finally:
        await engine.dispose()


settings = get_settings()
seeded = settings.SEED_ADMIN_USERNAME.strip() and settings.SEED_ADMIN_PASSWORD.get_secret_value()
if not seeded and asyncio.run(users()) == 0:
    sys.exit(
        "lxd-api: the user store has no user: set SEED_ADMIN_USERNAME and SEED_ADMIN_PASSWORD "
        "in .env for the first start (the admin is created once; remove them afterwards)"
    )
PY

exec python -m app "$@"
