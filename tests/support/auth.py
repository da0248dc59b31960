"""The test users and the secrets the test settings use.

`auth = await auth_for(app)` creates (once per app) the users `test-viewer`, `test-operator`
and `test-admin` (password `TEST_USER_PASSWORD`), then `auth.headers("operator")` ->
`{"Authorization": "Bearer <access token>"}` and `auth.token("viewer")` -> the token alone (for
`?token=`). The fixtures `auth_headers(role)` and `ws_token(role)` in tests/conftest.py wrap it.
Leave these three users alone (no password/role changes): make your own users for that.
"""

from __future__ import annotations

from fastapi import FastAPI

TEST_JWT_SECRET = "test-secret-" + "x" * 40
TEST_USER_PASSWORD = "test-password-123"
TEST_METRICS_TOKEN = "test-metrics-token-0123456789"  # the integration app's METRICS_TOKEN
_test_password_hash: dict[str, str] = {}


class AuthHelper:
    def __init__(self, app: FastAPI, users: dict[str, tuple[int, int]]) -> None:
        self.app = app
        self.users = users  # role -> (user id, token version)

    def token(self, role: str = "admin") -> str:
        from app.core.security import create_token

        user_id, version = self.users[role]
        token, _ = create_token(
            self.app.state.settings, user_id=user_id, token_version=version, kind="access"
        )
        return token

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    @staticmethod
    def username(role: str) -> str:
        return f"test-{role}"


async def auth_for(app: FastAPI) -> AuthHelper:
    """Create (once per app) the three test users and return the helper."""
    from app.core.security import Role, hash_password
    from app.db import crud

    existing: AuthHelper | None = getattr(app.state, "test_auth", None)
    if existing is not None:
        return existing
    if "hash" not in _test_password_hash:
        _test_password_hash["hash"] = await hash_password(TEST_USER_PASSWORD)
    users: dict[str, tuple[int, int]] = {}
    async with app.state.db_sessionmaker() as session:
        for role in Role:
            name = AuthHelper.username(role.value)
            user = await crud.get_user_by_username(session, name)
            if user is None:
                user = await crud.create_user(
                    session, username=name, password_hash=_test_password_hash["hash"], role=role
                )
            users[role.value] = (user.id, user.token_version)
        await session.commit()
    helper = AuthHelper(app, users)
    app.state.test_auth = helper
    return helper
