"""deploy/docker-compose.yml and deploy/examples: a local stack that starts in order, and
configuration the service accepts.

(No Docker engine here to run `docker compose config`: the file is checked as data.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.dockerfile import final_stage
from tests.support.settings_names import accepted_names
from token_service.config import load_settings, read_dotenv

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
EXAMPLE_ENV = ROOT / "deploy" / "examples" / "token-service.env"
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def resolved(value: str) -> str:
    """`${NAME:-default}` as compose resolves it when NAME is not set."""
    return _DEFAULTED.sub(lambda m: m.group(2), value)


def service_env(name: str) -> dict[str, str]:
    return {k: resolved(str(v)) for k, v in services()[name]["environment"].items()}


def test_the_stack_is_the_service_redis_and_the_emulator() -> None:
    assert {"token-service", "redis", "emulator", "keys-init"} <= set(services())


def test_the_emulator_is_built_from_its_own_dockerfile_not_the_services_image() -> None:
    emulator = services()["emulator"]
    context = (ROOT / "deploy" / emulator["build"]["context"]).resolve()

    assert emulator["build"]["dockerfile"] == "emulator/Dockerfile"
    assert (context / "emulator" / "Dockerfile").is_file()
    assert emulator["image"] == "ivs-realtime-emulator:local"


def test_every_dependency_names_a_service_of_the_stack() -> None:
    for service in services().values():
        assert set(service.get("depends_on", {})) <= set(services())


def test_the_service_starts_after_redis_and_a_signing_key() -> None:
    depends = services()["token-service"]["depends_on"]
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["keys-init"]["condition"] == "service_completed_successfully"
    assert services()["keys-init"]["depends_on"]["emulator"]["condition"] == "service_healthy"


def test_redis_keeps_bans_and_the_mapping_log_across_a_restart() -> None:
    """Issue 20, item 6: it ran with `--save "" --appendonly no`, so a restart lifted bans."""
    redis = services()["redis"]
    command = list(redis["command"])
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])


def test_key_init_rotates_only_without_an_active_key() -> None:
    command = " ".join(services()["keys-init"]["command"])
    assert "keys list" in command
    assert "|| token-service keys rotate" in command


def test_the_service_runs_the_images_command() -> None:
    service = services()["token-service"]
    assert "command" not in service
    assert "entrypoint" not in service
    assert final_stage().exec_form("CMD")[0] == "serve"


def test_keys_live_in_a_volume_shared_with_the_init_step() -> None:
    volumes = compose()["volumes"]
    for name in ("token-service", "keys-init"):
        mounts = services()[name]["volumes"]
        assert any(m.split(":")[0] in volumes for m in mounts)


def test_ports_are_published_on_loopback_only() -> None:
    for service in services().values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_stop_grace_covers_the_drain() -> None:
    service = services()["token-service"]
    grace = int(service["stop_grace_period"].rstrip("s"))
    assert grace > int(service_env("token-service")["TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS"])


def test_compose_variable_names_are_ones_the_service_reads() -> None:
    names = {n for n in service_env("token-service") if n.startswith("TOKEN_SERVICE_")}
    assert names <= accepted_names()


def test_the_service_accepts_the_compose_configuration() -> None:
    settings = load_settings(service_env("token-service"))
    assert settings.server.admin_port == 8081
    assert settings.redis_configured


def test_example_env_file_names_are_ones_the_service_reads() -> None:
    assert set(read_dotenv(EXAMPLE_ENV)) <= accepted_names()


def test_the_service_accepts_the_example_env_file(tmp_path: Path) -> None:
    env = read_dotenv(EXAMPLE_ENV)
    for name, value in list(env.items()):
        if name.endswith("_FILE"):
            path = tmp_path / Path(value).name
            path.write_text("redis://redis:6379/0" if "REDIS" in name else "y" * 48)
            env[name] = str(path)
    settings = load_settings(env)
    assert settings.server.workers == 2
