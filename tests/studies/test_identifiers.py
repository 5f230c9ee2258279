"""What raters see of trials, sessions and images cannot be guessed from one another."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.test import Client

from studies.models import IMAGE_TOKEN_BYTES, SESSION_TOKEN_BYTES, RaterSession, Study, Trial

# Bits of randomness below which a token could be guessed by brute force.
MIN_TOKEN_BITS = 128


def _start(client: Client, study: Study, participant: str) -> str:
    response = client.post(
        f"/api/v1/studies/{study.slug}/sessions",
        data=json.dumps({"participant": participant}),
        content_type="application/json",
    )
    return str(response.json()["session"])


def _answer_all(client: Client, token: str) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {token}"}
    seen: list[dict[str, Any]] = []
    while True:
        body = client.get(f"/api/v1/sessions/{token}/next", headers=auth).json()
        if body.get("finished"):
            return seen
        seen.append(body)
        vote = {"choice": "left", "client_vote_id": str(uuid.uuid4()), "response_ms": 1500}
        client.post(
            f"/api/v1/trials/{body['trial']}/vote",
            data=json.dumps(vote),
            content_type="application/json",
            headers=auth,
        )


def test_trial_ids_are_random_uuids_unrelated_to_their_order(client: Client, study: Study) -> None:
    trials = [t for p in ("p1", "p2") for t in _answer_all(client, _start(client, study, p))]
    ids = [uuid.UUID(t["trial"]) for t in trials]
    assert len(ids) == 8 and len(set(ids)) == len(ids)
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    # Issued in order (the database's ids), while the public ids are in no order.
    stored = Trial.objects.order_by("pk")
    assert [str(t.public_id) for t in stored] == [t["trial"] for t in trials]
    assert ids not in (sorted(ids), sorted(ids, reverse=True))
    # No two share a prefix a guess could start from.
    assert len({str(i)[:8] for i in ids}) == len(ids)


def test_session_and_image_tokens_are_long_random_strings(client: Client, study: Study) -> None:
    assert SESSION_TOKEN_BYTES * 8 >= MIN_TOKEN_BITS and IMAGE_TOKEN_BYTES * 8 >= MIN_TOKEN_BITS
    tokens = [_start(client, study, f"p{i}") for i in range(5)]
    assert len(set(tokens)) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)
    trial = _answer_all(client, tokens[0])[0]
    image_tokens = {url.rsplit("/", 1)[-1].removesuffix(".png") for url in trial["images"].values()}
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in image_tokens)
    assert RaterSession.objects.count() == 5


def test_a_guessed_session_token_or_trial_id_gets_nothing(client: Client, study: Study) -> None:
    token = _start(client, study, "p1")
    guess = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get(
        f"/api/v1/sessions/{guess}/next", headers={"Authorization": f"Bearer {guess}"}
    )
    assert response.status_code == 401
    assert not Trial.objects.exists()
