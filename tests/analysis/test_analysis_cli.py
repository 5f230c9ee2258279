"""``python -m analysis fit`` end to end, as a researcher runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import EXIT_INPUT, EXIT_OK, main
from analysis.fit import OUTPUT_FILES, fit_study, write_outputs
from analysis.io import read_conditions, read_votes
from analysis.types import BD_RATE_COLUMNS, BD_RATE_EXTRA_COLUMNS, ELO_COLUMNS

#: The small study the CLI is run on: fewer votes than the shared fit, same design.
CLI_SEED = 77
CLI_VOTES = 800
CLI_GOLDEN = 12
#: Generous limit for one CLI run (import, compile, sample); only a guard against hangs.
TIMEOUT_SECONDS = 300

DIAGNOSTIC_KEYS = (
    "r_hat_max",
    "ess_bulk_min",
    "divergences",
    "seconds",
    "n_votes",
    "n_golden_excluded",
    "seed",
    "draws",
    "chains",
    "versions",
    "bd_rate_unusable",
)


def _analysis(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env=env,
    )


@pytest.fixture
def study_files(tmp_path: Path, simulate) -> tuple[Path, Path]:
    study = simulate(seed=CLI_SEED, n_votes=CLI_VOTES, n_golden=CLI_GOLDEN)
    votes, conditions = tmp_path / "votes.csv", tmp_path / "conditions.csv"
    study.votes.to_csv(votes, index=False)
    study.conditions.to_csv(conditions, index=False)
    return votes, conditions


@pytest.mark.slow
def test_fit_writes_all_four_files_with_the_public_headers_reproducibly(
    study_files: tuple[Path, Path], tmp_path: Path
) -> None:
    votes, conditions = study_files
    run = _analysis(
        "fit", "votes.csv", "--conditions", "conditions.csv", "--anchor", "jpeg",
        "--out", "results", "--seed", "5",
        cwd=tmp_path,
    )  # fmt: skip

    assert run.returncode == EXIT_OK, run.stderr
    stdout = run.stdout.splitlines()
    assert stdout[0].startswith(f"fit {CLI_VOTES} votes ({CLI_GOLDEN} golden left out), ")
    out = tmp_path / "results"
    # The four files of the first version come first; the others were added later.
    contract = ["elo.csv", "bd_rate.csv", "diagnostics.json", "report.html"]
    expected_files = list(OUTPUT_FILES.values())
    assert expected_files[:4] == contract
    assert stdout[1:] == [str(Path("results") / name) for name in expected_files]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected_files)

    elo_text = (out / "elo.csv").read_text(encoding="utf-8")
    bd_text = (out / "bd_rate.csv").read_text(encoding="utf-8")
    assert elo_text.splitlines()[0] == ",".join(ELO_COLUMNS)
    assert bd_text.splitlines()[0] == ",".join((*BD_RATE_COLUMNS, *BD_RATE_EXTRA_COLUMNS))
    assert len(pd.read_csv(out / "elo.csv")) == pd.read_csv(conditions)["condition"].nunique()
    assert pd.read_csv(out / "bd_rate.csv")["codec"].tolist() == ["webp", "avif", "pico"]
    assert "nan" not in (elo_text + bd_text).lower()

    diagnostics = json.loads((out / "diagnostics.json").read_text(encoding="utf-8"))
    assert set(DIAGNOSTIC_KEYS) <= set(diagnostics)
    assert diagnostics["n_votes"] == CLI_VOTES
    assert diagnostics["n_golden_excluded"] == CLI_GOLDEN
    assert diagnostics["seed"] == 5
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # Nothing else was left next to the output directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conditions.csv",
        "results",
        "votes.csv",
    ]

    # The library, in this process and with the same seed, writes the same numbers.
    result = fit_study(read_votes(votes), read_conditions(conditions), anchor="jpeg", seed=5)
    again = write_outputs(result, tmp_path / "again")
    assert again["elo"].read_text(encoding="utf-8") == elo_text
    assert again["bd_rate"].read_text(encoding="utf-8") == bd_text


@pytest.mark.slow
def test_a_fit_compiled_afresh_gives_the_draws_of_one_read_from_the_compile_cache(
    study_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """PyTensor keeps compiled kernels on disk: the first fit on an empty cache compiles
    them, the second reads them back. Both must give the same numbers (with fast-math
    kernels they did not)."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'compiled'}"}
    outputs = []
    for run in ("fresh", "cached"):
        result = _analysis(
            "fit", "votes.csv", "--conditions", "conditions.csv", "--anchor", "jpeg",
            "--out", run, "--seed", "5",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert result.returncode == EXIT_OK, result.stderr
        outputs.append(
            [(tmp_path / run / name).read_bytes() for name in ("elo.csv", "bd_rate.csv")]
        )
    assert (tmp_path / "compiled").is_dir()
    assert outputs[0] == outputs[1]


def test_bad_input_exits_with_status_2_a_located_message_and_no_outputs(
    study_files: tuple[Path, Path], tmp_path: Path
) -> None:
    votes, _ = study_files
    lines = votes.read_text(encoding="utf-8").splitlines()
    fields = lines[9].split(",")
    fields[4] = "maybe"  # the choice column of line 10
    lines[9] = ",".join(fields)
    votes.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run = _analysis(
        "fit", "votes.csv", "--conditions", "conditions.csv", "--anchor", "jpeg",
        "--out", "results",
        cwd=tmp_path,
    )  # fmt: skip

    assert run.returncode == EXIT_INPUT
    assert run.stderr == "error: votes.csv, line 10: choice 'maybe' is not one of a, b, tie\n"
    assert run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conditions.csv", "votes.csv"]


def test_fewer_than_two_chains_is_refused_before_fitting(
    study_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes, conditions = study_files
    argv = ["fit", str(votes), "--conditions", str(conditions), "--anchor", "jpeg"]
    status = main([*argv, "--out", str(tmp_path / "out"), "--chains", "1"])

    assert status == EXIT_INPUT
    assert "--chains must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_malformed_command_line_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["fit", "votes.csv", "--conditions", "conditions.csv", "--out", "x"])
    assert raised.value.code == EXIT_INPUT
    assert "--anchor" in capsys.readouterr().err
