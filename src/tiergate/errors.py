"""The one error hierarchy of tiergate.

Every failure that can reach a client is a `TiergateError`; the ingress maps it to the
OpenAI error envelope in one place (`tiergate.ingress.errors`). Lower-layer errors
(the upstream HTTP client, JSON, database drivers) are mapped to the most specific class
at the boundary where they happen.
"""

from __future__ import annotations


class TiergateError(Exception):
    """Base class: carries the HTTP status and the OpenAI error `type` / `code`."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


# -- the client's mistakes (4xx): never fail over, never spend ------------------------------


class ClientError(TiergateError):
    """A problem with the request itself."""

    status = 400
    error_type = "invalid_request_error"


class BadRequest(ClientError):
    """The request is malformed or asks for something impossible."""


class AuthenticationFailed(ClientError):
    """No key, an unknown key or a revoked key."""

    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    """The key is valid but may not use this model, tier or route."""

    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class NotFound(ClientError):
    """Unknown model, route, tier or path."""

    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(ClientError):
    """The body is over the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    """The body is not JSON."""

    status = 415
    code = "unsupported_media_type"


class RateLimited(ClientError):
    """The key is over its requests or tokens per minute."""

    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(ClientError):
    """The key's or route's budget cannot cover the request."""

    status = 429
    error_type = "insufficient_quota"
    code = "budget_exceeded"


class ClientDisconnected(ClientError):
    """The client closed the connection before the answer; nobody reads this response."""

    status = 499  # nginx's "client closed request": the ledger's word for it
    code = "client_closed_request"


class ConfigError(TiergateError):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


# -- upstream failures: may fail over -------------------------------------------------------


class UpstreamError(TiergateError):
    """An upstream provider failed; `retryable` says whether another attempt may succeed."""

    status = 502
    error_type = "upstream_error"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        body: bytes | None = None,
    ):
        super().__init__(message)
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.body = body
        if retryable is not None:
            self.retryable = retryable


class UpstreamTimeout(UpstreamError):
    """Connect, first-byte, inactivity or total deadline passed."""

    status = 504
    error_type = "timeout"


class UpstreamRejected(UpstreamError):
    """The upstream said the request itself is bad (400/404/422): passed to the client as is."""

    retryable = False

    @property
    def client_status(self) -> int:
        return self.upstream_status or 400


class UpstreamAuthFailed(UpstreamError):
    """The upstream refused our credential (401/403): that credential is dead, try others."""

    retryable = False


class NoCandidates(TiergateError):
    """Every candidate was filtered out or is cooling down."""

    status = 503
    error_type = "service_unavailable"
    code = "no_available_model"


class AllAttemptsFailed(TiergateError):
    """Every candidate failed; `errors` holds each attempt's error in order."""

    status = 502
    error_type = "upstream_error"
    code = "all_upstreams_failed"

    def __init__(
        self, errors: list[UpstreamError], tried: list[tuple[str, int | None]] | None = None
    ):
        last = errors[-1] if errors else None
        detail = f": last error: {last.message}" if last else ""
        super().__init__(f"all {len(errors)} attempts failed{detail}")
        self.errors = errors
        # (deployment id, upstream status) of every attempt, for the ledger
        self.tried = tried or []
        self.retry_after: float | None = None
        if last is not None and isinstance(last, UpstreamTimeout):
            self.status = 504
        statuses = {e.upstream_status for e in errors}
        # When every attempt was throttled or overloaded, say so: clients back off on 429/503
        # and not on a generic 502.
        if statuses == {429}:
            self.status, self.error_type, self.code = (
                429,
                "rate_limit_error",
                "upstream_rate_limited",
            )
            waits = [e.retry_after for e in errors if e.retry_after is not None]
            self.retry_after = min(waits) if waits else None
        elif statuses and statuses <= {503, 529}:
            self.status, self.error_type, self.code = 503, "overloaded_error", "upstream_overloaded"
