"""The image's start command, run the way the Dockerfile builds and starts it.

There is no Docker engine here, so this builds what the Dockerfile builds without one:
a build context holding only what .dockerignore lets through, a wheel built from it, a
fresh virtual environment with only that wheel (and its dependencies) installed, the
Dockerfile's ENV, WORKDIR (an empty directory), ENTRYPOINT and CMD, and its HEALTHCHECK
command; the run-time configuration is given the way `docker run -e` would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.dockerfile import ROOT, Stage, final_stage, stages
from tests.support.processes import wait_for_http
from tests.support.redis_server import free_port

SECRET = "container-shared-secret-" + "c" * 32

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def build_context(destination: Path) -> Path:
    """Copy what .dockerignore allows (an allow-list) into a fresh build context."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.pyd")
    destination.mkdir()
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignored)
        else:
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def run(*command: str | Path, timeout: float = 600, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`/opt/token-service` of the image: the build stage's RUN lines, as written, run in a
    build context made as Docker makes it, with the image's paths mapped to ours."""
    base = tmp_path_factory.mktemp("image")
    context = build_context(base / "context")
    paths = {
        "/opt/build": base / "opt-build",
        "/opt/token-service": base / "opt-token-service",
        "/wheels": base / "wheels",
    }
    build = stages()[0]
    env = {**os.environ, **build.env()}
    for written in build.all("RUN"):
        command = written
        for image_path, ours in paths.items():
            command = command.replace(image_path, str(ours))
        # The image's `python` is the base image's interpreter; ours is this one.
        command = re.sub(r"(?<![/\w-])python -m venv", f"{sys.executable} -m venv", command)
        run(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            f"cd {shlex.quote(str(context))} && {command}",
            env=env,
        )
    return paths["/opt/token-service"]


@pytest.fixture(scope="module")
def image() -> Stage:
    return final_stage()


def image_env(image: Stage, root: Path, **runtime: str) -> dict[str, str]:
    """The Dockerfile's ENV (its venv path mapped to ours) plus `docker run -e` values."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "LANG": "C.UTF-8"}
    for name, written in image.env().items():
        value = written.replace("${PATH}", env["PATH"]).replace("$PATH", env["PATH"])
        env[name] = value.replace("/opt/token-service", str(root))
    return {**env, **runtime}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "var-lib-token-service"
    path.mkdir()
    return path


@pytest.fixture
def runtime_env(image: Stage, image_root: Path, emulator: Any) -> dict[str, str]:
    return image_env(
        image,
        image_root,
        TOKEN_SERVICE_PORT=str(free_port()),
        TOKEN_SERVICE_AUTH_SHARED_SECRET=SECRET,
        TOKEN_SERVICE_IVS_ENDPOINT_URL=emulator.url,
        TOKEN_SERVICE_AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret",
    )


def in_image(
    image: Stage, env: dict[str, str], workdir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*image.exec_form("ENTRYPOINT"), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def started(
    image: Stage, runtime_env: dict[str, str], workdir: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`docker run IMAGE` after `docker run IMAGE keys rotate` on the same keys volume."""
    rotated = in_image(image, runtime_env, workdir, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    proc = subprocess.Popen(
        [*image.exec_form("ENTRYPOINT"), *image.exec_form("CMD")],
        env=runtime_env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{runtime_env['TOKEN_SERVICE_PORT']}"
    try:
        wait_for_http(f"{base}/healthz", timeout=60, proc=proc)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_entrypoint_is_the_wheels_console_script(
    image: Stage, runtime_env: dict[str, str], image_root: Path
) -> None:
    entrypoint = image.exec_form("ENTRYPOINT")[0]
    found = shutil.which(entrypoint, path=runtime_env["PATH"])
    assert found == str(image_root / "bin" / entrypoint)


def test_healthcheck_command_passes_while_serving(
    started: tuple[subprocess.Popen[str], str],
    image: Stage,
    runtime_env: dict[str, str],
    workdir: Path,
) -> None:
    check = subprocess.run(
        image.healthcheck(), env=runtime_env, cwd=workdir, timeout=30, check=False
    )
    assert check.returncode == 0


def test_healthcheck_command_fails_when_nothing_serves(
    image: Stage, runtime_env: dict[str, str], workdir: Path
) -> None:
    check = subprocess.run(
        image.healthcheck(),
        env=runtime_env,
        cwd=workdir,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert check.returncode != 0


def test_issues_a_token_that_joins_the_stage(
    started: tuple[subprocess.Popen[str], str],
    image: Stage,
    runtime_env: dict[str, str],
    workdir: Path,
    ivs_client: Any,
    emulator: Any,
) -> None:
    _, base = started
    stage_arn = ivs_client.create_stage(name="container")["stage"]["arn"]
    user = in_image(
        image, runtime_env, workdir, "user-token", "--sub", "boxed", "--roles", "publisher"
    )
    assert user.returncode == 0, user.stderr
    response = httpx.post(
        f"{base}/v1/participant-tokens",
        json={"stageArn": stage_arn, "capabilities": ["PUBLISH"]},
        headers={"Authorization": f"Bearer {user.stdout.strip()}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    joined = httpx.post(
        f"{emulator.url}/_emulator/join", json={"token": response.json()["token"]}, timeout=5
    )
    assert joined.status_code == 200, joined.text


def test_stops_cleanly_on_sigterm(started: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = started
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    output = proc.stdout.read() if proc.stdout else ""
    assert '"event": "clients_closed"' in output
