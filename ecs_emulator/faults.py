"""Failure rehearsal: faults chosen by image tag, or injected one-shot by the admin endpoint."""

from __future__ import annotations

import threading

# ``unhealthy`` fails the ELB health checks of a load-balanced service's tasks (see
# ``load_balancing.py``); tasks without target groups ignore it.
FAULTS = ("nopull", "crash", "slow", "unhealthy")
# Standalone (RunTask) tasks only: how a one-off test run ends. Services ignore these tags, so
# a test image can also be deployed as a service without failing it.
TEST_VERDICTS = ("testfail", "testhang")

CRASH_REASON = "Essential container in task exited"


def cannot_pull_reason(image: str) -> str:
    """ECS's wording when the image manifest cannot be resolved."""
    ref = image if "/" in image.split(":")[0] else f"docker.io/library/{image}"
    return (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        f"failed to resolve ref {ref}: not found"
    )


def image_tag(image: str) -> str:
    """The tag of ``repo[:port]/name:tag`` (empty when untagged or pinned by digest)."""
    name = image.split("@")[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else ""


def fault_from_images(images: list[str], kinds: tuple[str, ...] = FAULTS) -> tuple[str, str] | None:
    """(fault, image) for the first container whose tag starts with one of ``kinds``."""
    for image in images:
        tag = image_tag(image)
        for fault in kinds:
            if tag.startswith(fault):
                return fault, image
    return None


class InjectedFaults:
    """One-shot faults waiting for the next deployment of a named service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str | None, str], str] = {}

    def inject(self, service: str, fault: str, cluster: str | None = None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        with self._lock:
            self._pending[(cluster, service)] = fault

    def take(self, cluster: str, service: str) -> str | None:
        """Consume the fault for this service (cluster-specific first)."""
        with self._lock:
            fault = self._pending.pop((cluster, service), None)
            return fault or self._pending.pop((None, service), None)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
