"""The operator's secrets at the door: the admin key (`/admin/*`, the dashboard's data) and
the metrics token (`/metrics`).

Each is compared in constant time (`same_secret`). Wrong secrets are counted per client
address (the peer uvicorn reports; `X-Forwarded-For` counts only from the proxies
uvicorn's `--forwarded-allow-ips` trusts): after too many, that address gets 429 for a
while without its secret being looked at (`tiergate.auth.lockout`), and the lockout is
written to the audit log. A request without any secret is refused but not counted: it
guesses nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tiergate.auth.keys import presented_key, same_secret
from tiergate.errors import AuthenticationFailed, PermissionDenied, RateLimited, TiergateError
from tiergate.ingress.errors import error_response
from tiergate.observability.hub import ADMIN_KEY_ENV, Observability
from tiergate.security.audit import AuditLog

_UNKNOWN_ADDRESS = "unknown"  # no peer address (a Unix socket): all such callers share one


def audit_log(request: Request) -> AuditLog:
    """The app's audit log, opened on first use (`TIERGATE_AUDIT_LOG`)."""
    state = request.app.state
    audit: AuditLog | None = getattr(state, "audit", None)
    if audit is None:
        obs = state.gateway.observability
        secrets = [obs.admin_key, obs.metrics_token] if obs is not None else []
        audit = state.audit = AuditLog.from_env(secrets=secrets)
    return audit


def audited(
    request: Request,
    action: str,
    target: str,
    *,
    actor: str,
    outcome: str = "ok",
    details: dict[str, object] | None = None,
) -> None:
    """Record one event in the audit log, with the caller's address as its source."""
    source = request.client.host if request.client else None
    audit_log(request).record(
        action, target, actor=actor, source=source, outcome=outcome, details=details
    )


def require_admin(request: Request, obs: Observability | None, *, what: str, actor: str) -> None:
    """Raise unless the request carries the admin key; `what` names the door in messages
    ("the admin API"), `actor` in the audit log. A wrong key is audited."""
    admin_key = obs.admin_key if obs is not None else None
    if obs is None or not admin_key:
        raise PermissionDenied(f"{what} is off: set {ADMIN_KEY_ENV} to enable it")
    _check(request, obs, [admin_key], what=f"{what} needs the admin key", actor=actor)


def require_metrics_token(request: Request, obs: Observability) -> None:
    """Raise unless `/metrics` is open or the request carries the metrics token (or the
    admin key). Wrong tokens are counted, not audited one by one: a scraper with a stale
    token would fill the audit log."""
    if not obs.metrics_token:
        return
    accepted = [obs.metrics_token] + ([obs.admin_key] if obs.admin_key else [])
    _check(request, obs, accepted, what="/metrics needs the metrics token", actor=None)


def _check(
    request: Request, obs: Observability, accepted: list[str], *, what: str, actor: str | None
) -> None:
    address = request.client.host if request.client else _UNKNOWN_ADDRESS
    locked_for = obs.lockout.locked_for(address)
    if locked_for:
        raise RateLimited(
            "too many wrong keys from this address; try again later", retry_after=locked_for
        )
    presented = presented_key(request.headers)
    if presented is None:
        raise AuthenticationFailed(what)
    # Every accepted secret is compared, so timing does not say which one matched.
    matches = [same_secret(presented, secret) for secret in accepted]
    if any(matches):
        obs.lockout.succeeded(address)
        return
    path = request.url.path
    if actor is not None:
        audited(request, "admin.login", path, actor=actor, outcome="refused")
    if obs.lockout.failed(address):
        lockout = obs.lockout
        audited(
            request,
            "admin.lockout",
            path,
            actor=actor or "metrics",
            outcome="refused",
            details={
                "failures": lockout.max_failures,
                "window_s": lockout.window,
                "lockout_s": lockout.duration,
            },
        )
    raise AuthenticationFailed("wrong admin key" if actor is not None else "wrong metrics token")


def refusal(exc: TiergateError) -> Response:
    """The error envelope; a 401 also says which scheme to use (`WWW-Authenticate`)."""
    headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc, headers=headers)
