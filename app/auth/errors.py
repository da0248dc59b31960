"""The auth domain's errors: each carries its HTTP status, `code` and headers (`AppError`), so
the one error handler answers them in the contract's shape."""

from __future__ import annotations

from app.errors import AppError, BadRequestError, ConflictError, NotFoundError

INVALID_CREDENTIALS = "Incorrect username or password"


class AuthenticationError(AppError):
    """401: no token, a refused token, or a user who lost access. Carries the challenge."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "Not authenticated", *, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.headers = {"WWW-Authenticate": "Bearer"}


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class PermissionDeniedError(AppError):
    status_code = 403
    code = "forbidden"


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class RateLimitUnavailableError(AppError):
    """The shared rate-limit storage is down: password checks are refused (fail closed)."""

    status_code = 503
    code = "rate_limit_unavailable"
    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            "Logins are paused: the rate-limit store cannot be reached; "
            f"retry in {self.retry_after} s"
        )
        self.headers = {"Retry-After": str(self.retry_after)}


class UsernameTakenError(ConflictError):
    code = "username_taken"


class LastAdminError(ConflictError):
    code = "last_admin"

    def __init__(self) -> None:
        super().__init__("The last active admin cannot be deleted, disabled or demoted")


class WrongPasswordError(BadRequestError):
    code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("The current password is incorrect")


class UserNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("User not found")


class BindingNotFoundError(NotFoundError):
    pass


class TokenNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Token not found")
