"""Generated input for the deployment request and the decision payloads.

The workflow validates both inside a workflow task. There, any exception other than pydantic's
ValidationError fails the task, and Temporal retries it forever: a RecursionError, an
OverflowError, or a check that takes seconds. So every input generated here must be either
valid or refused with a ValidationError whose message says where and why. The gate's rules in
turn answer every valid decision with a GateRefusal or let it through.

hypothesis runs derandomized without its example database. A run is then the same on every
machine, and CI never fails on an example that another run happened to find.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_canary.gate import Gate, GateRefusal
from ecs_canary.models import DecisionInput, DeploymentRequest, VerificationSettings
from ecs_canary.strict import MAX_NESTING
from tests.helpers.fuzzing import VALIDATION_SECONDS, nested, valid_or_clearly_refused
from workflows.decisions import DecisionDesk

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REQUEST = json.loads((EXAMPLES / "request.json").read_text())


def _examples() -> list[dict[str, Any]]:
    """Every example request, and one that also has notifications, approvers and alarms:
    valid requests whose every part the mutations can reach."""
    requests = [json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]
    full = copy.deepcopy(REQUEST)
    full["verification"].update(approvers=["alice", "bob"], min_approvals=2, alarms=["myapp-5xx"])
    full["notifications"] = [
        {"url": "https://hooks.example.com/T0/B0/secret", "format": "slack"},
        {"url_env": "DEPLOY_WEBHOOK_URL", "events": ["gate_open", "finished"]},
    ]
    return [*requests, full]


VALID = _examples()


# --- JSON-ish values --------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\u202eevil",  # right-to-left override
        "аlice",  # Cyrillic а
        "Ａｌｉｃｅ",  # fullwidth
        "e\u0301",  # a combining accent
        "🚀" * 3,
        "null",
        "1e309",
        "${jndi:ldap://x}",
        "'; DROP TABLE deployments; --",
        "../../etc/passwd",
        "http://",
        "arn:aws:ecs:us-east-1:123456789012:service/ecs-canary/myapp",
    ]
)


def _huge(char: str, count: int) -> str:
    return char * count


# A lone surrogate: Python takes one from "\ud800" in JSON, Temporal's decoder refuses it.
SURROGATE = st.just("\ud800")
HUGE_TEXT = st.builds(
    _huge, st.sampled_from(["a", "é", "🚀", "\x00", " ", "-"]), st.integers(10_000, 100_000)
)


# Around the bound, past Temporal's JSON decoding (200) and past Python's recursion limit.
DEPTHS = st.sampled_from([MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 199, 250, 1_100, 3_000])
DEEP = st.builds(nested, DEPTHS, st.sampled_from(["list", "dict"]))
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 0.0, -0.0, 1e-300, 1e300, 1.5]),
)
FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _trees(
    floats: st.SearchStrategy[float], texts: st.SearchStrategy[str]
) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), NUMBERS, floats, st.text(max_size=20), texts)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.text(max_size=8), texts), inner, max_size=4),
        ),
        max_leaves=10,
    )


# What Temporal's JSON payloads can carry (the temporal CLI's and the SDK's input; 1e400 would
# arrive as infinity, see the request durations below), and what Python can hand over too.
JSON_TREES = _trees(FINITE_FLOATS, st.one_of(ODD_TEXT, HUGE_TEXT))
JSON_VALUES = st.one_of(JSON_TREES, DEEP)
PYTHON_VALUES = st.one_of(_trees(st.floats(), st.one_of(ODD_TEXT, HUGE_TEXT, SURROGATE)), DEEP)


# --- Mutations of a valid request -------------------------------------------------------------


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path into `value` (dict keys and list indexes), the root included."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        found.append(path)
        if isinstance(node, dict):
            stack.extend((path + (key,), child) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((path + (index,), child) for index, child in enumerate(node))
    return sorted(found, key=repr)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated_requests(draw: st.DrawFn) -> Any:
    """A valid request changed at one random place: replaced (by any value, or by a deeply
    nested one), removed, wrapped, repeated, or given an extra field."""
    request = copy.deepcopy(draw(st.sampled_from(VALID)))
    path = draw(st.sampled_from(_paths(request)))
    how = draw(st.sampled_from(["replace", "deepen", "remove", "wrap", "repeat", "extra"]))
    if not path:
        return draw(JSON_VALUES) if how == "replace" else [request]
    parent, key = _at(request, path[:-1]), path[-1]
    if how in ("replace", "deepen"):
        parent[key] = draw(JSON_VALUES if how == "replace" else DEEP)
    elif how == "remove":
        del parent[key]
    elif how == "wrap":
        parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    elif how == "repeat" and isinstance(parent[key], list):
        parent[key] = parent[key] * draw(st.integers(2, 50))
    elif isinstance(parent[key], dict):
        parent[key][draw(st.one_of(st.text(max_size=12), ODD_TEXT))] = draw(JSON_VALUES)
    else:
        parent[key] = draw(JSON_VALUES)
    return request


# --- The property ---------------------------------------------------------------------------


@FUZZ
@given(PYTHON_VALUES)
def test_any_value_as_a_request_is_valid_or_refused_clearly(value):
    valid_or_clearly_refused(DeploymentRequest, value)


REQUEST_FIELDS = sorted(DeploymentRequest.model_fields)


@FUZZ
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(REQUEST_FIELDS), st.text(max_size=12), ODD_TEXT),
        JSON_VALUES,
        max_size=6,
    )
)
def test_request_fields_with_any_values_are_valid_or_refused_clearly(value):
    """Missing fields, unknown fields, and every field with a value of any type."""
    valid_or_clearly_refused(DeploymentRequest, value)


@FUZZ
@given(mutated_requests())
def test_a_valid_request_changed_anywhere_is_valid_or_refused_clearly(value):
    """A change that keeps the request valid must keep it a request the workflow can pass on:
    it survives the JSON round trip of Temporal's payloads."""
    request = valid_or_clearly_refused(DeploymentRequest, value)
    if request is not None:
        again = DeploymentRequest.model_validate_json(request.model_dump_json())
        assert again == request


DECISION_FIELDS = ["by", "reason", "token", "role", ""]


def _token(header: str, claims: str, signature: str) -> str:
    """A JWT's shape (base64url parts joined by dots) around any header and claims."""

    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}.{signature}"


TOKENS = st.one_of(
    st.text(max_size=40),
    st.builds(
        _token,
        st.one_of(
            st.sampled_from(['{"alg": "EdDSA", "kid": "k1"}', '{"alg": "none"}', "[]", "{"]),
            JSON_TREES.map(json.dumps),
            st.integers(1, 3_000).map(lambda depth: "[" * depth + "]" * depth),
        ),
        st.one_of(st.just("{}"), JSON_TREES.map(json.dumps)),
        st.text(alphabet="AZaz09-_.", max_size=20),
    ),
)
DECISION_PAYLOADS = st.one_of(
    PYTHON_VALUES,
    st.dictionaries(
        st.one_of(st.sampled_from(DECISION_FIELDS), ODD_TEXT, SURROGATE),
        st.one_of(ODD_TEXT, SURROGATE, HUGE_TEXT, TOKENS, PYTHON_VALUES),
        max_size=4,
    ),
)


@FUZZ
@given(DECISION_PAYLOADS)
def test_any_decision_payload_is_valid_or_refused_clearly(value):
    valid_or_clearly_refused(DecisionInput, value)


def _gate(settings: VerificationSettings, phase: str, approvals: list[str]) -> Gate:
    gate = Gate()
    gate.configure(settings)
    if phase in ("baking", "verifying", "analysing", "open", "closed"):
        gate.start_bake(NOW)
    if phase in ("verifying", "analysing", "open", "closed"):
        gate.await_steps()
    if phase in ("analysing", "open", "closed"):
        gate.await_analysis()
    if phase in ("open", "closed"):
        gate.open(NOW)
        gate.approvals.extend(approvals)
    if phase == "closed":
        gate.close()
    return gate


PHASES = st.sampled_from(
    ["waiting_for_canary", "baking", "verifying", "analysing", "open", "closed"]
)
PEOPLE = st.one_of(
    ODD_TEXT, SURROGATE, st.text(max_size=12), st.sampled_from(["alice", "anonymous"])
)


@FUZZ
@given(
    approvers=st.lists(PEOPLE, max_size=5),
    by=st.one_of(st.none(), PEOPLE, HUGE_TEXT),
    reason=st.one_of(st.none(), ODD_TEXT, HUGE_TEXT),
    action=st.sampled_from(["approve", "reject"]),
    phase=PHASES,
    approvals=st.lists(PEOPLE, max_size=2),
)
def test_the_gate_answers_any_decision_with_a_refusal_or_lets_it_through(
    approvers, by, reason, action, phase, approvals
):
    """Odd names never get past `approvers`, and nothing but GateRefusal comes out."""
    settings = VerificationSettings(approvers=approvers)
    decision = DecisionInput(by=by, reason=reason)
    gate = _gate(settings, phase, approvals)
    try:
        gate.check(action, decision)
    except GateRefusal as refusal:
        assert str(refusal).strip()
        refused = True
    else:
        refused = False
        assert not approvers or (by or "anonymous") in approvers
    assert gate.offer(action, decision, "signal", NOW) is not refused
    assert gate.attempts[-1].accepted is not refused


@FUZZ
@given(
    payload=DECISION_PAYLOADS,
    action=st.sampled_from(["approve", "reject"]),
    phase=PHASES,
    approvers=st.lists(PEOPLE, max_size=3),
)
def test_the_update_validator_answers_any_payload_with_a_refusal_or_lets_it_through(
    payload, action, phase, approvers
):
    """The approve/reject Update validator, as the workflow runs it on the raw payload."""
    desk = DecisionDesk(_gate(VerificationSettings(approvers=approvers), phase, []), "wf", _quiet)
    started = time.monotonic()
    try:
        desk.check(action, payload)
    except GateRefusal as refusal:
        assert str(refusal).strip()
    assert time.monotonic() - started < VALIDATION_SECONDS


def _quiet() -> None:
    """The desk's `changed` callback, which the validator never calls."""
