"""Creating a study from the browser: a spec and a zip of its folders."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from studies import services
from studies.models import Study, StudyBuild


def _zip(folder: Path, *, prefix: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, prefix + str(path.relative_to(folder)))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _upload(client: Client, spec: str, folder_zip: bytes | None) -> Any:
    files = {"spec": SimpleUploadedFile("study.toml", spec.encode(), "application/toml")}
    if folder_zip is not None:
        files["folder"] = SimpleUploadedFile("folder.zip", folder_zip, "application/zip")
    return client.post("/studies/new/", files)


@pytest.mark.parametrize("prefix", ["", "my-study/"])
def test_an_upload_creates_a_draft_whose_build_is_queued(
    client: Client, owner: Any, spec_folder: Path, prefix: str
) -> None:
    client.force_login(owner)
    spec = (spec_folder / "study.toml").read_text()
    response = _upload(client, spec, _zip(spec_folder, prefix=prefix))
    assert response.status_code == 302
    assert response["Location"] == "/studies/spec-study/"
    study = Study.objects.get(slug="spec-study")
    assert (study.owner, study.status) == (owner, Study.Status.DRAFT)
    build = StudyBuild.objects.get(study=study)
    assert build.status == StudyBuild.Status.QUEUED
    build = services.study_build_run(build_id=build.pk)  # what the worker does
    assert build.status == StudyBuild.Status.SUCCEEDED, build.message
    assert study.source_images.count() == 2
    page = client.get("/studies/spec-study/")
    assert b'id="launch"' in page.content


def test_spec_problems_are_shown_and_nothing_is_created(
    client: Client, owner: Any, spec_folder: Path, settings: Any
) -> None:
    client.force_login(owner)
    spec = (spec_folder / "study.toml").read_text().replace("trials = 4", "trials = -4")
    response = _upload(client, spec, _zip(spec_folder))
    assert response.status_code == 200
    assert (
        b"study.toml, line 11: session.trials: expected a positive whole number" in response.content
    )
    assert not Study.objects.exists()
    assert not any((Path(settings.MEDIA_ROOT) / "uploads").iterdir())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../escape.png", b"points outside its folder"),
        ("/etc/passwd", b"points outside its folder"),
    ],
)
def test_a_zip_that_escapes_its_folder_is_refused(
    client: Client, owner: Any, spec_folder: Path, entry: str, message: bytes
) -> None:
    client.force_login(owner)
    spec = (spec_folder / "study.toml").read_text()
    response = _upload(client, spec, _zip(spec_folder, extra={entry: b"x"}))
    assert message in response.content
    assert not Study.objects.exists()


def test_a_file_that_is_not_a_zip_is_refused(client: Client, owner: Any, spec_folder: Path) -> None:
    client.force_login(owner)
    response = _upload(client, (spec_folder / "study.toml").read_text(), b"not a zip")
    assert b"not a zip file" in response.content
    assert not Study.objects.exists()


def test_uploading_needs_a_login(client: Client, spec_folder: Path, db: None) -> None:
    response = _upload(client, (spec_folder / "study.toml").read_text(), None)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Study.objects.exists()
