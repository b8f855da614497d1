"""The lock files are what `make lock` makes of pyproject.toml, and installs use them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tools import lock

ROOT = Path(__file__).resolve().parents[2]


def _project_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert old in text
    copy = tmp_path / "pyproject.toml"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy


def test_the_lock_files_are_made_from_pyproject_as_it_is() -> None:
    assert lock.problems() == []


def test_a_changed_requirement_makes_the_lock_out_of_date(tmp_path: Path) -> None:
    changed = _project_copy(tmp_path, '"pyyaml>=6.0,<7"', '"pyyaml>=6.0.1,<7"')

    found = lock.problems(pyproject=changed)

    assert found == [
        "requirements/build.txt was made from another pyproject.toml",
        "requirements/runtime.txt was made from another pyproject.toml",
        "requirements/test.txt was made from another pyproject.toml",
        "requirements/emulator.txt was made from another pyproject.toml",
    ]


def test_a_new_dependency_missing_from_the_lock_is_named(tmp_path: Path) -> None:
    changed = _project_copy(tmp_path, '"pyyaml>=6.0,<7",', '"pyyaml>=6.0,<7", "left-pad>=1",')

    found = lock.problems(pyproject=changed)

    assert "requirements/runtime.txt does not pin left-pad" in found


def test_a_pin_outside_its_range_is_named(tmp_path: Path) -> None:
    changed = _project_copy(tmp_path, '"pyyaml>=6.0,<7"', '"pyyaml>=7,<8"')
    pinned = lock.pins(ROOT / "requirements" / "runtime.txt")["pyyaml"]

    found = lock.problems(pyproject=changed)

    assert f"requirements/runtime.txt pins pyyaml {pinned[0]}, outside <8,>=7" in found


def test_any_edit_to_pyproject_makes_every_lock_file_out_of_date(tmp_path: Path) -> None:
    """The lock files are never older than the project file: a clean checkout's checks
    compare the two, so even a tool setting edited there is followed by `make lock`."""
    changed = _project_copy(tmp_path, "line-length = 100", "line-length = 99")

    found = lock.problems(pyproject=changed)

    assert len(found) == 4
    assert all(problem.endswith("was made from another pyproject.toml") for problem in found)


def test_an_edit_to_the_emulators_pyproject_makes_every_lock_file_out_of_date(
    tmp_path: Path,
) -> None:
    text = (ROOT / "emulator" / "pyproject.toml").read_text(encoding="utf-8")
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace('version = "0.1.0"', 'version = "0.1.1"'), encoding="utf-8")

    found = lock.problems(emulator=changed)

    assert len(found) == 4


def test_a_dependency_of_the_emulator_missing_from_its_lock_is_named(tmp_path: Path) -> None:
    text = (ROOT / "emulator" / "pyproject.toml").read_text(encoding="utf-8")
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace("dependencies = [", 'dependencies = [\n  "left-pad>=1",', 1))

    found = lock.problems(emulator=changed)

    assert "requirements/emulator.txt does not pin left-pad" in found
    assert "requirements/test.txt does not pin left-pad" in found


def test_a_missing_lock_file_is_named(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    (tmp_path / "requirements" / "build.txt").unlink()

    assert "requirements/build.txt is missing" in lock.problems(tmp_path / "requirements")


@pytest.mark.parametrize("name", ["build.txt", "runtime.txt", "test.txt", "emulator.txt"])
def test_every_pinned_release_carries_its_hashes(name: str) -> None:
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])

    unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]

    assert entries
    assert unhashed == []


def test_make_installs_the_test_set_from_the_lock_requiring_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert "LOCK := requirements/test.txt" in makefile
    assert "install --require-hashes -r $(LOCK)" in makefile
    assert "install --no-deps --no-build-isolation -e ." in makefile
    assert "install --no-deps --no-build-isolation -e ./emulator" in makefile


def test_the_emulators_image_pins_the_releases_its_tests_ran_with() -> None:
    tested = lock.pins(ROOT / "requirements" / "test.txt")
    shipped = lock.pins(ROOT / "requirements" / "emulator.txt")

    differing = {name: v for name, v in shipped.items() if v != tested.get(name)}

    assert shipped
    assert differing == {}
