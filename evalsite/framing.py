"""Which pages other sites may frame.

Amazon Mechanical Turk shows an ExternalQuestion inside an iframe on its own
site, so the rater's pages may be framed by MTurk (and only by MTurk); every
other page keeps X-Frame-Options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpResponseBase

MTURK_ORIGINS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def frameable_by_mturk(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(*args, **kwargs)
        response["Content-Security-Policy"] = "frame-ancestors 'self' " + " ".join(MTURK_ORIGINS)
        response.xframe_options_exempt = True  # type: ignore[attr-defined]
        return response

    return wrapped
