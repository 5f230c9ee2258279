"""Which pages other sites may frame, and the policies that say so.

Amazon Mechanical Turk shows an ExternalQuestion inside an iframe on its own
site and takes the finished assignment by a form post to itself, so the
rater's pages may be framed by MTurk (and only by MTurk) and may post to it;
every other page keeps ``X-Frame-Options: DENY`` and the site's CSP.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from django.utils.csp import CSP

MTURK_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def _with(directive: str, *sources: str) -> dict[str, list[str]]:
    base: dict[str, Any] = settings.SECURE_CSP
    policy = {key: list(value) for key, value in base.items()}
    policy[directive] = [*policy.get(directive, [CSP.SELF]), *sources]
    return policy


def frameable_by_mturk(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(*args, **kwargs)
        policy = _with("frame-ancestors", *MTURK_ORIGINS)
        policy["form-action"] = [*policy.get("form-action", [CSP.SELF]), *MTURK_ORIGINS]
        response._csp_config = policy  # type: ignore[attr-defined]
        response.xframe_options_exempt = True  # type: ignore[attr-defined]
        return response

    return wrapped


def report_styles_allowed(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The fit report is one self-contained HTML file with its own inline styles."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(*args, **kwargs)
        response._csp_config = _with("style-src", CSP.UNSAFE_INLINE)  # type: ignore[attr-defined]
        return response

    return wrapped
