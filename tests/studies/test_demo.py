"""The demo study end to end: build, rate through the API, export, fit."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from studies import demo
from studies.models import Condition, SourceImage, Stimulus, Study, Trial, Vote

REPO = Path(__file__).resolve().parents[2]
# Rate control stops within 3% where the setting allows; integer quality
# settings (JPEG, AVIF) move in steps of up to about 6% at these rates.
CONTINUOUS_CODECS_RTOL = 0.03
INTEGER_CODECS_RTOL = 0.08
# Simulated raters of the end-to-end run: 60 x 20 counted trials.
RATERS = 60


def test_demo_images_are_the_photographs_and_a_graphics_image() -> None:
    images = demo.demo_images()
    assert set(images) == {"astronaut", "chelsea", "coffee", "rocket", "motorcycle", "graphics"}
    for rgb in images.values():
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert max(rgb.shape[:2]) <= demo.DEMO_MAX_SIDE
    graphics = images["graphics"].astype(int)
    # Sharp graphics: many pixel-to-pixel jumps of more than half the range.
    jumps = np.abs(np.diff(graphics, axis=1)).max(axis=2) > 128
    assert jumps.sum() > 1000


def test_the_researcher_password_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "var" / "pw.txt"
    password, created = demo.researcher_password(path)
    assert created and len(password) >= 12
    assert (path.stat().st_mode & 0o777) == 0o600
    assert demo.researcher_password(path) == (password, False)


def _simulated_choice(trial: Any, rng: np.random.Generator, quality: dict[str, float]) -> str:
    """A simulated observer: Bradley-Terry on a known quality per condition (Elo scale)."""
    diff = quality[trial["left_condition"]] - quality[trial["right_condition"]]
    p_left = 1.0 / (1.0 + 10 ** (-diff / 400))
    return "left" if rng.random() < p_left else "right"


@pytest.fixture
def built_demo(db: None, settings: Any, tmp_path: Path) -> Study:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-researcher.txt"
    settings.VAR_DIR = tmp_path
    call_command("demo_study", "--slug", "demo", "--no-screening")
    return Study.objects.get(slug="demo")


@pytest.mark.slow
def test_the_demo_builds_rates_exports_and_fits(
    built_demo: Study, client: Client, tmp_path: Path, settings: Any
) -> None:
    study = built_demo
    assert study.is_open and not study.screening_required
    assert SourceImage.objects.filter(study=study).count() == 6
    assert Condition.objects.filter(study=study, kind="study").count() == 16
    assert Condition.objects.filter(study=study).exclude(kind="study").count() == 2
    stimuli = Stimulus.objects.filter(condition__study=study, condition__kind="study")
    stimuli = stimuli.select_related("condition")
    assert stimuli.count() == 96
    for stimulus in stimuli:
        target = stimulus.condition.target_bpp
        rtol = (
            CONTINUOUS_CODECS_RTOL if stimulus.condition.codec in {"webp"} else INTEGER_CODECS_RTOL
        )
        if stimulus.condition.codec == "jxl":
            rtol = INTEGER_CODECS_RTOL  # see BENCHMARKS.md: JXL's rate has small jumps
        assert stimulus.bpp == pytest.approx(target, rel=rtol), (stimulus, stimulus.bpp)
        assert Path(stimulus.file.path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Objective metrics are stored with every stimulus and exported beside bpp.
    assert set(stimuli[0].metrics) == {"psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ssimulacra2"}
    # A second run changes nothing.
    before = sorted(Stimulus.objects.values_list("sha256", flat=True))
    call_command("demo_study", "--slug", "demo")
    assert sorted(Stimulus.objects.values_list("sha256", flat=True)) == before

    # Known truth: quality grows with log-bpp, and the newer codecs need fewer bits.
    efficiency = {"jpeg": 1.0, "webp": 1.3, "avif": 1.8, "jxl": 1.5}
    quality = {
        c.name: 300 * math.log((c.target_bpp or 0) * efficiency[c.codec])
        for c in Condition.objects.filter(study=study, kind="study")
    }
    rng = np.random.default_rng(7)
    for rater in range(RATERS):
        token = client.post(
            "/api/v1/studies/demo/sessions",
            data=json.dumps({"participant": f"sim-{rater}"}),
            content_type="application/json",
        ).json()["session"]
        auth = {"Authorization": f"Bearer {token}"}
        while not (body := client.get(f"/api/v1/sessions/{token}/next", headers=auth).json()).get(
            "finished"
        ):
            trial = Trial.objects.get(public_id=body["trial"])
            names = {
                "left_condition": trial.left.condition.name,
                "right_condition": trial.right.condition.name,
            }
            # An attentive observer: checks and practice pairs are answered right.
            choice = trial.golden_answer or _simulated_choice(names, rng, quality)
            response = client.post(
                f"/api/v1/trials/{body['trial']}/vote",
                data=json.dumps(
                    {"choice": choice, "client_vote_id": str(uuid.uuid4()), "response_ms": 2000}
                ),
                content_type="application/json",
                headers=auth,
            )
            assert response.status_code == 201
    counted = Vote.objects.filter(trial__is_practice=False)
    assert counted.count() == RATERS * demo.DEMO_TRIALS_PER_SESSION
    golden = counted.filter(trial__is_golden=True).count()
    assert golden == RATERS * round(Study.DEFAULT_GOLDEN_RATE * demo.DEMO_TRIALS_PER_SESSION)

    export = tmp_path / "export"
    call_command("export_votes", "demo", "--out", str(export))
    with (export / "votes.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == RATERS * demo.DEMO_TRIALS_PER_SESSION
    with (export / "conditions.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header[:4] == ["condition", "codec", "image", "bpp"]
    assert "ssimulacra2" in header
    out = tmp_path / "fit"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "fit",
            str(export / "votes.csv"),
            "--conditions",
            str(export / "conditions.csv"),
            "--anchor",
            "jpeg",
            "--out",
            str(out),
            "--seed",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    with (out / "bd_rate.csv").open(encoding="utf-8") as handle:
        rows = {row["codec"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"webp", "avif", "jxl"}
    # The simulated truth: equal quality at bpp / efficiency, so BD = 1/efficiency - 1.
    for codec, row in rows.items():
        truth = 100 * (1 / efficiency[codec] - 1)
        low, high = float(row["bd_rate_lo"]), float(row["bd_rate_hi"])
        assert low <= truth <= high, (codec, truth, row)
        assert high - low < 50, (codec, row)  # ~1,100 comparisons pin it down to tens of points
    assert float(rows["avif"]["bd_rate_hi"]) < 0  # the largest saving is resolved
    diagnostics = json.loads((out / "diagnostics.json").read_text(encoding="utf-8"))
    assert diagnostics["n_votes"] == RATERS * demo.DEMO_TRIALS_PER_SESSION - golden
    assert diagnostics["n_golden_excluded"] == golden
    assert (out / "report.html").read_text(encoding="utf-8").count("<svg") >= 1
    with (out / "elo.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 16
