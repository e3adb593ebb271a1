"""moto's JSON rendering of an ECS service, remembered while the service stays the same.

Every DescribeServices renders each service it names through moto's serializer, which walks
the botocore shape member by member (`moto_serializer`: the names each member is read from).
During a release train most services are described again and again while nothing about them
changes (a wait polls every quarter second while its tasks take seconds to start), and the
emulator's own CreateService, UpdateService and DeleteService describe the service twice more.
Rendering was half of the emulator's CPU for a DescribeServices of ten services (py-spy).

A moto `Service` holds plain data only (strings, numbers, lists and dicts of them, datetimes;
its `arn` is derived from them), so the `repr` of its attributes, a twentieth of the cost of a
rendering, says whether anything moto would render changed since the last time. The rendering
also depends on where the service sits in the response and on the response's transformers
(DescribeServices leaves `tags` out unless asked): both are part of what is remembered. A
rendering is shared, never changed: moto turns the response into JSON at once.

Split out of ``moto_internals`` like ``moto_serializer``;
``tests/e2e/test_emulator_service_render.py`` checks the renderings against moto's own.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.serialize import BaseJSONSerializer
from moto.ecs.models import Service

from .moto_internals import replace_once

# Replaced on moto's BaseJSONSerializer (checked by the test).
REPLACED_SERIALIZER_METHOD = "_serialize_type_structure"
_ORIGINAL = BaseJSONSerializer._serialize_type_structure
_INSTALLED = "_ecs_emulator_remembers_services"
# Renderings kept at most (one per service and place in a response); all forgotten beyond.
_MOST = 20_000

# id(service) and its place -> (the service's attributes' repr, the rendering).
_rendered: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
_lock = threading.Lock()


def install() -> None:
    """Remember services' renderings from now on (process-wide, like moto's state; installing
    twice changes nothing)."""
    replace_once(BaseJSONSerializer, REPLACED_SERIALIZER_METHOD, _remembered_structure, _INSTALLED)


def forget() -> None:
    """Forget every rendering (the emulator's reset: moto's objects are new)."""
    with _lock:
        _rendered.clear()


def _remembered_structure(
    serializer: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
) -> None:
    """moto's own method, but an ECS service whose attributes did not change since it was last
    rendered at the same place of the same kind of response gets that rendering again."""
    if type(value) is not Service or not key:
        _ORIGINAL(serializer, serialized, value, shape, key)
        return
    place = (id(value), tuple(serializer.path), _transformers(serializer))
    state = repr(vars(value))
    with _lock:
        known = _rendered.get(place)
    if known is not None and known[0] == state:
        serialized.update(known[1])
        return
    rendering: dict[str, Any] = {}
    _ORIGINAL(serializer, rendering, value, shape, key)
    with _lock:
        if len(_rendered) >= _MOST:
            _rendered.clear()
        _rendered[place] = (state, rendering)
    serialized.update(rendering)


def _transformers(serializer: BaseJSONSerializer) -> tuple[tuple[str, Any], ...]:
    """The response's transformers by key path, each by its code (moto makes a new lambda for
    every response that includes a path)."""
    transformers = getattr(serializer._value_picker, "response_transformers", None) or {}
    return tuple(
        (path, getattr(transform, "__code__", transform))
        for path, transform in transformers.items()
    )
