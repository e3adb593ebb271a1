"""moto's response serializer, with the attribute names it tries remembered.

moto serializes every response by walking the botocore shape of the answer and, for each
member of each object, asking its attribute picker which attribute names to try: the picker
builds six alias providers and asks each one, then adds each name's snake_case form. The
names depend only on the object's class, the member and the shapes around it, never on the
values, yet moto works them out again for every member of every service of every
DescribeServices. Under a release train of 300 services (py-spy on the emulator) moto's
serializer was nearly half of the emulator's CPU and its picker over a quarter; a
DescribeServices of ten services cost a quarter less CPU with the names remembered.
``install`` makes the picker look the names up once per kind of member; the values are still
read from each object, in the same order.

Split out of ``moto_internals`` like ``moto_cloudwatch``; the moto names used here are checked
by ``tests/e2e/test_emulator_moto_internals.py``.
"""

from __future__ import annotations

from typing import Any

from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

from .moto_internals import replace_once

# Replaced on moto's XFormedAttributePicker (checked by the test).
REPLACED_PICKER_METHOD = "get_possible_keys"
_ORIGINAL = XFormedAttributePicker.get_possible_keys
_INSTALLED = "_ecs_emulator_remembers_keys"

# (picker class, alias providers, service, object class, member, shape, its type, parent
# shape) -> the attribute names moto tries, in its order.
_known: dict[tuple[Any, ...], tuple[str, ...]] = {}


def install() -> None:
    """Remember the picker's names from now on (process-wide, like moto's state; installing
    twice changes nothing)."""
    replace_once(XFormedAttributePicker, REPLACED_PICKER_METHOD, _remembered_keys, _INSTALLED)


def _remembered_keys(
    picker: XFormedAttributePicker, context: AttributePickerContext
) -> tuple[str, ...]:
    """The names moto's own method yields for `context`: every alias provider decides from the
    object's class (its name, its `Meta`), the member's name and the shapes (the member's, its
    serialization name, its parent's name and members), all fixed by this key."""
    shape = context.shape
    parent = getattr(shape, "parent", None)
    key = (
        type(picker),
        tuple(picker.alias_providers),
        getattr(context.service_model, "service_name", None),
        type(context.obj),
        context.key,
        getattr(shape, "name", None),
        getattr(shape, "type_name", None),
        getattr(parent, "name", None),
    )
    names = _known.get(key)
    if names is None:
        names = _known[key] = tuple(_ORIGINAL(picker, context))
    return names
