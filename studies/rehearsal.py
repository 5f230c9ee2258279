"""Rehearsing a study with simulated raters, through the real rater API over HTTP.

Each simulated rater starts a session (``POST /api/v1/studies/<slug>/sessions``)
and answers trials (``GET .../next``, ``POST /api/v1/trials/<id>/vote``) like a
person whose judgement follows a known truth: every stimulus has a true
quality on the Elo scale, taken from one of its objective metrics
(``truth_metric``, e.g. SSIMULACRA 2) times ``truth_scale``; the rater picks
the left image with the Bradley–Terry probability of the two qualities, and
with probability ``lapse`` answers at random instead. The original shown in
golden trials is better than anything and their degraded image worse.

The simulator reads the truth from the database (it runs inside the site's
Django project) but talks to the site only over HTTP, so it exercises the same
code as real raters — and a researcher can rehearse a study, its schedule and
its forecast before paying anyone.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.simulate import observe
from studies.models import ConditionKind, Stimulus, Study

# Qualities of golden-trial stimuli: far beyond any condition's.
GOLDEN_QUALITY = {ConditionKind.GOLDEN_REFERENCE: 1e6, ConditionKind.GOLDEN_DEGRADED: -1e6}
DEFAULT_TRUTH_METRIC = "ssimulacra2"
# Elo points per unit of the metric: SSIMULACRA 2 spans about 30-90 over a
# typical ladder, so the conditions spread over about 600 Elo.
DEFAULT_TRUTH_SCALE = 10.0
REQUEST_TIMEOUT_SECONDS = 30
MAX_RETRIES = 5
# The longest wait a 429's Retry-After may ask for (a rate limit's window).
MAX_RETRY_AFTER_SECONDS = 60


class RehearsalError(RuntimeError):
    """The rehearsal cannot run or the server refused it; the message says why."""


@dataclass(frozen=True)
class RehearsalResult:
    raters: int
    votes: int
    finished_sessions: int
    retries: int


def stimulus_qualities(
    study: Study, *, metric: str = DEFAULT_TRUTH_METRIC, scale: float = DEFAULT_TRUTH_SCALE
) -> dict[str, float]:
    """The true quality (Elo) of every stimulus, keyed by its image token.

    Raises
    ------
    RehearsalError
        Some study stimulus lacks the metric.
    """
    qualities: dict[str, float] = {}
    missing = []
    for stimulus in Stimulus.objects.filter(condition__study=study).select_related("condition"):
        kind = ConditionKind(stimulus.condition.kind)
        if kind in GOLDEN_QUALITY:
            qualities[stimulus.token] = GOLDEN_QUALITY[kind]
        elif metric in stimulus.metrics:
            qualities[stimulus.token] = scale * float(stimulus.metrics[metric])
        else:
            missing.append(f"{stimulus.condition.name} on {stimulus.source_image.name}")
    if missing:
        raise RehearsalError(
            f"stimuli without the metric {metric!r}: {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    return qualities


class _Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = 0

    def call(self, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        attempt = 0
        while attempt < MAX_RETRIES:
            request = urllib.request.Request(  # noqa: S310 - a URL the researcher gave
                self.base_url + path, data=data, headers=headers, method="POST" if data else "GET"
            )
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as reply:  # noqa: S310
                    return json.loads(reply.read())
            except urllib.error.HTTPError as error:
                if error.code == 429:  # over a rate limit, nothing stored: wait, send again
                    time.sleep(_retry_after(error))
                    self.retries += 1
                    continue
                if error.code < 500:
                    detail = error.read().decode(errors="replace")
                    raise RehearsalError(
                        f"{path}: the server answered {error.code}: {detail}"
                    ) from error
            except (urllib.error.URLError, TimeoutError) as error:
                if attempt == MAX_RETRIES - 1:
                    raise RehearsalError(
                        f"{self.base_url}: cannot reach the site: {error}"
                    ) from error
            self.retries += 1
            attempt += 1
        raise RehearsalError(f"{path}: no answer after {MAX_RETRIES} attempts")


def _retry_after(error: urllib.error.HTTPError) -> float:
    try:
        seconds = float(error.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _token(url: str) -> str:
    return url.rsplit("/", 1)[-1].removesuffix(".png")


def run_rehearsal(
    *,
    study: Study,
    base_url: str,
    raters: int,
    votes_per_rater: int,
    lapse: float = 0.0,
    seed: int = 0,
    metric: str = DEFAULT_TRUTH_METRIC,
    scale: float = DEFAULT_TRUTH_SCALE,
    concurrency: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> RehearsalResult:
    """Send ``raters`` simulated raters through the study's rater API.

    Raises
    ------
    RehearsalError
        The study needs screening (which simulated raters cannot take), is not
        open, lacks the truth metric, or the server refused a request.
    """
    if study.screening_required:
        raise RehearsalError(
            f"study {study.slug!r} screens its raters, which simulated raters cannot pass; "
            "rehearse on a copy without screening (e.g. demo_study --no-screening)"
        )
    if not study.is_open:
        raise RehearsalError(f"study {study.slug!r} is {study.status}; launch it first")
    if not 0.0 <= lapse <= 1.0:
        raise RehearsalError(f"lapse must be between 0 and 1, got {lapse}")
    qualities = stimulus_qualities(study, metric=metric, scale=scale)
    client = _Client(base_url)
    min_view_ms = study.min_view_ms
    run_id = uuid.uuid4().hex[:8]

    def one_rater(index: int) -> tuple[int, bool]:
        rng = random.Random(f"{seed}:{index}")  # noqa: S311 - a simulation
        observer_rng = np.random.default_rng(rng.getrandbits(64))
        token = client.call(
            f"/api/v1/studies/{study.slug}/sessions",
            {"participant": f"rehearsal-{run_id}-{index}", "platform": "direct"},
        )["session"]
        votes = 0
        while votes < votes_per_rater:
            trial = client.call(f"/api/v1/sessions/{token}/next", token=token)
            if trial.get("finished"):
                return votes, True
            left = qualities[_token(trial["images"]["left"])]
            right = qualities[_token(trial["images"]["right"])]
            # The observer of analysis.simulate (and so of bench/active.py), with no ties.
            answer = observe(left - right, lapse, rng=observer_rng)[0]
            choice = "left" if answer == "a" else "right"
            body = {
                "choice": choice,
                "client_vote_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "response_ms": min_view_ms + rng.randint(300, 3000),
                "flips": trial.get("min_flips", 0),
            }
            client.call(f"/api/v1/trials/{trial['trial']}/vote", body, token=token)
            votes += 1
        return votes, False

    total_votes, finished, done = 0, 0, 0
    with ThreadPoolExecutor(max_workers=max(concurrency, 1)) as pool:
        for votes, ended in pool.map(one_rater, range(raters)):
            total_votes += votes
            finished += ended
            done += 1
            if progress is not None:
                progress(done, raters)
    return RehearsalResult(
        raters=raters, votes=total_votes, finished_sessions=finished, retries=client.retries
    )
