"""Nothing a rater can see names a codec, a condition or a bitrate."""

from __future__ import annotations

import json
import re
import struct
import uuid
from typing import Any

from django.contrib.staticfiles import finders
from django.test import Client

from screening.models import PlateItem
from studies.models import Condition, Stimulus, Study, Trial

ALLOWED_PNG_CHUNKS = {b"IHDR", b"IDAT", b"IEND"}


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        chunks.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return chunks


def _forbidden(study: Study) -> set[str]:
    """Codec and condition names, condition ids, library names and bpp values."""
    words: set[str] = set()
    for condition in Condition.objects.filter(study=study):
        words |= {condition.name, condition.codec, f"condition-{condition.pk}"}
    for stimulus in Stimulus.objects.filter(condition__study=study):
        words |= {f"{stimulus.bpp:.4g}", f"{stimulus.bpp:.6f}", stimulus.codec_library}
        words |= {str(v) for v in stimulus.settings.values() if isinstance(v, str)}
    return {w for w in words if len(w) >= 3}


def _visible_text(response: Any) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    body = response.getvalue() if response.streaming else response.content
    return headers + "\n" + body.decode("utf-8", errors="replace")


def test_no_rater_visible_response_names_a_condition(
    client: Client, make_study: Any, artifact_bank: int
) -> None:
    study = make_study(
        slug="blind",
        screening_required=True,
        practice_trials=1,
        golden_rate=0.25,
        trials_per_session=4,
    )
    forbidden = _forbidden(study)
    assert {"jpeg", "webp", "jpeg-r1", "golden"} <= forbidden
    seen: list[tuple[str, str]] = []

    def visit(method: str, url: str, **kwargs: Any) -> Any:
        response = getattr(client, method)(url, **kwargs)
        seen.append((url, _visible_text(response)))
        return response

    entry = visit("get", f"/r/{study.slug}/?PROLIFIC_PID=p&STUDY_ID=s&SESSION_ID=x")
    form = entry.context["form"]
    visit("post", f"/r/{study.slug}/", data={n: form[n].value() or "" for n in form.fields})
    check = visit("get", f"/screening/{study.slug}/display/")
    assert check.status_code == 200
    report = dict(
        device_pixel_ratio=1,
        viewport_width=1400,
        viewport_height=900,
        screen_width=1400,
        screen_height=900,
        color_depth=24,
    )
    visit("post", f"/screening/{study.slug}/display/", data=report)
    # Colour plates and the artifact staircase, answered as a person with good eyes would.
    url = f"/screening/{study.slug}/"
    while url.startswith("/screening/"):
        page = visit("get", url)
        if page.status_code == 200 and "/colour/" in url:
            token = re.search(rb'name="plate" value="([^"]+)"', page.content)
            assert token is not None
            plate = PlateItem.objects.get(token=token.group(1).decode())
            visit("get", f"/screening/p/{plate.token}.png")
            page = visit("post", url, data={"plate": plate.token, "answer": plate.expected})
        elif page.status_code == 200 and "/artifacts/" in url:
            trial = page.context["trial"]
            for side in ("l", "r"):
                visit("get", f"/screening/a/{trial.token}-{side}.png")
            answer = {"position": trial.position, "answer": trial.compressed_side}
            page = visit("post", url, data=answer)
        assert page.status_code == 302, url
        url = page["Location"]
    assert url == f"/r/{study.slug}/rate/"
    viewer = visit("get", f"/r/{study.slug}/rate/")
    token = re.search(rb'data-session="([^"]+)"', viewer.content)
    assert token is not None
    auth = {"Authorization": f"Bearer {token.group(1).decode()}"}
    for static in ("studies/viewer.js", "screening/display.js", "evalsite/site.css"):
        path = finders.find(static)
        assert isinstance(path, str)
        with open(path, encoding="utf-8") as handle:
            seen.append((static, handle.read()))

    images: set[str] = set()
    while True:
        body = visit("get", f"/api/v1/sessions/{token.group(1).decode()}/next", headers=auth).json()
        if body.get("finished"):
            break
        for trial in (body, body.get("next") or {}):
            images |= set(trial.get("images", {}).values())
        vote = {"choice": "right", "client_vote_id": str(uuid.uuid4()), "response_ms": 1200}
        visit(
            "post",
            f"/api/v1/trials/{body['trial']}/vote",
            data=json.dumps(vote),
            content_type="application/json",
            headers=auth,
        )
    visit("get", f"/r/{study.slug}/done/")
    assert Trial.objects.filter(is_golden=True).exists()
    assert Trial.objects.filter(is_practice=True).exists()

    # Image URLs: the same shape for the original and every condition.
    assert len(images) >= 5
    for url in images:
        assert re.fullmatch(r"/i/[0-9a-f]{32}\.png", url), url
        response = client.get(url)
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        seen.append((url, headers))
        assert set(_png_chunks(response.getvalue())) <= ALLOWED_PNG_CHUNKS

    leaks = [
        (url, word) for url, text in seen for word in forbidden if word.lower() in text.lower()
    ]
    assert leaks == []
