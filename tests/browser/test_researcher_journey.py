"""A researcher in Chromium: create a study, launch it, watch votes arrive, fit, read the report."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from studies.models import Fit, Study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _api(base: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _simulated_raters(base: str, slug: str, count: int) -> None:
    """Raters through the public API who prefer the image with more bits."""
    from studies.models import Trial

    for index in range(count):
        token = _api(base, f"/api/v1/studies/{slug}/sessions", {"participant": f"sim-{index}"})[
            "session"
        ]
        while not (body := _api(base, f"/api/v1/sessions/{token}/next", token=token)).get(
            "finished"
        ):
            trial = Trial.objects.get(public_id=body["trial"])
            choice = "left" if trial.left.bpp > trial.right.bpp else "right"
            vote = {"choice": choice, "client_vote_id": str(uuid.uuid4()), "response_ms": 800}
            _api(base, f"/api/v1/trials/{body['trial']}/vote", vote, token=token)


def test_a_researcher_creates_launches_and_fits_a_study(
    page: Any, live_server: Any, owner: Any, spec_folder: Path, run_worker: Any, tmp_path: Path
) -> None:
    folder_zip = tmp_path / "folder.zip"
    with zipfile.ZipFile(folder_zip, "w") as archive:
        for path in sorted((spec_folder / "images").glob("*.png")):
            archive.write(path, f"images/{path.name}")

    page.goto(f"{live_server.url}/studies/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "owner-pass-123")
    page.click("button[type=submit]")
    page.click("#new-study-link")
    page.set_input_files("#id_spec", str(spec_folder / "study.toml"))
    page.set_input_files("#id_folder", str(folder_zip))
    page.click("#create-study")
    page.wait_for_url("**/studies/spec-study/")
    assert "Queued" in page.text_content("#build")

    run_worker()  # the task worker encodes the stimuli
    # The page refreshes itself while work is under way: wait for it to show the result.
    page.wait_for_selector("#build", state="detached", timeout=30_000)
    page.click("#launch")
    page.wait_for_selector("#study-status:has-text('Open')")

    _simulated_raters(live_server.url, "spec-study", 6)
    page.reload()
    assert page.text_content("#vote-count") == "24"
    assert page.locator("#rater-table tbody tr").count() == 6

    page.click("#fit-now")
    page.wait_for_selector("#fits")
    assert "running in the background" in page.text_content("#fits")
    run_worker()  # the task worker fits
    page.wait_for_selector("#bd-rates", timeout=30_000)
    fit = Fit.objects.get()
    assert fit.status == Fit.Status.SUCCEEDED and fit.n_votes == 24
    report = page.frame_locator("iframe.report")
    report.locator("svg").first.wait_for()
    assert "webp" in page.text_content("#bd-rates")
    bundle = page.get_attribute(".bundle-link", "href")
    assert bundle == f"/studies/spec-study/fits/{fit.pk}/bundle.zip"
    with page.expect_download() as download:
        page.click(".bundle-link")
    data = Path(download.value.path()).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert f"spec-study-fit{fit.pk}/results/bd_rate.csv" in names
    assert Study.objects.get(slug="spec-study").status == Study.Status.OPEN
