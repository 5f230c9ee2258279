"""The researcher's commands: study_create, study_launch/pause/close, study_fit, study_bundle."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from studies import selectors, services
from studies.models import Condition, Fit, Stimulus, Study, StudyBuild, StudyStatus


def _repo_env() -> dict[str, str]:
    """The environment of a process that imports this checkout's analysis package."""
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _run(*args: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def created(spec_folder: Path, owner: Any, settings: Any, tmp_path: Path) -> Study:
    settings.VAR_DIR = tmp_path / "var"
    output = _run("study_create", str(spec_folder / "study.toml"), "--owner", "owner", "--wait")
    assert "Created draft study 'spec-study'" in output
    return Study.objects.get(slug="spec-study")


def test_study_create_builds_the_stimuli_of_the_spec(created: Study) -> None:
    assert created.status == StudyStatus.DRAFT
    assert created.completion_code == "SPEC-DONE"
    assert created.spec_text.startswith('slug = "spec-study"')
    build = StudyBuild.objects.get(study=created)
    assert build.status == StudyBuild.Status.SUCCEEDED
    assert (build.done, build.total) == (8, 8)  # 2 images x 2 codecs x 2 targets
    names = set(
        Condition.objects.filter(study=created, kind="study").values_list("name", flat=True)
    )
    assert names == {"jpeg-r1", "jpeg-r2", "webp-r1", "webp-r2"}
    for stimulus in Stimulus.objects.filter(condition__study=created, condition__kind="study"):
        assert stimulus.bpp == pytest.approx(stimulus.condition.target_bpp, rel=0.05)
        assert "psnr_rgb" in stimulus.metrics


def test_study_create_refuses_a_bad_spec_and_creates_nothing(spec_folder: Path, owner: Any) -> None:
    spec = spec_folder / "study.toml"
    spec.write_text(spec.read_text().replace('mode = "side-by-side"', 'mode = "tiled"'))
    with pytest.raises(CommandError, match=r"study.toml, line 7: display.mode"):
        call_command("study_create", str(spec), "--owner", "owner")
    assert not Study.objects.exists()


def test_a_build_that_cannot_reach_a_target_fails_with_the_reason(
    spec_folder: Path, owner: Any
) -> None:
    spec = spec_folder / "study.toml"
    spec.write_text(spec.read_text().replace("bpp = [1.0, 2.0]", "bpp = [1.0, 90.0]"))
    with pytest.raises(CommandError, match="targets not reached"):
        call_command("study_create", str(spec), "--owner", "owner", "--wait")
    study = Study.objects.get(slug="spec-study")
    assert not study.conditions.exists()  # nothing half-built
    assert StudyBuild.objects.get(study=study).status == StudyBuild.Status.FAILED


def test_launch_pause_and_close(created: Study) -> None:
    assert "is open" in _run("study_launch", "spec-study")
    assert "is paused" in _run("study_pause", "spec-study")
    assert "is open" in _run("study_launch", "spec-study")
    assert "is closed" in _run("study_close", "spec-study")
    with pytest.raises(CommandError, match="a closed study cannot become open"):
        call_command("study_launch", "spec-study")


def test_a_draft_without_stimuli_cannot_be_launched(spec_folder: Path, owner: Any) -> None:
    call_command("study_create", str(spec_folder / "study.toml"), "--owner", "owner")
    with pytest.raises(CommandError, match="has no stimuli yet"):
        call_command("study_launch", "spec-study")


def test_an_unknown_study_is_named(db: None) -> None:
    for command in ("study_launch", "study_pause", "study_close", "study_fit"):
        with pytest.raises(CommandError, match="no study with slug 'nope'"):
            call_command(command, "nope")


def _vote_all(study: Study, raters: int, *, contrary: str | None = None) -> None:
    """Raters who prefer more bits, and optionally one who always says the opposite."""
    for index in range(raters):
        name = f"p{index}"
        session, _ = services.rater_session_start(study=study, platform="direct", participant=name)
        while (trial := services.trial_next(session=session)) is not None:
            more_bits_left = trial.left.bpp > trial.right.bpp
            choice = "left" if more_bits_left != (name == contrary) else "right"
            services.vote_record(
                session=session,
                trial_id=trial.public_id,
                choice=choice,
                client_vote_id=uuid.uuid4(),
                response_ms=900,
                flips=0,
            )


@pytest.mark.slow
def test_exclusions_flow_into_fits_and_bundles(created: Study, owner: Any, tmp_path: Path) -> None:
    call_command("study_launch", "spec-study")
    created.refresh_from_db()
    _vote_all(created, 8, contrary="p0")
    contrary = services.rater_by_pseudonym(
        created, f"r{created.sessions.get(rater__external_id='p0').rater_id}"
    )
    services.exclusion_add(study=created, rater=contrary, by=owner, reason="answers reversed")
    output = _run("study_fit", "spec-study", "--seed", "5")
    fit = Fit.objects.get()
    assert fit.status == Fit.Status.SUCCEEDED, fit.error
    assert f"Fit {fit.pk}" in output
    assert fit.excluded_raters == [f"r{contrary.pk}"]
    assert fit.n_votes == 7 * 4  # the excluded rater's 4 votes are left out
    # The researcher's rater table carries the fit's estimate of each rater.
    estimates = {row["rater"]: row["estimate"] for row in selectors.rater_table(created, fit=fit)}
    assert estimates[f"r{contrary.pk}"] is None  # excluded: not in the fit
    included = [e for rater, e in estimates.items() if rater != f"r{contrary.pk}"]
    assert all(0 <= e["lapse_lo"] <= e["lapse"] <= e["lapse_hi"] <= 1 for e in included)

    bundle_path = tmp_path / "bundle.zip"
    assert "Wrote" in _run("study_bundle", "spec-study", "--out", str(bundle_path))
    with zipfile.ZipFile(bundle_path) as bundle:
        names = set(bundle.namelist())
        prefix = f"spec-study-fit{fit.pk}/"
        for name in (
            "README.md",
            "spec.toml",
            "study.json",
            "stimuli.csv",
            "screening.json",
            "votes.csv",
            "exclusions.csv",
            "conditions.csv",
            "fit.json",
            "results/bd_rate.csv",
            "results/elo.csv",
        ):
            assert prefix + name in names, name
        votes = bundle.read(prefix + "votes.csv").decode()
        assert votes.count("\n") == 8 * 4 + 1  # every vote, raw
        exclusions = bundle.read(prefix + "exclusions.csv").decode()
        assert f"r{contrary.pk},answers reversed,owner" in exclusions
        bundle.extractall(tmp_path / "unpacked")

    # Another lab re-runs the analysis from the bundle alone: the same numbers.
    folder = tmp_path / "unpacked" / prefix
    command = json.loads((folder / "fit.json").read_text())["command"]
    assert command[:4] == ["python", "-m", "analysis", "fit"]
    result = subprocess.run(
        [sys.executable, *command[1:]], cwd=folder, capture_output=True, text=True, env=_repo_env()
    )
    assert result.returncode == 0, result.stderr
    for name in ("bd_rate.csv", "elo.csv"):
        published = (folder / "results" / name).read_bytes()
        assert (folder / "reproduced" / name).read_bytes() == published, name


def test_demo_study_builds_an_active_study_to_rehearse(
    db: None, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studies import demo
    from studies.management.commands import demo_study
    from tests.conftest import small_sources, small_stimuli

    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-researcher.txt"
    # The small study's images and stimuli stand in for the demo's encodes.
    monkeypatch.setattr(demo, "demo_images", small_sources)
    monkeypatch.setattr(demo_study, "encode_ladders", lambda *a, **k: list(small_stimuli()))
    summary = _run(
        "demo_study",
        "--slug",
        "rehearse",
        "--no-screening",
        "--strategy",
        "active",
        "--refresh-every",
        "50",
        "--target-halfwidth",
        "8",
    )
    assert "Built study 'rehearse' (active pairs)" in summary
    study = Study.objects.get(slug="rehearse")
    assert (study.sampling_strategy, study.refresh_every, study.target_halfwidth) == (
        "active",
        50,
        8.0,
    )
    assert not study.screening_required
