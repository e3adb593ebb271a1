"""Links into the Temporal Web UI, for every process that prints or sends one (the starter,
the demo, a notification).

Temporal's client configuration knows the gRPC address, not where the Web UI is served, so
the base comes from `TEMPORAL_UI_URL`; without it, the local stack's UI on `TEMPORAL_UI_PORT`
(what `make up` starts; the Makefile exports the port), so a second stack on other ports still
gets links that open.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

DEFAULT_UI_PORT = "8233"


def ui_url() -> str:
    """The Web UI's base URL, without a trailing slash."""
    configured = os.environ.get("TEMPORAL_UI_URL")
    if configured:
        return configured.rstrip("/")
    return f"http://localhost:{os.environ.get('TEMPORAL_UI_PORT') or DEFAULT_UI_PORT}"


def _workflows(namespace: str) -> str:
    return f"{ui_url()}/namespaces/{quote(namespace, safe='')}/workflows"


def run_link(namespace: str, workflow_id: str, run_id: str | None = None) -> str:
    """A deployment's page: its latest run, or one run's history."""
    link = f"{_workflows(namespace)}/{quote(workflow_id, safe='')}"
    return f"{link}/{quote(run_id, safe='')}/history" if run_id else link


def list_link(namespace: str, query: str) -> str:
    """The run list filtered by a visibility query, encoded as the UI's own list page writes
    it (`?query=` form-encoded, as URLSearchParams does), so the filter shows in its search
    box and can be edited there."""
    return f"{_workflows(namespace)}?{urlencode({'query': query})}"
