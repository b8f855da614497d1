"""The IVS emulator is a distribution of its own: never in the service's wheel or image, and
installable alone, as its image installs it, with nothing of the service importable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dockerfile import ROOT, final_stage, stages

EMULATOR_DOCKERFILE = ROOT / "emulator" / "Dockerfile"


def _wheel(source: Path, destination: Path) -> Path:
    """The wheel of `source`, built by the locked backend (as both images build theirs)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(destination), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = destination.glob("*.whl")
    return wheel


def _top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/")[0] for name in archive.namelist()}


@pytest.fixture(scope="module")
def emulator_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wheel(ROOT / "emulator", tmp_path_factory.mktemp("emulator-wheel"))


def test_the_services_wheel_holds_no_emulator_code(tmp_path: Path) -> None:
    wheel = _wheel(ROOT, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()

    assert [name for name in names if "emulator" in name.lower()] == []
    assert _top_level(wheel) == {"token_service", wheel.name.split("-")[0] + "-0.1.0.dist-info"}


def test_the_emulators_wheel_holds_only_the_emulator(emulator_wheel: Path) -> None:
    assert _top_level(emulator_wheel) == {
        "ivs_realtime_emulator",
        "ivs_realtime_emulator-0.1.0.dist-info",
    }


def test_the_emulators_image_installs_its_lock_requiring_hashes_then_its_wheel() -> None:
    runs = " && ".join(stages(EMULATOR_DOCKERFILE)[0].all("RUN"))

    assert "install --require-hashes -r requirements/emulator.txt" in runs
    assert "install --require-hashes -r requirements/build.txt" in runs
    assert "pip wheel --no-deps --no-build-isolation" in runs
    assert final_stage(EMULATOR_DOCKERFILE).exec_form("ENTRYPOINT") == ["ivs-realtime-emulator"]


def test_the_emulators_build_context_holds_nothing_of_the_service() -> None:
    ignore = (ROOT / "emulator" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    allowed = [line[1:] for line in ignore.splitlines() if line.startswith("!")]

    assert "*" in ignore.splitlines()  # everything is out but what is allowed back
    assert all(path.startswith(("emulator/", "requirements/")) for path in allowed)
    assert "requirements/runtime.txt" not in allowed


def test_the_emulators_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(EMULATOR_DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.fixture(scope="module")
def emulator_alone(tmp_path_factory: pytest.TempPathFactory, emulator_wheel: Path) -> Path:
    """A new virtual environment holding the emulator's lock and wheel, nothing else."""
    venv = tmp_path_factory.mktemp("emulator-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    lock = ROOT / "requirements" / "emulator.txt"
    subprocess.run([*pip, "install", "--require-hashes", "-r", str(lock)], check=True, timeout=600)
    subprocess.run([*pip, "install", "--no-deps", str(emulator_wheel)], check=True, timeout=120)
    return venv


@pytest.fixture
def running_alone(emulator_alone: Path, tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [str(emulator_alone / "bin" / "ivs-realtime-emulator"), "--port", "0", "--no-quotas"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"on (http://\S+) ", banner)
        assert match, banner
        yield match[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_installed_alone_the_emulator_serves(running_alone: str) -> None:
    assert httpx.get(f"{running_alone}/_emulator/health", timeout=5).json() == {"status": "ok"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_installed_alone_nothing_of_the_service_is_importable(emulator_alone: Path) -> None:
    result = subprocess.run(
        [str(emulator_alone / "bin" / "python"), "-c", "import token_service"],
        capture_output=True, text=True, timeout=60, check=False, cwd=emulator_alone,
    )  # fmt: skip

    assert result.returncode == 1
    assert "No module named 'token_service'" in result.stderr
