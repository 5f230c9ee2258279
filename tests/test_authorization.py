"""The authorisation matrix: every URL pattern, who may use it, and proof for each role.

Every named URL pattern of the site must have a rule here; a new pattern
without one fails ``test_every_url_pattern_has_a_rule``. Each rule lists, for
each role, the status codes that role may get; anything else (in particular
a 200 where a refusal is due) fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from studies import services
from studies.models import Fit, RaterSession, Trial

ROLES = (
    "anonymous",
    "rater",  # the session's own rater (browser session cookie and bearer token)
    "other_rater",  # another rater of the same study
    "owner",
    "collaborator",
    "other_researcher",
    "staff",
)
LOGIN = "login"  # a redirect to the login page
OK = {200}
REDIRECT = {302}
NOT_FOUND = {404}


@dataclass(frozen=True)
class Rule:
    method: str
    kwargs: Callable[[dict[str, Any]], dict[str, Any]]
    allowed: dict[str, set[int] | str]
    body: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda w: {})
    json_body: bool = False


def _researcher_only(method: str = "get", **extra: Any) -> dict[str, set[int] | str]:
    """Owner, collaborator and staff may; another researcher gets 404; nobody else gets in."""
    allowed_status = extra.get("status", REDIRECT if method == "post" else OK)
    return {
        "anonymous": LOGIN,
        "rater": LOGIN,
        "other_rater": LOGIN,
        "owner": allowed_status,
        "collaborator": extra.get("collaborator", allowed_status),
        "other_researcher": NOT_FOUND,
        "staff": allowed_status,
    }


def _everyone(status: set[int]) -> dict[str, set[int] | str]:
    return dict.fromkeys(ROLES, status)


SLUG = lambda w: {"slug": w["study"].slug}  # noqa: E731 - a table of tiny lambdas reads best

RULES: dict[str, Rule] = {
    "home": Rule("get", lambda w: {}, _everyone(REDIRECT)),
    "login": Rule("get", lambda w: {}, _everyone(OK)),
    "logout": Rule("post", lambda w: {}, _everyone(REDIRECT)),
    # The rater's pages: anyone may open the study link; the rest needs the session.
    # Each rater of the study resumes their own session; nobody sees another's.
    "studies:rater_entry": Rule(
        "get", SLUG, {**_everyone(OK), "rater": REDIRECT, "other_rater": REDIRECT}
    ),
    "studies:rater_viewer": Rule(
        "get", SLUG, {**_everyone(REDIRECT), "rater": OK, "other_rater": OK}
    ),
    "studies:rater_done": Rule("get", SLUG, _everyone(REDIRECT)),  # not finished yet
    # Images: the unguessable token is the credential (raters' browsers load them).
    "studies:image": Rule("get", lambda w: {"token": w["stimulus_token"]}, _everyone(OK)),
    # The rater API: bearer tokens.
    "studies:api_session_start": Rule(
        "post",
        SLUG,
        _everyone({200, 201}),
        body=lambda w: {"participant": f"api-{uuid.uuid4().hex[:8]}"},
        json_body=True,
    ),
    "studies:api_session_next": Rule(
        "get",
        lambda w: {"token": w["session"].token},
        {**_everyone({401}), "rater": OK},
    ),
    "studies:api_trial_vote": Rule(
        "post",
        lambda w: {"trial_id": w["trial"].public_id},
        {**_everyone({401}), "rater": {201}, "other_rater": {403}},
        body=lambda w: {"choice": "left", "client_vote_id": str(uuid.uuid4()), "response_ms": 1},
        json_body=True,
    ),
    # Researcher pages.
    "studies:study_list": Rule("get", lambda w: {}, {**_researcher_only(), "other_researcher": OK}),
    "studies:study_new": Rule("get", lambda w: {}, {**_researcher_only(), "other_researcher": OK}),
    "studies:study_detail": Rule("get", SLUG, _researcher_only()),
    "studies:study_status": Rule(
        "post", lambda w: {"slug": w["study"].slug, "action": "pause"}, _researcher_only("post")
    ),
    "studies:study_fit": Rule("post", SLUG, _researcher_only("post")),
    "studies:rater_exclusion": Rule(
        "post",
        lambda w: {"slug": w["study"].slug, "rater": f"r{w['session'].rater_id}"},
        _researcher_only("post"),
        body=lambda w: {"reason": "test"},
    ),
    "studies:study_collaborators": Rule(
        "post",
        SLUG,
        _researcher_only("post", collaborator=NOT_FOUND),  # sharing is the owner's call
        body=lambda w: {"username": "other"},
    ),
    "studies:fit_bundle": Rule(
        "get",
        lambda w: {"slug": w["study"].slug, "fit_id": w["fit"].pk},
        _researcher_only(status=NOT_FOUND),  # the fake fit has no inputs: 404 even if allowed
    ),
    "studies:fit_file": Rule(
        "get",
        lambda w: {"slug": w["study"].slug, "fit_id": w["fit"].pk, "name": "report.html"},
        _researcher_only(),
    ),
    "studies:study_export": Rule(
        "get", lambda w: {"slug": w["study"].slug, "table": "votes"}, _researcher_only()
    ),
    # Screening: the rater's own steps; researchers' statistics.
    "screening:next": Rule("get", SLUG, _everyone(REDIRECT)),
    "screening:display_check": Rule("get", SLUG, _everyone(REDIRECT)),
    "screening:colour": Rule("get", SLUG, _everyone(REDIRECT)),
    "screening:artifacts": Rule("get", SLUG, _everyone(REDIRECT)),
    "screening:stats": Rule("get", SLUG, _researcher_only()),
    "screening:plate_image": Rule("get", lambda w: {"token": "0" * 32}, _everyone(NOT_FOUND)),
    "screening:artifact_image": Rule(
        "get", lambda w: {"token": "0" * 32, "side": "l"}, _everyone(NOT_FOUND)
    ),
}
# The admin: staff only; everyone else is sent to the admin's login.
ADMIN_RULE = Rule("get", lambda w: {}, {**_everyone(REDIRECT), "staff": OK})


def _names(patterns: list[Any], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def test_every_url_pattern_has_a_rule() -> None:
    names = _names(get_resolver().url_patterns)
    unruled = sorted(n for n in names if n not in RULES and not n.startswith("admin:"))
    assert unruled == []
    assert sorted(set(RULES) - names) == []  # no rule for a pattern that is gone


@pytest.fixture
def world(
    make_study: Any, owner: Any, other_researcher: Any, django_user_model: Any, tmp_path: Path
) -> dict[str, Any]:
    study = make_study(slug="guarded")
    collaborator = django_user_model.objects.create_user(
        username="colleague", password="pw-1234567"
    )
    services.collaborator_add(study=study, username="colleague")
    staff = django_user_model.objects.create_superuser(username="staff", password="pw-1234567")
    clients = {role: Client() for role in ROLES}
    for role, user in (
        ("owner", owner),
        ("collaborator", collaborator),
        ("other_researcher", other_researcher),
        ("staff", staff),
    ):
        clients[role].force_login(user)
    sessions = {}
    for role in ("rater", "other_rater"):
        page = clients[role].get(f"/r/{study.slug}/?participant={role}")
        form = page.context["form"]
        clients[role].post(f"/r/{study.slug}/", {n: form[n].value() or "" for n in form.fields})
        sessions[role] = RaterSession.objects.get(rater__external_id=role)
    trial = services.trial_next(session=sessions["rater"])
    assert isinstance(trial, Trial)
    fit_dir = Path(settings.MEDIA_ROOT) / "fits" / "guarded" / "x"
    fit_dir.mkdir(parents=True)
    (fit_dir / "report.html").write_text("<html></html>")
    fit = Fit.objects.create(
        study=study,
        anchor_codec="jpeg",
        seed=1,
        status=Fit.Status.SUCCEEDED,
        output_dir="fits/guarded/x",
    )
    return {
        "study": study,
        "clients": clients,
        "session": sessions["rater"],
        "other_session": sessions["other_rater"],
        "trial": trial,
        "fit": fit,
        "stimulus_token": trial.left.token,
    }


def _request(rule: Rule, name: str, role: str, world: dict[str, Any]) -> Any:
    client: Client = world["clients"][role]
    url = reverse(name, kwargs=rule.kwargs(world))
    headers = {}
    if role in {"rater", "other_rater"} and name.startswith("studies:api_"):
        session = world["session"] if role == "rater" else world["other_session"]
        headers["Authorization"] = f"Bearer {session.token}"
    if rule.method == "get":
        return client.get(url, headers=headers)
    if rule.json_body:
        return client.post(
            url, data=json.dumps(rule.body(world)), content_type="application/json", headers=headers
        )
    return client.post(url, rule.body(world), headers=headers)


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_role_gets_only_what_its_rule_allows(world: dict[str, Any], name: str) -> None:
    rule = RULES[name]
    for role in ROLES:
        response = _request(rule, name, role, world)
        allowed = rule.allowed[role]
        if allowed == LOGIN:
            assert response.status_code == 302, (name, role, response.status_code)
            assert response["Location"].startswith("/accounts/login/"), (name, role)
        else:
            assert response.status_code in allowed, (name, role, response.status_code)


def test_the_admin_is_for_staff_only(world: dict[str, Any]) -> None:
    for role in ROLES:
        response = world["clients"][role].get(reverse("admin:index"))
        assert response.status_code in ADMIN_RULE.allowed[role], (role, response.status_code)
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"]
