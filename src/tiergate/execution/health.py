"""Per-deployment health: a circuit breaker (closed → open → half-open probe) and observed
latency / error rates that the latency policy reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class DeploymentHealth:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    dead_credential: bool = False
    latency_ewma_ms: float | None = None
    error_ewma: float = 0.0
    requests: int = 0

    @property
    def state(self) -> str:
        if self.open_until == 0.0:
            return "closed"
        return "half_open" if self.probing else "open"


# Told when a circuit opens (seconds it stays open, dead credential) or closes (0.0, False):
# `tiergate.cluster.board` publishes these so that other instances skip the deployment too.
CircuitListener = Callable[[str, float, bool], None]


class HealthBoard:
    """Circuit breakers for every deployment, local to this process (shared between
    instances by `tiergate.cluster.board`, through `listeners` and `adopt`)."""

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.dead_credential_cooldown = max(cooldown * 30, 300.0)
        self._clock = clock
        self._health: dict[str, DeploymentHealth] = {}
        self.listeners: list[CircuitListener] = []

    def get(self, deployment_id: str) -> DeploymentHealth:
        health = self._health.get(deployment_id)
        if health is None:
            health = self._health[deployment_id] = DeploymentHealth()
        return health

    def available(self, deployment_id: str) -> bool:
        """True when a request may go there; lets exactly one probe through after cooldown."""
        health = self._health.get(deployment_id)
        if health is None or health.open_until == 0.0:
            return True
        if health.probing or self._clock() < health.open_until:
            return False
        health.probing = True  # half-open: this caller is the probe
        return True

    def cooling(self, deployment_id: str) -> bool:
        """True while the deployment is out (does not take the probe slot)."""
        health = self._health.get(deployment_id)
        if health is None or health.open_until == 0.0:
            return False
        return health.probing or self._clock() < health.open_until

    def success(self, deployment_id: str, latency_ms: float) -> None:
        health = self.get(deployment_id)
        if health.open_until != 0.0:
            self._tell(deployment_id, 0.0, False)
        health.failures = 0
        health.open_until = 0.0
        health.probing = False
        health.dead_credential = False
        health.requests += 1
        health.error_ewma *= 0.9
        prev = health.latency_ewma_ms
        health.latency_ewma_ms = latency_ms if prev is None else prev * 0.8 + latency_ms * 0.2

    def failure(self, deployment_id: str, *, dead_credential: bool = False) -> None:
        health = self.get(deployment_id)
        health.failures += 1
        health.requests += 1
        health.error_ewma = health.error_ewma * 0.9 + 0.1
        if dead_credential:
            health.dead_credential = True
            health.open_until = self._clock() + self.dead_credential_cooldown
            health.probing = False
            self._tell(deployment_id, self.dead_credential_cooldown, True)
        elif health.probing or health.failures >= self.failure_threshold:
            health.open_until = self._clock() + self.cooldown
            health.probing = False
            self._tell(deployment_id, self.cooldown, False)

    def _tell(self, deployment_id: str, open_for: float, dead_credential: bool) -> None:
        for listener in self.listeners:
            listener(deployment_id, open_for, dead_credential)

    def adopt(self, deployment_id: str, open_for: float, dead_credential: bool = False) -> None:
        """Take another instance's verdict: open for `open_for` seconds more, or (0) closed.
        Listeners are not told: the verdict came from them."""
        health = self.get(deployment_id)
        health.probing = False
        if open_for > 0:
            health.open_until = self._clock() + open_for
            health.dead_credential = dead_credential
        else:
            health.open_until = 0.0
            health.failures = 0
            health.dead_credential = False

    def release_probe(self, deployment_id: str) -> None:
        """A probe that ended without a verdict (e.g. the client's own 4xx) frees the slot."""
        health = self._health.get(deployment_id)
        if health is not None and health.probing:
            health.probing = False
            health.open_until = self._clock()

    def snapshot(self) -> dict[str, DeploymentHealth]:
        return dict(self._health)
