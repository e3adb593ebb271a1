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
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_canary.egress import CREDENTIAL_RANGES, egress_refusal
from ecs_canary.gate import Gate, GateRefusal
from ecs_canary.models import (
    MAX_BY_LENGTH,
    MAX_REASON_LENGTH,
    DecisionInput,
    DeploymentRequest,
    VerificationSettings,
)
from ecs_canary.policy import EgressPolicy, PlatformPolicy
from ecs_canary.strict import MAX_NESTING
from tests.helpers.fuzzing import VALIDATION_SECONDS, examples, nested, valid_or_clearly_refused
from workflows.decisions import DecisionDesk

FUZZ = settings(
    max_examples=examples(200),
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
    requests = [
        json.loads(path.read_text())
        for path in sorted(EXAMPLES.glob("*.json"))
        if path.name != "train.json"  # a release train, not a deployment request
    ]
    full = copy.deepcopy(REQUEST)
    full["verification"].update(approvers=["alice", "bob"], min_approvals=2, alarms=["myapp-5xx"])
    full["notifications"] = [
        {"url": "https://hooks.example.com/T0/B0/secret", "format": "slack"},
        {"url_env": "ECS_CANARY_WEBHOOK_DEPLOYS", "events": ["gate_open", "finished"]},
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


# A name and a reason as long as a decision may carry (longer ones are refused as invalid).
LONGEST_NAMES = st.text(min_size=MAX_BY_LENGTH - 8, max_size=MAX_BY_LENGTH)
LONGEST_REASONS = st.text(min_size=MAX_REASON_LENGTH - 8, max_size=MAX_REASON_LENGTH)


@FUZZ
@given(
    approvers=st.lists(PEOPLE, max_size=5),
    by=st.one_of(st.none(), PEOPLE, LONGEST_NAMES),
    reason=st.one_of(st.none(), ODD_TEXT, LONGEST_REASONS),
    action=st.sampled_from(["approve", "reject"]),
    phase=PHASES,
    approvals=st.lists(PEOPLE, max_size=2),
)
def test_the_gate_answers_any_decision_with_a_refusal_or_lets_it_through(
    approvers, by, reason, action, phase, approvals
):
    """Odd names never get past `approvers`, and nothing but GateRefusal comes out."""
    settings = VerificationSettings(approvers=approvers)
    # As the desk hands it over, which may be a name the model would refuse (a refused
    # payload's `by` is recorded as it was claimed).
    decision = DecisionInput.model_construct(by=by, reason=reason, token=None)
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
    gate = _gate(VerificationSettings(approvers=approvers), phase, [])
    desk = DecisionDesk(gate)
    started = time.monotonic()
    try:
        desk.check(action, payload)
    except GateRefusal as refusal:
        assert str(refusal).strip()
    assert time.monotonic() - started < VALIDATION_SECONDS


@FUZZ
@given(by=HUGE_TEXT, reason=HUGE_TEXT)
def test_names_and_reasons_beyond_their_bounds_are_refused(by, reason):
    assert valid_or_clearly_refused(DecisionInput, {"by": by}) is None
    assert valid_or_clearly_refused(DecisionInput, {"reason": reason}) is None


POLICY_FIELDS = sorted(PlatformPolicy.model_fields)
# Address ranges (CIDR text) around any address, metadata ranges included.
NETWORKS = st.one_of(
    st.sampled_from(["169.254.169.254/32", "169.254.0.0/16", "fd00:ec2::254/128", "::/0"]),
    st.ip_addresses().flatmap(
        lambda address: st.integers(0, address.max_prefixlen).map(
            lambda prefix: str(ip_network(f"{address}/{prefix}", strict=False))
        )
    ),
)
POLICY_DOCUMENTS = st.one_of(
    PYTHON_VALUES,
    st.dictionaries(
        st.one_of(st.sampled_from(POLICY_FIELDS), ODD_TEXT),
        st.one_of(
            PYTHON_VALUES,
            st.lists(st.one_of(NETWORKS, ODD_TEXT), max_size=3).map(
                lambda ranges: {"allow": ranges, "deny": ranges[::-1]}
            ),
        ),
        max_size=4,
    ),
)
POLICIES = st.builds(
    PlatformPolicy,
    require_approval=st.booleans(),
    min_approvals=st.integers(1, 3),
    allow_timeout_approve=st.booleans(),
    require_signed_decisions=st.booleans(),
    approvers=st.sampled_from([[], ["alice", "bob", "carol"]]),
)


@FUZZ
@given(POLICY_DOCUMENTS)
def test_any_policy_document_is_valid_or_refused_clearly(value):
    valid_or_clearly_refused(PlatformPolicy, value)


@FUZZ
@given(
    policy=POLICIES,
    require_approval=st.booleans(),
    min_approvals=st.integers(1, 3),
    on_timeout=st.sampled_from(["reject", "approve"]),
    approvers=st.sampled_from([[], ["alice", "bob", "carol"], ["mallory", "alice", "bob"]]),
)
def test_a_request_below_the_policy_is_refused_naming_the_key(
    policy, require_approval, min_approvals, on_timeout, approvers
):
    verification = VerificationSettings(
        require_approval=require_approval,
        min_approvals=min_approvals,
        on_timeout=on_timeout,
        approvers=approvers,
    )
    refusal = policy.request_refusal(verification)
    below = {
        "require_approval": policy.require_approval and not require_approval,
        "min_approvals": min_approvals < policy.min_approvals,
        "allow_timeout_approve": not policy.allow_timeout_approve and on_timeout == "approve",
        "approvers": bool(policy.approvers) and not set(approvers) <= set(policy.approvers),
    }
    assert (refusal is None) == (not any(below.values()))
    if refusal is not None:
        first = next(key for key, is_below in below.items() if is_below)
        assert f"({first}" in refusal and "ECS_CANARY_POLICY_FILE" in refusal


@FUZZ
@given(st.ip_addresses(), st.lists(NETWORKS, max_size=2))
def test_egress_is_refused_where_credentials_live_unless_allowed(address, allowed):
    refusal = egress_refusal(address, EgressPolicy(allow=allowed))
    plain = address.ipv4_mapped if getattr(address, "ipv4_mapped", None) else address
    where_credentials_live = any(plain in network for network in CREDENTIAL_RANGES)
    let_through = any(plain in ip_network(cidr) for cidr in allowed)
    assert (refusal is not None) == (where_credentials_live and not let_through)
