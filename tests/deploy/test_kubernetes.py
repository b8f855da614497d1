"""deploy/kubernetes: every manifest valid against Kubernetes' own schemas (offline, strict),
and the properties operators rely on: probes, hardening, Secret mounts, the admin port
kept inside the cluster, and a configuration the service accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.settings_names import accepted_names
from token_service.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
#: The oldest release these manifests promise to work on (preStop `sleep` needs 1.30).
KUBERNETES_VERSION = "1.30.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return loaded


def resources() -> list[dict[str, Any]]:
    """What `kubectl apply -k` applies: every document of every listed file."""
    return [d for name in kustomization()["resources"] for d in documents(KUBERNETES / name)]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in resources() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def container() -> dict[str, Any]:
    (only,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


@pytest.mark.parametrize(
    ("path", "index"),
    [(path, index) for path in manifest_files() for index in range(len(documents(path)))],
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path, index: int) -> None:
    for version in (KUBERNETES_VERSION, kubernetes_validate.latest_version()):
        kubernetes_validate.validate(documents(path)[index], version, strict=True)


def test_kustomization_lists_every_manifest_beside_it() -> None:
    listed = set(kustomization()["resources"])
    beside = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == beside


def test_kustomization_image_is_the_one_the_deployment_uses() -> None:
    names = {image["name"] for image in kustomization()["images"]}
    assert container()["image"] in names


def test_no_secret_values_are_in_the_kustomization() -> None:
    assert "Secret" not in {d["kind"] for d in resources()}
    assert "secretGenerator" not in kustomization()


def test_liveness_and_readiness_probe_the_operations_routes() -> None:
    probes = container()
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_container_is_hardened() -> None:
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_pod_runs_as_the_images_uid() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False


def test_requests_and_limits_are_set() -> None:
    resources_ = container()["resources"]
    assert {"cpu", "memory"} <= resources_["requests"].keys()
    assert {"cpu", "memory"} <= resources_["limits"].keys()


def test_keys_come_from_a_secret_mounted_whole() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container()["volumeMounts"]}
    settings = one("ConfigMap")["data"]
    keys_mount = next(
        m for m in mounts.values() if m["mountPath"] == settings["TOKEN_SERVICE_KEYS_DIR"]
    )
    assert "secret" in volumes[keys_mount["name"]]
    assert keys_mount["readOnly"] is True
    assert settings["TOKEN_SERVICE_KEYS_READ_ONLY"] == "true"
    assert not any("subPath" in m for m in mounts.values())


def test_the_only_writable_mount_is_an_empty_dir() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [m for m in container()["volumeMounts"] if not m.get("readOnly")]
    assert len(writable) == 1
    assert "emptyDir" in volumes[writable[0]["name"]]


def test_named_ports_match_the_configured_ports() -> None:
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    settings = one("ConfigMap")["data"]
    assert ports == {
        "http": int(settings["TOKEN_SERVICE_PORT"]),
        "admin": int(settings["TOKEN_SERVICE_ADMIN_PORT"]),
    }


def test_admin_port_is_reachable_only_from_inside_the_cluster() -> None:
    rules = one("NetworkPolicy")["spec"]["ingress"]
    by_port = {port["port"]: rule for rule in rules for port in rule["ports"]}
    assert "from" not in by_port["http"], "the public port is open to the load balancer"
    assert by_port["admin"]["from"] == [{"namespaceSelector": {}}]
    assert set(by_port) == {"http", "admin"}


def test_network_policy_and_services_select_the_pods() -> None:
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = [
        one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Deployment")["spec"]["selector"]["matchLabels"],
        *[d["spec"]["selector"] for d in resources() if d["kind"] == "Service"],
    ]
    assert all(selector.items() <= labels.items() for selector in selectors)


def test_public_and_admin_services_target_their_ports() -> None:
    targets = {
        d["metadata"]["name"]: {p["targetPort"] for p in d["spec"]["ports"]}
        for d in resources()
        if d["kind"] == "Service"
    }
    assert targets == {"token-service": {"http"}, "token-service-admin": {"admin"}}


def test_autoscaler_and_disruption_budget_keep_a_pod_serving() -> None:
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    assert hpa["minReplicas"] >= 2
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] >= 1
    assert one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_grace_period_covers_the_pre_stop_pause_and_the_drain() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(one("ConfigMap")["data"]["TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_every_variable_name_is_one_the_service_reads() -> None:
    names = set(one("ConfigMap")["data"]) | {e["name"] for e in container()["env"]}
    assert names <= accepted_names()


def test_the_service_accepts_the_configuration(tmp_path: Path) -> None:
    env = dict(one("ConfigMap")["data"])
    for entry in container()["env"]:
        if entry["name"].endswith("_FILE"):
            # The mounted Secret's file, with a value of the right shape.
            path = tmp_path / Path(entry["value"]).name
            path.write_text("redis://redis:6379/0" if "REDIS" in entry["name"] else "x" * 48)
            env[entry["name"]] = str(path)
        else:
            env[entry["name"]] = entry["value"]
    settings = load_settings(env)
    assert settings.server.admin_port == 8081
    assert settings.auth.configured
