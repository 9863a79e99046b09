"""What ops run (deploy/) agrees with the code it runs.

The container file, the compose file, the Kustomize output (base and production overlay), the
systemd unit, the nginx site and the Azure registration script are parsed or rendered, and every
settings name, HTTP path and port they mention is checked against ``bot.settings.Settings`` and
the routes of ``app.create_app``. Kustomize output is rendered by the real ``kubectl kustomize``
(or ``kustomize build``) and validated against the Kubernetes schemas.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from bot.settings import REPO_ROOT, SAMPLE_KNOWLEDGE_DIR, Settings

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Owned and tested elsewhere: the Teams app package and the Workplace notes.
OTHERS = (DEPLOY / "teams", DEPLOY / "workplace.md")
DEFAULT_PORT: int = Settings.model_fields["port"].default
# The Kubernetes version the manifests must be valid for (oldest still commonly run).
K8S_VERSION = "1.30"

ENV_NAME = re.compile(r"\b(?:KOLLEGA_[A-Z0-9_]*[A-Z0-9]|Microsoft[A-Z][A-Za-z]*)\b")
# The shapes of kollega's own HTTP paths, wherever they are mentioned (URLs, prose, configs).
APP_PATH = re.compile(r"/(?:api/[A-Za-z0-9_/-]*[A-Za-z0-9_/]|healthz|readyz|metrics|admin)\b/?")
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# helpers


def own_deploy_files() -> list[Path]:
    files = []
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file() or path.name == ".env" or "__pycache__" in path.parts:
            continue
        if any(path == other or other in path.parents for other in OTHERS):
            continue
        files.append(path)
    return files


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
    return names


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuations joined and comment lines dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also inside a continuation
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        instruction, _, args = (buf + stripped).partition(" ")
        out.append((instruction.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text())


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in instructions:
        if instruction == "ENV":
            for match in re.finditer(r'(\w+)=("[^"]*"|\S+)', args):
                env[match.group(1)] = match.group(2).strip('"')
    return env


def dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"\Z")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        if any(regex(pattern).match(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail(
        "neither kustomize nor kubectl is installed: install kubectl (it embeds kustomize) to "
        "render deploy/k8s"
    )


def render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and (
            component is None
            or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"expected one {kind} ({component}), found {len(found)}"
    return found[0]


def bot_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "kollega")


def config_literals(docs: list[dict[str, Any]]) -> dict[str, str]:
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "KOLLEGA_HOST" in d.get("data", {})]
    assert len(maps) == 1
    return maps[0]["data"]


def nginx_locations(text: str) -> list[tuple[str, str, str]]:
    """(modifier, path, body) of every location block (ours have no nested blocks)."""
    return re.findall(r"location\s+(=|\^~|~\*?)?\s*(\S+)\s*\{([^}]*)\}", text)


def image_is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    return bool(digest) or (tag not in ("", "latest") and bool(re.match(r"\d+\.\d+", tag)))


# ---------------------------------------------------------------------------------------------
# mentioned names, paths and ports


def mentioned_paths() -> set[tuple[str, bool]]:
    """(path, is_prefix) for every HTTP path the deploy files mention."""
    found: set[tuple[str, bool]] = set()
    for path in own_deploy_files():
        for match in APP_PATH.finditer(path.read_text(errors="replace")):
            text = match.group(0)
            found.add((text, text.endswith("/")))
    nginx = (DEPLOY / "nginx" / "kollega.conf").read_text()
    for modifier, location, body in nginx_locations(nginx):
        if "proxy_pass" in body:  # only what reaches the app; redirects and 404s stay in nginx
            found.add((location, modifier != "="))
    for overlay in (K8S / "base", K8S / "overlays" / "production"):
        docs = render(overlay)
        container = bot_container(docs)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                found.add((container[probe]["httpGet"]["path"], False))
        for rule in one(docs, "Ingress")["spec"]["rules"]:
            for item in rule["http"]["paths"]:
                found.add((item["path"], item["pathType"] == "Prefix"))
    return found


def test_every_settings_name_mentioned_is_a_setting():
    known = setting_names()
    unknown = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in own_deploy_files()
        for name in ENV_NAME.findall(path.read_text(errors="replace"))
        if name not in known
    }
    assert not unknown, f"not names of bot.settings.Settings: {sorted(unknown)}"


def test_the_names_ops_rely_on_are_mentioned():
    text = "\n".join(p.read_text(errors="replace") for p in own_deploy_files())
    for name in (
        "MicrosoftAppId",
        "MicrosoftAppPassword",
        "MicrosoftAppTenantId",
        "MicrosoftAppType",
        "KOLLEGA_DATABASE_URL",
        "KOLLEGA_KNOWLEDGE_DIR",
        "KOLLEGA_HOST",
        "KOLLEGA_ADMIN_TOKEN",
    ):
        assert name in text, name


@pytest.fixture
async def app(tmp_path):
    from app import create_app

    settings = Settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'kollega.db'}"
    )
    application = create_app(settings)
    if inspect.isawaitable(application):
        application = await application
    return application


async def test_every_http_path_mentioned_is_a_route_of_the_app(app):
    from aiohttp.test_utils import make_mocked_request

    canonicals = [r.resource.canonical for r in app.router.routes() if r.resource is not None]

    async def resolves(path: str) -> bool:
        for method in ("GET", "POST"):
            match = await app.router.resolve(make_mocked_request(method, path, app=app))
            if match.http_exception is None or match.http_exception.status == 405:
                return True
        return False

    missing = []
    for path, is_prefix in sorted(mentioned_paths()):
        if path in canonicals or await resolves(path):
            continue
        if is_prefix and any(c.startswith(path) for c in canonicals):
            continue
        missing.append(path)
    assert not missing, f"mentioned in deploy/ but not routes of the app: {missing}; {canonicals}"


def test_every_port_is_the_configured_bot_port():
    instructions = dockerfile()
    env = dockerfile_env(instructions)
    docker_port = int(env.get("KOLLEGA_PORT", DEFAULT_PORT))
    assert docker_port == DEFAULT_PORT
    exposed = [int(p.split("/")[0]) for i, a in instructions if i == "EXPOSE" for p in a.split()]
    assert exposed == [docker_port]
    healthcheck = next(a for i, a in instructions if i == "HEALTHCHECK")
    fallback = re.search(r"""get\(\s*['"]KOLLEGA_PORT['"]\s*,\s*['"](\d+)['"]""", healthcheck)
    assert fallback and int(fallback.group(1)) == docker_port

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot = compose["services"]["bot"]
    compose_port = int(bot.get("environment", {}).get("KOLLEGA_PORT", docker_port))
    published = [int(str(p).rsplit(":", 1)[1]) for p in bot["ports"]]
    assert published == [compose_port]
    check = " ".join(bot["healthcheck"]["test"])
    assert [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", check)] == [compose_port]

    for overlay in (K8S / "base", K8S / "overlays" / "production"):
        docs = render(overlay)
        k8s_port = int(config_literals(docs).get("KOLLEGA_PORT", DEFAULT_PORT))
        container = bot_container(docs)
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert set(named.values()) == {k8s_port}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = container[probe]["httpGet"]["port"]
            assert named.get(port, port) == k8s_port, probe
        for service_port in one(docs, "Service")["spec"]["ports"]:
            assert named.get(service_port["targetPort"], service_port["targetPort"]) == k8s_port
            assert service_port["port"] == k8s_port

    nginx = (DEPLOY / "nginx" / "kollega.conf").read_text()
    upstreams = re.findall(r"^\s*server\s+127\.0\.0\.1:(\d+)", nginx, re.MULTILINE)
    assert [int(p) for p in upstreams] == [DEFAULT_PORT]


# ---------------------------------------------------------------------------------------------
# container image


def test_dockerfile_pins_its_base_runs_as_non_root_and_serves_app_py():
    instructions = dockerfile()
    stages: set[str] = set()
    for instruction, args in instructions:
        if instruction != "FROM":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        image = words[0]
        if image not in stages:
            assert image_is_pinned(image), f"base image not pinned to a version: {image}"
            assert re.search(r":\d+\.\d+\.\d+", image), f"not a full version tag: {image}"
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
    assert len(stages) >= 2, "multi-stage build expected (builder + runtime)"

    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # Kubernetes' runAsNonRoot can only verify a numeric user, and it must be the same one.
    pod = one(render(K8S / "base"), "Deployment")["spec"]["template"]["spec"]
    assert user.isdigit() and int(user) == pod["securityContext"]["runAsUser"]

    cmd = json.loads(next(a for i, a in reversed(instructions) if i == "CMD"))
    assert cmd[0].startswith("python") and cmd[-1] == "app.py"
    workdir = [a for i, a in instructions if i == "WORKDIR"][-1]
    assert workdir == "/app"
    assert any(i == "COPY" and a.split()[-2:] == [".", "/app"] for i, a in instructions)

    env = dockerfile_env(instructions)
    assert ip_address(env["KOLLEGA_HOST"]).is_unspecified, "must listen on all interfaces"
    # The sample knowledge is baked where Settings looks for it relative to the code.
    baked = "/app/" + SAMPLE_KNOWLEDGE_DIR.relative_to(REPO_ROOT).as_posix()
    assert env["KOLLEGA_KNOWLEDGE_DIR"] == baked
    assert "/healthz" in next(a for i, a in instructions if i == "HEALTHCHECK")
    assert "curl" not in next(a for i, a in instructions if i == "HEALTHCHECK")

    for instruction, args in instructions:
        if instruction == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY source missing from the repo: {source}"


def test_dockerignore_keeps_secrets_and_clutter_out_but_not_the_app():
    ignore = DEPLOY / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for kept in (
        "app.py",
        "alembic.ini",
        "requirements.txt",
        "bot/settings.py",
        "dialogs/turn.py",
        "adapters/teams.py",
        SAMPLE_KNOWLEDGE_DIR.relative_to(REPO_ROOT).as_posix() + "/it.yaml",
        "knowledge/__init__.py",
    ):
        assert not dockerignored(patterns, kept), kept
    for dropped in (
        ".git/config",
        ".venv/bin/python",
        ".env",
        "deploy/.env",
        "tests/test_deploy_files.py",
        "kollega.db",
        "bot/__pycache__/settings.cpython-311.pyc",
    ):
        assert dockerignored(patterns, dropped), dropped


# ---------------------------------------------------------------------------------------------
# compose


def test_compose_runs_postgres_then_migrations_then_the_bot():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"db", "migrate", "bot"}

    db = services["db"]
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", db["image"]), db["image"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])

    for name in ("migrate", "bot"):
        service = services[name]
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        assert service["env_file"] == ".env"
        assert image_is_pinned(service["image"])
        assert service["read_only"] is True
        url = service["environment"]["KOLLEGA_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@db:5432/" in url

    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"

    bot = services["bot"]
    assert bot["command"][-1] == "app.py"
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert all(str(p).startswith("127.0.0.1:") for p in bot["ports"]), "publish on loopback only"


def test_no_secret_values_in_the_deploy_files():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if SECRETISH.search(key) or ("://" in str(value) and "@" in str(value)):
                assert "${" in str(value), f"{key} must come from .env, not compose.yaml"

    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (doc and doc.get("kind") == "Secret"), f"a Secret in git: {path}"

    example = DEPLOY / "env.example"
    for line in example.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if SECRETISH.search(key) or key == "MicrosoftAppId":
                assert value == "", f"env.example must not carry a value for {key}"


def test_env_example_names_only_settings_and_loads_into_settings():
    names = setting_names() | {"POSTGRES_PASSWORD"}  # compose builds the database URL from it
    keys = [
        line.partition("=")[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert keys and set(keys) <= names, sorted(set(keys) - names)
    settings = Settings(_env_file=DEPLOY / "env.example")
    assert settings.APP_TYPE == "SingleTenant"


# ---------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(K8S / "base")


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(K8S / "overlays" / "production")


def test_kustomize_output_is_valid_kubernetes(base, production):
    validator = pytest.importorskip("kubernetes_validate")
    for docs in (base, production):
        for doc in docs:
            validator.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_deployment_is_probed_hardened_and_highly_available(overlay, request):
    docs = request.getfixturevalue(overlay)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = bot_container(docs)

    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert image_is_pinned(container["image"])
    assert container["command"][-1] == "app.py"
    assert {"requests", "limits"} <= set(container["resources"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["terminationGracePeriodSeconds"] >= 30, "graceful shutdown needs time"

    # Settings: the config map for the plain ones, the ops-made Secret for the secret ones.
    config = config_literals(docs)
    assert ip_address(config["KOLLEGA_HOST"]).is_unspecified
    knowledge_mount = next(m for m in container["volumeMounts"] if m["name"] == "knowledge")
    assert config["KOLLEGA_KNOWLEDGE_DIR"] == knowledge_mount["mountPath"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {"MicrosoftAppId", "MicrosoftAppPassword", "KOLLEGA_DATABASE_URL"} <= set(refs)
    assert {ref["name"] for ref in refs.values()} == {"kollega-secrets"}
    assert not [d for d in docs if d["kind"] == "Secret"]

    # Every config map the pod uses is one the kustomization generated (hash-suffixed names).
    rendered_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    used = {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    used |= {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
    assert used and used <= rendered_maps

    # Service, PDB and HPA all point at these pods.
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert one(docs, "Service")["spec"]["selector"].items() <= labels.items()
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= pdb["minAvailable"] < spec["replicas"], "a PDB must still allow drains"
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] == spec["replicas"] and hpa["maxReplicas"] > hpa["minReplicas"]

    job = one(docs, "Job", "migrate")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate["image"] == container["image"], "migrations must come from the same release"
    assert any(e["name"] == "KOLLEGA_DATABASE_URL" for e in migrate["env"])

    ingress = one(docs, "Ingress")["spec"]
    hosts = {rule["host"] for rule in ingress["rules"]}
    assert ingress["tls"] and hosts <= {h for tls in ingress["tls"] for h in tls["hosts"]}
    backends = {
        p["backend"]["service"]["name"] for r in ingress["rules"] for p in r["http"]["paths"]
    }
    assert backends == {one(docs, "Service")["metadata"]["name"]}


def test_production_overlay_scales_up_and_names_its_release(base, production):
    def spec(docs, kind):
        return one(docs, kind)["spec"]

    assert spec(production, "Deployment")["replicas"] > spec(base, "Deployment")["replicas"]
    hpa = "HorizontalPodAutoscaler"
    assert spec(production, hpa)["maxReplicas"] > spec(base, hpa)["maxReplicas"]
    assert bot_container(production)["image"] != bot_container(base)["image"]
    assert {r["host"] for r in spec(production, "Ingress")["rules"]}.isdisjoint(
        {r["host"] for r in spec(base, "Ingress")["rules"]}
    )
    assert {d["metadata"].get("namespace") for d in production} == {"kollega"}
    memory = bot_container(production)["resources"]["limits"]["memory"]
    assert memory != bot_container(base)["resources"]["limits"]["memory"]


def test_knowledge_config_map_holds_valid_knowledge_files(base, tmp_path):
    maps = [d for d in base if d["kind"] == "ConfigMap" and "KOLLEGA_HOST" not in d["data"]]
    assert len(maps) == 1
    files = maps[0]["data"]
    ids: set[str] = set()
    follow_ups: set[str] = set()
    for name, text in files.items():
        assert name.endswith(".yaml"), name
        doc = yaml.safe_load(text)
        assert {"domain", "owner", "intents"} <= set(doc), name
        for intent in doc["intents"]:
            assert intent["id"] not in ids
            ids.add(intent["id"])
            assert intent["examples"] and intent["answer"]
            follow_ups.update(intent.get("follow_ups", []))
        (tmp_path / name).write_text(text)
    assert follow_ups <= ids
    # The knowledge package's own validator, once it exists, has the last word.
    if not (REPO_ROOT / "knowledge" / "__main__.py").exists():
        pytest.skip("python -m knowledge validate is not there yet; checked the shape only")
    result = subprocess.run(
        [sys.executable, "-m", "knowledge", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# VM: systemd and nginx


def unit_lines() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "kollega.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_runs_the_venv_with_the_env_file_and_hardening():
    unit = unit_lines()
    assert unit["ExecStart"] == ["/opt/kollega/.venv/bin/python /opt/kollega/app.py"]
    assert unit["ExecStartPre"] == ["/opt/kollega/.venv/bin/alembic upgrade head"]
    assert unit["EnvironmentFile"] == ["/etc/kollega/kollega.env"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert int(unit["TimeoutStopSec"][0]) >= 30, "graceful shutdown needs time"
    assert unit["User"] != ["root"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit[key] == [value], key


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze is not installed (Debian package systemd): unit not verified")
        pytest.skip("systemd-analyze not installed")
    # verify insists that every Exec* binary exists: give it a root with the system's units and
    # stand-ins for the venv's programs, so everything else about the unit is checked for real.
    root = tmp_path / "root"
    units = Path("/usr/lib/systemd/system")
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(DEPLOY / "systemd" / "kollega.service", unit_dir)
    for key, values in unit_lines().items():
        if key.startswith("Exec"):
            for value in values:
                program = root / value.lstrip("-@+!:").split()[0].lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "kollega.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "kollega" in line
    ]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_nginx_site_terminates_tls_and_proxies_only_app_routes():
    text = (DEPLOY / "nginx" / "kollega.conf").read_text()
    assert re.search(r"listen\s+443\s+ssl", text)
    assert "ssl_certificate " in text and "ssl_certificate_key " in text
    assert re.search(r"client_max_body_size\s+\d+[km];", text)
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "Referrer-Policy"):
        assert f"add_header {header}" in text, header
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", text)
    locations = {path: (modifier, body) for modifier, path, body in nginx_locations(text)}
    assert locations["/api/messages"][0] == "="
    assert "proxy_buffering off" in locations["/api/webchat/"][1]  # server-sent events
    assert "proxy_pass" in locations["/webchat/"][1]
    assert re.search(r"location = / \{\s*proxy_pass", text)  # the chat page, nothing else
    for path in ("/healthz", "/readyz", "/metrics"):
        assert path not in locations, f"{path} should not be public"
    assert "deny all" in locations["/api/admin/"][1]


def test_nginx_accepts_the_site(tmp_path):
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed (Debian package nginx-core): `nginx -t` not run")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kollega.example.org")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    site = (DEPLOY / "nginx" / "kollega.conf").read_text()
    site = re.sub(r"/etc/letsencrypt/live/[^/\s]+", str(tmp_path), site)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        textwrap.dedent(f"""\
            pid {tmp_path}/nginx.pid;
            error_log stderr;
            events {{}}
            http {{ include {tmp_path}/site.conf; }}
            """)
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr


# ---------------------------------------------------------------------------------------------
# Azure Bot registration script

REGISTER = DEPLOY / "azure" / "register-bot.sh"
TENANT = "0e0e0e0e-0000-4000-8000-00000000000a"
APP_ID = "11111111-2222-4333-8444-555555555555"
SECRET = "fake~client~secret"

FAKE_AZ = f"""\
#!{sys.executable}
# Stand-in for the Azure CLI: logs its arguments, answers like az does for a fresh tenant.
import os, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
command = " ".join(a for a in args[:3] if not a.startswith("-"))
answers = {{
    "account show": "{TENANT}",
    "ad app list": "",
    "ad app create": "{APP_ID}",
    "ad app credential": "{SECRET}",
}}
missing = ("ad sp show", "group show", "bot show", "bot msteams show")
if any(command.startswith(m) for m in missing):
    sys.stderr.write("ResourceNotFound\\n")
    sys.exit(3)
for prefix, answer in answers.items():
    if command.startswith(prefix):
        print(answer)
        break
"""


def run_register(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "az.log"
    log.write_text("")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AZ_LOG": str(log)}
    result = subprocess.run(
        ["bash", str(REGISTER), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=60,
    )
    return result, log.read_text().splitlines()


def printed_settings(stdout: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in stdout.splitlines() if line and not line.startswith("#")
    )


@pytest.mark.parametrize("script", sorted(DEPLOY.rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    assert os.access(script, os.X_OK), f"{script} is not executable"
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_register_bot_single_tenant_prints_the_settings_and_writes_nothing(tmp_path):
    result, calls = run_register(
        tmp_path, "--resource-group", "rg-kollega", "--name", "kollega-test", "--host", "bot.ex.org"
    )
    assert result.returncode == 0, result.stderr
    settings = printed_settings(result.stdout)
    assert settings == {
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": SECRET,
        "MicrosoftAppTenantId": TENANT,
        "MicrosoftAppType": "SingleTenant",
    }
    assert set(settings) <= setting_names()
    loaded = Settings(_env_file=None, **settings)
    assert (loaded.APP_ID, loaded.APP_TENANTID, loaded.APP_TYPE) == (
        APP_ID,
        TENANT,
        "SingleTenant",
    )

    def call(prefix: str) -> str:
        found = [c for c in calls if c.startswith(prefix)]
        assert len(found) == 1, f"{prefix!r} in {calls}"
        return found[0]

    assert "--sign-in-audience AzureADMyOrg" in call("ad app create")
    assert f"--id {APP_ID}" in call("ad sp create")
    assert "--append" in call("ad app credential reset")
    bot = call("bot create")
    for part in (
        "--endpoint https://bot.ex.org/api/messages",
        "--app-type SingleTenant",
        f"--appid {APP_ID}",
        f"--tenant-id {TENANT}",
        "--resource-group rg-kollega",
        "--name kollega-test",
    ):
        assert part in bot, part
    assert "--name kollega-test" in call("bot msteams create")
    assert list((tmp_path / "work").iterdir()) == [], "the script wrote files nobody asked for"
    assert SECRET not in result.stderr


def test_register_bot_multi_tenant_leaves_the_tenant_empty(tmp_path):
    result, calls = run_register(
        tmp_path, "-g", "rg", "-n", "kollega-multi", "--host", "bot.ex.org", "--tenancy", "multi"
    )
    assert result.returncode == 0, result.stderr
    settings = printed_settings(result.stdout)
    assert settings["MicrosoftAppType"] == "MultiTenant"
    assert settings["MicrosoftAppTenantId"] == ""
    assert any("--sign-in-audience AzureADMultipleOrgs" in c for c in calls)
    bot = next(c for c in calls if c.startswith("bot create"))
    assert "--app-type MultiTenant" in bot and "--tenant-id" not in bot


def test_register_bot_writes_the_env_file_only_when_asked_and_privately(tmp_path):
    target = tmp_path / "kollega.env"
    args = ("-g", "rg", "-n", "kollega-file", "--host", "bot.ex.org", "--env-file", str(target))
    result, _ = run_register(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert printed_settings(target.read_text())["MicrosoftAppPassword"] == SECRET
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again, calls = run_register(tmp_path, *args)
    assert again.returncode != 0 and "exists" in again.stderr
    assert calls == [], "must refuse before touching Azure"


@pytest.mark.parametrize(
    "args",
    [
        ("-g", "rg", "-n", "kollega", "--host", "https://bot.ex.org"),
        ("-g", "rg", "-n", "kollega", "--host", "bot.ex.org/api/messages"),
        ("-g", "rg", "-n", "kollega", "--host", "bot.ex.org", "--tenancy", "both"),
        ("-g", "rg", "-n", "k", "--host", "bot.ex.org"),
        ("-n", "kollega", "--host", "bot.ex.org"),
    ],
)
def test_register_bot_refuses_bad_arguments_before_calling_azure(tmp_path, args):
    result, calls = run_register(tmp_path, *args)
    assert result.returncode != 0
    assert calls == []
