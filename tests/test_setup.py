"""scripts/find-python: the set-up finds a Python >= 3.12 by running candidates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIND_PYTHON = REPO / "scripts" / "find-python"


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    # Only the fake candidates and the few tools the script uses: the machine's
    # own /usr/bin may hold any python3.x.
    tools = bin_dir.parent / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("ls", "sort", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHON", "PYENV_ROOT"}}
    env["PATH"] = f"{bin_dir}:{tools}"
    return subprocess.run([str(FIND_PYTHON)], env=env, capture_output=True, text=True)


def _real_python(path: Path) -> Path:
    return _script(path, f'exec "{sys.executable}" "$@"')


def _broken_shim(path: Path) -> Path:
    """Like a pyenv shim for a version that is installed but not selected."""
    return _script(path, 'echo "pyenv: python3.13: command not found" >&2; exit 127')


def test_a_failing_shim_is_skipped_for_the_next_candidate(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _broken_shim(bin_dir / "python3.13")
    _real_python(bin_dir / "python3.12")
    result = _run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable


def test_pyenv_versions_are_tried_after_the_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    root = tmp_path / "pyenv"
    _broken_shim(bin_dir / "python3.13")
    _script(bin_dir / "python3", "exit 1")  # an interpreter older than 3.12
    _script(root / "versions" / "3.11.7" / "bin" / "python3", "exit 1")
    _real_python(root / "versions" / "3.12.9" / "bin" / "python3")
    _script(bin_dir / "pyenv", f'[ "$1" = root ] && echo "{root}"')
    result = _run(bin_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable


def test_it_stops_with_a_clear_message_when_none_qualifies(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _broken_shim(bin_dir / "python3.13")
    _script(bin_dir / "python3", "exit 1")
    result = _run(bin_dir)
    assert result.returncode == 1
    assert "needs Python 3.12 or newer" in result.stderr
    assert "python3.13" in result.stderr  # says what it tried
