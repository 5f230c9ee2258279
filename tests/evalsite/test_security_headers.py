"""Every page's Content Security Policy has a nonce its scripts carry; HTTPS gets HSTS;
production settings pass Django's deployment checks with secure cookies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client

from studies.models import Study

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "not-a-real-secret-but-long-and-varied-enough-0123456789-abcdefghij",
    "ALLOWED_HOSTS": "arena.example.org",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "BEHIND_TLS_PROXY": "1",
}


def _script_sources(response: Any) -> str:
    policy = response["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["object-src"] == "'none'"
    assert directives["default-src"] == "'self'"
    return directives["script-src"]


def test_every_page_has_a_csp_whose_nonce_each_of_its_scripts_carries(
    client: Client, study: Study, owner: Any, make_study: Any
) -> None:
    screened = make_study(slug="screened", screening_required=True)
    rater = Client()
    rater.post(f"/r/{study.slug}/", {"participant": "p1"})
    screening = Client()
    screening.post(f"/r/{screened.slug}/", {"participant": "p2"})
    client.force_login(owner)
    pages = [
        (Client(), "/accounts/login/"),
        (Client(), f"/r/{study.slug}/"),
        (rater, f"/r/{study.slug}/rate/"),
        (screening, f"/screening/{screened.slug}/display/"),
        (client, "/studies/"),
        (client, f"/studies/{study.slug}/"),
        (client, "/studies/new/"),
    ]
    nonces = []
    for visitor, url in pages:
        response = visitor.get(url)
        assert response.status_code == 200, url
        sources = _script_sources(response)
        scripts = re.findall(rb"<script\b[^>]*>", response.content)
        if not scripts:  # no script: none may run
            assert sources == "'self'", (url, sources)
            continue
        found = re.fullmatch(r"'self' 'nonce-([^']+)'", sources)
        assert found, (url, sources)
        nonce = found.group(1)
        assert all(f'nonce="{nonce}"'.encode() in tag for tag in scripts), (url, scripts)
        nonces.append(nonce)
    assert len(nonces) >= 2 and len(set(nonces)) == len(nonces)  # new on every response


def test_https_responses_carry_hsts(client: Client, study: Study, settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    response = client.get(f"/r/{study.slug}/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in client.get(f"/r/{study.slug}/")  # plain HTTP


def _production(*args: str) -> subprocess.CompletedProcess[str]:
    # The test session's own DJANGO_ALLOW_ASYNC_UNSAFE (tests/conftest.py) is no
    # production setting.
    unset = {"DEBUG", "SECRET_KEY", "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="evalsite.settings")
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_production_settings_pass_the_deployment_checks_with_secure_cookies() -> None:
    checked = _production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    cookies = _production(
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)",
    )
    assert cookies.stdout.split() == ["True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"]
