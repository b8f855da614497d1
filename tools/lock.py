"""The lock files: every package of the install, pinned with its hashes, made from pyproject.toml.

    python tools/lock.py compile   # what `make lock` runs: needs uv and the package index
    python tools/lock.py check     # offline: is each lock file still made from pyproject.toml?
    python tools/lock.py newer     # which installed releases differ from requirements/test.txt

Four sets, each a `requirements/*.txt` that `pip install --require-hashes` takes:

* `build.txt`: the build backend (`[build-system] requires`), which the Dockerfile's build
  stage builds the wheel with (without build isolation, so the locked backend builds it);
* `runtime.txt`: `[project] dependencies`, what the image's environment holds besides the
  wheel;
* `test.txt`: all of the above plus the `test` extra and the emulator's dependencies (with
  its `test` extra), what `make run` and `make test` install before the package itself and
  the emulator (both editable, without build isolation);
* `emulator.txt`: the dependencies of the IVS emulator, a distribution of its own
  (`emulator/pyproject.toml`), what its image holds besides its wheel.

The resolution is universal (one file for every platform and Python from 3.11 on, with
environment markers) and carries the hashes of every distribution file of each pinned
release, so the same file installs on a developer's laptop and in an arm64 image.

Each file's first line records a digest of the pyproject.toml files it was made from, the
whole files: any edit to either is followed by `make lock`, so the lock files are never older than
the project file (which is what a clean checkout's checks compare). `check` recomputes the
digest and also checks that every requirement is pinned to a release its range allows;
tests/packaging/test_lock.py runs it, so an edit without `make lock` fails the suite.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
EMULATOR_PYPROJECT = ROOT / "emulator" / "pyproject.toml"
LOCK_DIR = ROOT / "requirements"
#: The oldest Python the project supports; the universal resolution covers it and newer.
PYTHON_VERSION = "3.11"
_STAMP = re.compile(r"^# pyproject-sha256: (?P<digest>[0-9a-f]{64})$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def lock_inputs(
    pyproject: Path = PYPROJECT, emulator: Path = EMULATOR_PYPROJECT
) -> dict[str, list[str]]:
    """Each lock file's name and the requirements it is resolved from, in pyproject's order."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    build: list[str] = data["build-system"]["requires"]
    runtime: list[str] = data["project"]["dependencies"]
    emulator_data = tomllib.loads(emulator.read_text(encoding="utf-8"))
    emulator_runtime: list[str] = emulator_data["project"]["dependencies"]
    emulator_test: list[str] = emulator_data["project"]["optional-dependencies"]["test"]
    test = [
        *build,
        *runtime,
        *data["project"]["optional-dependencies"]["test"],
        *emulator_runtime,
        *emulator_test,
    ]
    return {
        "build.txt": build,
        "runtime.txt": runtime,
        "test.txt": test,
        "emulator.txt": emulator_runtime,
    }


def digest(pyproject: Path = PYPROJECT, emulator: Path = EMULATOR_PYPROJECT) -> str:
    """The digest the lock files are stamped with: of both pyproject.toml files' bytes."""
    return hashlib.sha256(pyproject.read_bytes() + emulator.read_bytes()).hexdigest()


def pins(lock: Path) -> dict[str, list[str]]:
    """Each pinned package (normalized name) and its version(s): a universal lock may pin a
    package twice, under exclusive markers."""
    found: dict[str, list[str]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            found.setdefault(_normal(match["name"]), []).append(match["version"])
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems(
    lock_dir: Path = LOCK_DIR, pyproject: Path = PYPROJECT, emulator: Path = EMULATOR_PYPROJECT
) -> list[str]:
    """Why the lock files are not what `make lock` would make of pyproject.toml now."""
    from packaging.requirements import Requirement  # in the test set (pytest needs it)

    found: list[str] = []
    for name, requirements in lock_inputs(pyproject, emulator).items():
        lock = lock_dir / name
        if not lock.is_file():
            found.append(f"requirements/{name} is missing")
            continue
        first = lock.read_text(encoding="utf-8").partition("\n")[0]
        stamp = _STAMP.match(first)
        if stamp is None or stamp["digest"] != digest(pyproject, emulator):
            found.append(f"requirements/{name} was made from another pyproject.toml")
        pinned = pins(lock)
        for text in requirements:
            requirement = Requirement(text)
            versions = pinned.get(_normal(requirement.name))
            if versions is None:
                found.append(f"requirements/{name} does not pin {requirement.name}")
            elif not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
                found.append(
                    f"requirements/{name} pins {requirement.name} {', '.join(versions)},"
                    f" outside {requirement.specifier}"
                )
    return found


def compile_locks(lock_dir: Path = LOCK_DIR) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not installed: `make lock` installs it with the test set")
    lock_dir.mkdir(exist_ok=True)
    for name, requirements in lock_inputs().items():
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / name.replace(".txt", ".in")
            source.write_text("\n".join(requirements) + "\n", encoding="utf-8")
            output = Path(scratch) / name
            subprocess.run(  # uv: found on PATH or beside this interpreter
                [
                    uv, "pip", "compile", str(source), "--output-file", str(output),
                    "--generate-hashes", "--universal", "--python-version", PYTHON_VERSION,
                    "--custom-compile-command", "make lock", "--no-annotate", "--quiet",
                ],
                check=True,
            )  # fmt: skip
            body = output.read_text(encoding="utf-8")
        stamp = f"# pyproject-sha256: {digest()}\n"
        (lock_dir / name).write_text(stamp + body, encoding="utf-8")
        print(f"wrote requirements/{name}")


def newer(lock: Path = LOCK_DIR / "test.txt") -> list[str]:
    """Each package this interpreter has in another release than the lock pins."""
    from importlib.metadata import distributions

    pinned = pins(lock)
    lines = []
    for dist in sorted(distributions(), key=lambda d: _normal(d.metadata["Name"])):
        name = _normal(dist.metadata["Name"])
        if name in pinned and dist.version not in pinned[name]:
            lines.append(f"{name}: {', '.join(pinned[name])} (lock) -> {dist.version}")
    return lines


def main(argv: list[str]) -> int:
    if argv == ["compile"]:
        compile_locks()
        return 0
    if argv == ["check"]:
        found = problems()
        for problem in found:
            print(problem, file=sys.stderr)
        if found:
            print("run `make lock` and commit requirements/", file=sys.stderr)
        return 1 if found else 0
    if argv[:1] == ["newer"]:
        lines = newer()
        print("newer than the lock:" if lines else "the same releases as the lock")
        for line in lines:
            print(f"  {line}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
