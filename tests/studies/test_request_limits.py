"""Oversized request bodies: 413 from the rater API, a clear refusal of a study upload;
nothing stored or written either way."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from studies import forms
from studies.models import RaterSession, Study, StudyBuild, Vote

API_LIMIT = 2048


@pytest.fixture(autouse=True)
def _api_limit(settings: Any) -> None:
    settings.RATER_API_MAX_BODY_BYTES = API_LIMIT


def _post(client: Client, url: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(url, data=json.dumps(body), content_type="application/json", headers=headers)


def _padded(body: dict[str, Any], size: int) -> dict[str, Any]:
    """The body with an ignored field that makes its JSON exactly ``size`` bytes."""
    padded = {**body, "padding": ""}
    padded["padding"] = "x" * (size - len(json.dumps(padded)))
    assert len(json.dumps(padded)) == size
    return padded


def test_an_oversized_session_start_is_413_and_starts_nothing(client: Client, study: Study) -> None:
    url = f"/api/v1/studies/{study.slug}/sessions"
    response = _post(client, url, _padded({"participant": "p1"}, API_LIMIT + 1))
    assert response.status_code == 413
    assert f"larger than the {API_LIMIT} bytes" in response.json()["error"]
    assert not RaterSession.objects.exists()
    assert _post(client, url, _padded({"participant": "p1"}, API_LIMIT)).status_code == 201


def test_an_oversized_vote_is_413_and_stores_nothing(client: Client, study: Study) -> None:
    token = _post(client, f"/api/v1/studies/{study.slug}/sessions", {"participant": "p1"}).json()[
        "session"
    ]
    trial = client.get(
        f"/api/v1/sessions/{token}/next", headers={"Authorization": f"Bearer {token}"}
    ).json()["trial"]
    vote = {"choice": "left", "client_vote_id": str(uuid.uuid4()), "response_ms": 1500}
    url = f"/api/v1/trials/{trial}/vote"
    response = _post(client, url, _padded(vote, API_LIMIT + 1), token)
    assert response.status_code == 413
    assert "error" in response.json()
    assert not Vote.objects.exists()
    assert _post(client, url, _padded(vote, API_LIMIT), token).status_code == 201


def test_an_oversized_body_is_refused_by_its_declared_length_before_it_is_read(
    client: Client, study: Study
) -> None:
    response = client.generic(
        "POST",
        f"/api/v1/studies/{study.slug}/sessions",
        data=b'{"participant": "p1"}',
        content_type="application/json",
        CONTENT_LENGTH=str(10 * API_LIMIT),
    )
    assert response.status_code == 413
    assert not RaterSession.objects.exists()


def _upload(client: Client, spec: bytes, folder_zip: bytes) -> Any:
    return client.post(
        "/studies/new/",
        {
            "spec": SimpleUploadedFile("study.toml", spec, "application/toml"),
            "folder": SimpleUploadedFile("folder.zip", folder_zip, "application/zip"),
        },
    )


def _zip_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, str(path.relative_to(folder)))
    return buffer.getvalue()


def test_an_oversized_upload_is_refused_clearly_before_anything_is_written(
    client: Client, owner: Any, spec_folder: Path, settings: Any, tmp_path: Path
) -> None:
    client.force_login(owner)
    spec = (spec_folder / "study.toml").read_bytes()
    folder_zip = _zip_of(spec_folder)
    # Every uploaded byte would go to a temporary folder that does not exist: a
    # file the handlers began to write would fail the request.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "missing")
    settings.STUDY_UPLOAD_MAX_BYTES = len(folder_zip) // 2
    response = _upload(client, spec, folder_zip)
    assert response.status_code == 413
    assert b"at most" in response.content and b"STUDY_UPLOAD_MAX_BYTES" in response.content
    assert not Study.objects.exists() and not StudyBuild.objects.exists()
    assert not (Path(settings.MEDIA_ROOT) / "uploads").exists()
    # The same upload under the limit is written (to the missing folder: it fails).
    settings.STUDY_UPLOAD_MAX_BYTES = 10 * len(folder_zip)
    with pytest.raises(FileNotFoundError):
        _upload(client, spec, folder_zip)


def test_an_oversized_study_definition_file_is_refused_with_its_size(
    client: Client, owner: Any, spec_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.force_login(owner)
    monkeypatch.setattr(forms, "SPEC_MAX_BYTES", 100)
    response = _upload(client, (spec_folder / "study.toml").read_bytes(), _zip_of(spec_folder))
    assert response.status_code == 200
    assert b"bytes; at most 100 are accepted" in response.content
    assert not Study.objects.exists()
