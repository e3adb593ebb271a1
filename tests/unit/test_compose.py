"""Static checks of the container setup: docker-compose.yml, Dockerfile and deploy/.

No Docker engine, Temporal server or network is needed: the compose file is validated
against the compose-spec schema vendored in check-jsonschema, and every environment name
it hands to the project's own images is checked against what the code actually reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import botocore
import pytest
import temporalio.bridge.temporal_sdk_bridge as sdk_bridge
import yaml

from ecs_canary import telemetry
from tests.helpers import BIN, ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SEARCH_ATTRIBUTE_SCRIPT = ROOT / "deploy" / "temporal" / "register-search-attributes.sh"
CHECK_JSONSCHEMA = BIN / "check-jsonschema"

# Where the project's Python sources live; scanned at test time for "NAME" literals: what
# pyproject.toml installs (its packages and modules: the worker, the starter and the cli
# package behind it), and the emulator (a dev tool run from the repository).
_INSTALLED = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
CODE_PATHS = [
    # Subpackages ("activities.steps") lie inside their top-level package's folder.
    *dict.fromkeys(package.split(".")[0] for package in _INSTALLED["packages"]),
    *(f"{module}.py" for module in _INSTALLED["py-modules"]),
    "ecs_emulator",
]

# Names temporalio.envconfig reads (ClientConfigProfile.load / ClientConfig.load). The SDK
# resolves them in its Rust bridge, so there is no Python list to import; the test below
# checks each still occurs in the installed bridge binary, so an SDK upgrade that renames
# one fails here instead of silently ignoring the setting.
TEMPORAL_ENVCONFIG_NAMES = frozenset(
    {
        "TEMPORAL_CONFIG_FILE",
        "TEMPORAL_PROFILE",
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_CERT_DATA",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_DATA",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
        "TEMPORAL_CODEC_ENDPOINT",
        "TEMPORAL_CODEC_AUTH",
    }
)
TEMPORAL_GRPC_META_PREFIX = "TEMPORAL_GRPC_META_"

SEARCH_ATTRIBUTES = {"EcsCluster", "EcsService", "DeploymentStage", "DeploymentOutcome"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _environment(service: dict) -> dict[str, str | None]:
    # Compose accepts both a mapping and a list of NAME=value / bare NAME entries.
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in env:
        name, sep, value = str(item).partition("=")
        result[name] = value if sep else None
    return result


def _project_services(compose: dict) -> dict[str, dict]:
    """Services built from the project's own Dockerfile (the worker and the emulator)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "build" in svc and _build_dockerfile(svc) == DOCKERFILE
    }


def _build_dockerfile(service: dict) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return (ROOT / build / "Dockerfile").resolve()
    return (ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()


def _code_text() -> str:
    parts = []
    for rel in CODE_PATHS:
        path = ROOT / rel
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
        parts.extend(f.read_text(encoding="utf-8") for f in files)
    return "\n".join(parts)


def _read_in_code(name: str, code: str) -> bool:
    """True if the code names `name` as a string literal, or builds it as PREFIX + field.

    The second form covers settings read as `os.environ[ENV_PREFIX + field.upper()]`
    (e.g. "ECS_EMULATOR_" + task_start_seconds): the prefix must be a literal and the
    rest, lower-cased, an identifier in the same code.
    """
    if f'"{name}"' in code or f"'{name}'" in code:
        return True
    for i, char in enumerate(name):
        prefix, rest = name[: i + 1], name[i + 1 :]
        if (
            char == "_"
            and rest
            and (f'"{prefix}"' in code or f"'{prefix}'" in code)
            and re.search(rf"\b{re.escape(rest.lower())}\b", code)
        ):
            return True
    return False


def _dockerfile_stages() -> list[dict]:
    """Each stage's name, base (image or earlier stage) and USER lines, in file order."""
    stages: list[dict] = []
    # Join continuation lines so an instruction is one logical line.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "FROM":
            args = [w for w in words[1:] if not w.startswith("--")]
            name = args[2] if len(args) >= 3 and args[1].upper() == "AS" else None
            stages.append({"base": args[0], "name": name, "users": []})
        elif keyword == "USER":
            stages[-1]["users"].append(words[1])
    return stages


def _effective_user(stages: list[dict], target: str | None) -> str:
    """The USER a stage runs as: its last USER, else its parent stage's, else root."""
    by_name = {s["name"]: s for s in stages if s["name"]}
    stage = by_name[target] if target else stages[-1]
    while True:
        if stage["users"]:
            return stage["users"][-1]
        if stage["base"] not in by_name:
            return "root"  # official base images run as root
        stage = by_name[stage["base"]]


# 1. Schema validation


@pytest.mark.checker
def test_compose_file_matches_compose_spec() -> None:
    result = _run_check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.checker
def test_schema_check_rejects_broken_compose_file(tmp_path: Path, compose: dict) -> None:
    # Proves the check above is not vacuous: the same validator flags a broken copy.
    broken = dict(compose)
    broken["services"] = {**compose["services"]}
    broken["services"]["worker"] = {**compose["services"]["worker"], "ports": "not-a-list"}
    broken["services"]["temporal"] = {**compose["services"]["temporal"], "imagee": "typo:1.0"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))

    result = _run_check_jsonschema(path)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "$.services.worker.ports: 'not-a-list' is not of type 'array'" in output
    assert "imagee" in output


# 2. Pinned images


def test_every_image_is_pinned(compose: dict) -> None:
    for name, svc in compose["services"].items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "image" not in svc:
            continue
        image = svc["image"]
        assert "${" not in image, f"{name}: image tag must not come from the environment"
        repo, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} uses latest"
        # An exact version (x.y..., v-prefixed as Prometheus tags it), not a floating major
        # tag such as postgres:16.
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not an exact version"


def test_dockerfile_base_image_is_pinned() -> None:
    stages = _dockerfile_stages()
    stage_names = {s["name"] for s in stages}
    external = [s["base"] for s in stages if s["base"] not in stage_names]
    assert external, "Dockerfile has no FROM"
    for image in external:
        _, sep, tag = image.rpartition(":")
        assert sep and tag != "latest" and re.match(r"\d+\.\d+\.\d+", tag), image


# 3. Environment names the project's images receive are ones the code reads


def test_sdk_still_reads_documented_temporal_names() -> None:
    binary = Path(sdk_bridge.__file__).read_bytes()
    missing = sorted(
        n
        for n in TEMPORAL_ENVCONFIG_NAMES | {TEMPORAL_GRPC_META_PREFIX}
        if n.encode() not in binary
    )
    assert not missing, f"temporalio no longer mentions {missing}; update TEMPORAL_ENVCONFIG_NAMES"


def test_the_code_scan_covers_every_installed_package() -> None:
    assert {"ecs_canary", "workflows", "activities", "cli", "worker.py", "starter.py"} <= set(
        CODE_PATHS
    )
    assert all((ROOT / path).exists() for path in CODE_PATHS), CODE_PATHS


def test_project_images_only_get_env_names_the_code_reads(compose: dict) -> None:
    services = _project_services(compose)
    assert {"worker", "ecs-emulator"} <= services.keys()
    code = _code_text()
    botocore_text = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(botocore.__file__).parent.glob("*.py")
    )

    unread = []
    for svc_name, svc in services.items():
        for name in _environment(svc):
            if name.startswith("AWS_"):
                # Standard AWS names: must be one botocore (boto3's core) really reads.
                ok = _read_in_code(name, botocore_text) or _read_in_code(name, code)
            elif name.startswith("TEMPORAL_") and (
                name in TEMPORAL_ENVCONFIG_NAMES or name.startswith(TEMPORAL_GRPC_META_PREFIX)
            ):
                ok = True
            else:
                ok = _read_in_code(name, code)
            if not ok:
                unread.append(f"{svc_name}: {name}")
    assert not unread, f"set in docker-compose.yml but read by no code: {unread}"


def test_worker_env_covers_the_settings_contract(compose: dict) -> None:
    env = _environment(compose["services"]["worker"])
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["LOG_FORMAT"] == "json"
    for name in (
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_TASK_QUEUE",
        "ECS_CANARY_MAX_CONCURRENT_ACTIVITIES",
        "ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS",
        "ECS_CANARY_ECS_CALLS_PER_SECOND",
        "ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND",
        "ECS_CANARY_WORKFLOW_SANDBOX",
        "LOG_LEVEL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        assert name in env, name
    # Credentials and endpoint come from the host, never baked into the file.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[name] == f"${{{name}:-}}", name
    assert env["AWS_ENDPOINT_URL"] == "${AWS_ENDPOINT_URL:-}"


def test_project_images_run_as_non_root(compose: dict) -> None:
    stages = _dockerfile_stages()
    for name, svc in _project_services(compose).items():
        assert "user" not in svc, f"{name}: the image's USER decides, do not override it"
        build = svc["build"]
        target = build.get("target") if isinstance(build, dict) else None
        user = _effective_user(stages, target).split(":")[0]
        assert user not in {"root", "0"}, f"{name} (target {target}) runs as {user}"
    # `docker build .` with no target builds the last stage: that must be the worker.
    assert stages[-1]["name"] == "worker"
    assert _effective_user(stages, None).split(":")[0] not in {"root", "0"}


# Services that only start under a profile: the rest start with a plain `docker compose up`.
PROFILED = {
    "ecs-emulator": ["local"],
    "codec-server": ["encryption"],
    "prometheus": ["observability"],
    "grafana": ["observability"],
}


def test_only_the_emulator_the_codec_server_and_observability_wait_for_a_profile(
    compose: dict,
) -> None:
    services = compose["services"]
    assert services["ecs-emulator"]["profiles"] == ["local"]
    for name, service in services.items():
        assert service.get("profiles") == PROFILED.get(name), name


# Encrypted payloads (docs/payload-encryption.md)

SECRET_PATH = "/run/secrets/payload-keys"


def test_the_key_file_reaches_the_worker_and_the_codec_server_only_as_a_secret(
    compose: dict,
) -> None:
    services = compose["services"]
    assert compose["secrets"]["payload-keys"] == {
        "file": "${ECS_CANARY_PAYLOAD_KEY_FILE:-/dev/null}"
    }
    worker, codec = services["worker"], services["codec-server"]
    # The worker encrypts only when the host names a key file.
    assert _environment(worker)["ECS_CANARY_PAYLOAD_KEY_FILE"] == (
        f"${{ECS_CANARY_PAYLOAD_KEY_FILE:+{SECRET_PATH}}}"
    )
    assert _environment(codec)["ECS_CANARY_PAYLOAD_KEY_FILE"] == SECRET_PATH
    users = {name for name, svc in services.items() if "payload-keys" in svc.get("secrets", [])}
    assert users == {"worker", "codec-server"}


def test_the_codec_server_runs_the_worker_image_behind_the_ui(compose: dict) -> None:
    services = compose["services"]
    codec, worker = services["codec-server"], services["worker"]
    assert (codec["image"], codec["build"]) == (worker["image"], worker["build"])
    command = codec["command"]
    assert command[:3] == ["python", "starter.py", "codec-server"]
    assert _read_in_code("codec-server", _code_text())
    port = command[command.index("--port") + 1]
    # Published on the host's loopback only: it decrypts for anyone who can reach it.
    assert codec["ports"] == [f"127.0.0.1:{port}:{port}"]
    origins = [command[i + 1] for i, arg in enumerate(command) if arg == "--cors-origin"]
    ui_port = "${TEMPORAL_UI_PORT:-8080}"
    assert services["temporal-ui"]["ports"] == [f"127.0.0.1:{ui_port}:8080"]
    assert origins == [f"http://127.0.0.1:{ui_port}", f"http://localhost:{ui_port}"]
    # The UI's pages call it from the browser, so the endpoint is the host's address.
    assert _environment(services["temporal-ui"])["TEMPORAL_CODEC_ENDPOINT"] == (
        f"${{ECS_CANARY_PAYLOAD_KEY_FILE:+http://127.0.0.1:{port}}}"
    )


# Search attributes


def test_admin_tools_registers_the_search_attributes(compose: dict) -> None:
    admin = compose["services"]["temporal-admin-tools"]
    env = _environment(admin)
    assert set((env["SEARCH_ATTRIBUTES"] or "").split()) == SEARCH_ATTRIBUTES
    script = SEARCH_ATTRIBUTE_SCRIPT.read_text()
    assert "--type Keyword" in script
    assert "already exists" in script  # re-runs must not fail
    worker_deps = compose["services"]["worker"]["depends_on"]
    assert worker_deps["temporal-admin-tools"]["condition"] == "service_completed_successfully"


def test_search_attributes_are_the_ones_the_code_uses() -> None:
    code = _code_text()
    missing = sorted(n for n in SEARCH_ATTRIBUTES if not _read_in_code(n, code))
    assert not missing, f"registered by compose but used by no code: {missing}"


# Metrics: the `observability` profile (Prometheus and Grafana with the dashboard)

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
PROMTOOL = Path("/usr/bin/promtool")


def _mounts(service: dict) -> dict[str, str]:
    """A service's bind mounts from the repository: container path -> host path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def test_prometheus_scrapes_the_worker_where_it_serves_its_metrics(compose: dict) -> None:
    services = compose["services"]
    worker = _environment(services["worker"])
    # Inside the compose network only: the worker publishes no port.
    assert worker["ECS_CANARY_METRICS_HOST"] == "0.0.0.0" and "ports" not in services["worker"]
    assert _read_in_code("ECS_CANARY_METRICS_HOST", _code_text())
    prometheus = services["prometheus"]
    assert _mounts(prometheus) == {
        "/etc/prometheus/prometheus.yml": "./deploy/prometheus/prometheus.yml"
    }
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": [f"worker:{worker['ECS_CANARY_METRICS_PORT']}"]}]
    assert prometheus["ports"] == ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"]


@pytest.mark.skipif(not PROMTOOL.exists(), reason="no /usr/bin/promtool (Debian's prometheus)")
@pytest.mark.checker
def test_promtool_accepts_the_prometheus_config() -> None:
    checked = subprocess.run(
        [str(PROMTOOL), "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_provisions_the_dashboard_on_the_prometheus(compose: dict) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    (dashboard_path,) = [target for target, source in mounts.items() if source.endswith(".json")]
    assert mounts[dashboard_path] == "./deploy/grafana-dashboard.json"
    assert all((ROOT / source).exists() for source in mounts.values()), mounts
    (datasource,) = yaml.safe_load(
        (GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert (datasource["type"], datasource["url"], datasource["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    (provider,) = yaml.safe_load(
        (GRAFANA_PROVISIONING / "dashboards" / "ecs-canary.yml").read_text()
    )["providers"]
    assert Path(dashboard_path).parent == Path(provider["options"]["path"])
    home = _environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_path
    assert grafana["ports"] == ["127.0.0.1:${GRAFANA_PORT:-3000}:3000"]


def test_the_dashboard_queries_the_metrics_the_worker_serves() -> None:
    """Grafana's dashboard JSON model on a Prometheus datasource variable, every ecs_canary_*
    name in its PromQL one the code records (a histogram's _bucket, _sum or _count)."""
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource",
        "prometheus",
        "datasource",
    )
    source = {"type": "prometheus", "uid": "${datasource}"}
    targets = [target for panel in dashboard["panels"] for target in panel["targets"]]
    assert all(panel["datasource"] == source for panel in dashboard["panels"])
    assert all(target["datasource"] == source for target in targets)
    assert len({target["refId"] for target in targets}) >= 2 and dashboard["uid"]
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for target in targets
        for name in re.findall(r"\becs_canary_\w+", target["expr"])
    }
    recorded = set(telemetry.HELP)
    assert used and used <= recorded, used - recorded
    titles = " ".join(panel["title"] for panel in dashboard["panels"])
    for wanted in ("in flight", "outcomes", "Gate wait", "ECS calls", "throttles", "budget"):
        assert wanted in titles, wanted
