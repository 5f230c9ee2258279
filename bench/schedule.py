"""Choosing a trial on a 1,000-condition study: balanced against active (issue 8).

    .venv/bin/python bench/schedule.py [--images 1] [--conditions 1000] [--raters 40]
                                       [--rounds 10] [--history 25000]
                                       [--history-kind random|matchings] [--database-url URL]

The issue's target: choosing a trial takes at most 10 ms at p99 with 1,000 conditions.
A condition is a codec at a rate point and is shown on every image, so "1,000
conditions" is taken as 1 image x 1,000 conditions (10 codecs x 100 rates): what both
rules cost grows with the conditions of one image (the balanced rule looks at every pair
of them, 499,500; the planner's posterior is 1,000 x 1,000), while images only repeat
the choice of an image. ``--images 10 --conditions 100`` is the other reading (1,000
stimuli), for comparison.

One study per strategy is written straight into the database (images, conditions,
stimuli rows without files: nothing here reads a file), open, with no practice or
golden trials, half-way through: ``--history`` comparison trials already issued (their
``PairIssueCount`` and ``ConditionIssueCount`` rows, which both rules read), over random
pairs or, with ``--history-kind matchings``, in rounds where every condition of an image
is shown once (as the balanced rule leaves a study: every condition equally often, so
the balanced rule's tie is the largest it can be), and, for ``active``,
a stored refresh whose planner is built from a known posterior (Elo 400 per doubling of
the rate, 40 Elo sd) with every condition past the exploration floor, as after a
warm-up. Then ``--raters`` sessions take ``--rounds`` trials each, in turn; per trial:

- ``choose``: ``TrialIssuer.choose_comparison``, the strategy's choice with the reads it
  needs (the study's issue counts per image; for balanced the chosen image's pair counts,
  for active the trials issued since the refresh, which grow to raters x rounds);
- ``next``: after a vote, ``services.trials_pending_by_token``, the whole ``next`` call of
  the rater API without HTTP: read the session, choose, store the trial, count the pair;
- baseline, in the same run: the same ``next`` call again at once, which finds its two
  trials waiting and only reads (the floor of the path without any choosing);
- ``vote``: the vote before that ``next`` (``services.vote_record_by_token``), which for
  an active study also checks whether a refresh is due (one statement).

The planner's load (``ActivePlanner.from_bytes`` of the stored ``.npz``, once per version
and web process) and its build (in the refresh task) are timed once.

SQLite in a temporary folder by default; ``--database-url`` for PostgreSQL (the study
rows are deleted afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# As evalsite/wsgi.py sets them for web processes, before numpy loads its BLAS.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CODECS = 10
SD_ELO = 40.0
ELO_PER_DOUBLING = 400.0
FLOOR_PASSED = 50  # comparison trials per condition before the run (floor is 20)


def _setup(args: argparse.Namespace) -> None:
    var = tempfile.mkdtemp(prefix="bench-schedule-")
    os.environ["VAR_DIR"] = var
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{var}/db.sqlite3"
    os.environ["DEBUG"] = "0"  # no query log in the measured calls
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    os.environ["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _build_study(
    args: argparse.Namespace, strategy: str
) -> tuple[Any, dict[tuple[int, int, int], int]]:
    from django.contrib.auth import get_user_model

    from studies.models import (
        Condition,
        ConditionIssueCount,
        PairIssueCount,
        SourceImage,
        Stimulus,
        Study,
    )

    owner, _ = get_user_model().objects.get_or_create(username="bench-schedule")
    study = Study.objects.create(
        slug=f"bench-schedule-{strategy}-{os.getpid()}",
        title="bench/schedule.py",
        owner=owner,
        anchor_codec="c00",
        status="open",
        screening_required=False,
        trials_per_session=args.rounds + 2,
        practice_trials=0,
        golden_rate=0.0,
        min_view_ms=0,
        sampling_strategy=strategy,
        refresh_every=10**9,
        seed=1,
    )
    images = SourceImage.objects.bulk_create(
        SourceImage(
            study=study, name=f"image{i}", file="none.png", width=64, height=64, sha256="0" * 64
        )
        for i in range(args.images)
    )
    rates = args.conditions // CODECS
    conditions = Condition.objects.bulk_create(
        Condition(
            study=study,
            name=f"c{c:02d}-r{r + 1}",
            codec=f"c{c:02d}",
            rate_index=r,
            target_bpp=_bpp(c, r, rates),
        )
        for c in range(CODECS)
        for r in range(rates)
    )
    Stimulus.objects.bulk_create(
        Stimulus(
            condition=condition,
            source_image=image,
            file="none.png",
            sha256="0" * 64,
            bitstream_bytes=100,
            bpp=_bpp(int(condition.codec[1:]), condition.rate_index, rates),
            codec_library="bench",
            codec_version="0",
        )
        for condition in conditions
        for image in images
    )
    history = _history(args, [i.pk for i in images], [c.pk for c in conditions])
    PairIssueCount.objects.bulk_create(
        (
            PairIssueCount(
                study=study,
                source_image_id=i,
                condition_low_id=low,
                condition_high_id=high,
                issued=n,
            )
            for (i, low, high), n in history.items()
        ),
        batch_size=2000,
    )
    shown: dict[tuple[int, int], int] = {}
    for (i, low, high), n in history.items():
        for c in (low, high):
            shown[i, c] = shown.get((i, c), 0) + n
    ConditionIssueCount.objects.bulk_create(
        (
            ConditionIssueCount(study=study, source_image_id=i, condition_id=c, issued=n)
            for (i, c), n in shown.items()
        ),
        batch_size=2000,
    )
    return study, history


def _history(
    args: argparse.Namespace, images: list[int], conditions: list[int]
) -> dict[tuple[int, int, int], int]:
    """``--history`` trials: (image, low, high) -> trials."""
    rng = random.Random(1)
    trials: list[tuple[int, int, int]] = []
    while len(trials) < args.history:
        if args.history_kind == "random":
            a, b = rng.sample(conditions, 2)
            trials.append((images[rng.randrange(len(images))], a, b))
        else:  # one round: every condition of the next image shown once
            image = images[len(trials) // (len(conditions) // 2) % len(images)]
            order = rng.sample(conditions, len(conditions))
            trials += [(image, a, b) for a, b in zip(order[::2], order[1::2], strict=False)]
    history: dict[tuple[int, int, int], int] = {}
    for image, a, b in trials[: args.history]:
        key = (image, min(a, b), max(a, b))
        history[key] = history.get(key, 0) + 1
    return history


def _per_image(history: dict[tuple[int, int, int], int]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for (image_id, _, _), n in history.items():
        totals[image_id] = totals.get(image_id, 0) + n
    return totals


def _bpp(codec: int, rate: int, rates: int) -> float:
    # Rates double every quarter of the ladder; each codec a little more efficient.
    return 0.1 * 2 ** (4 * rate / max(1, rates - 1)) * (1.0 - 0.03 * codec)


def _store_planner(study: Any, history: dict[tuple[int, int, int], int]) -> dict[str, float]:
    import pandas as pd

    from analysis.active import ActivePlanner
    from studies.models import PlannerRefresh, Study
    from studies.services import rating_sql

    conditions = list(study.conditions.order_by("pk"))
    points = pd.DataFrame(
        {
            "condition": [c.name for c in conditions],
            "codec": [c.codec for c in conditions],
            "bpp": [c.target_bpp for c in conditions],
        }
    )
    codec_index = np.array([int(c.codec[1:]) for c in conditions])
    bpp = points["bpp"].to_numpy()
    mean = ELO_PER_DOUBLING * np.log2(bpp / 0.1) + 20.0 * codec_index
    mean -= mean.mean()
    # A dense covariance, as a fit's: independent noise plus shared directions.
    shared = np.random.default_rng(1).normal(scale=SD_ELO / 5, size=(len(conditions), 20))
    covariance = np.eye(len(conditions)) * SD_ELO**2 + shared @ shared.T
    started = time.perf_counter()
    planner = ActivePlanner.from_posterior(
        mean,
        covariance,
        points,
        anchor="c00",
        condition_ids=[c.pk for c in conditions],
        n_votes=25_000,
        random_seed=1,
    )
    built = time.perf_counter() - started
    blob = planner.to_bytes()
    refresh = PlannerRefresh.objects.create(
        study=study,
        status="succeeded",
        trial_watermark=rating_sql.max_trial_id(),
        appearances={str(c.pk): FLOOR_PASSED for c in conditions},
        image_trials={str(i): n for i, n in _per_image(history).items()},
        planner=blob,
    )
    Study.objects.filter(pk=study.pk).update(planner=refresh)
    study.refresh_from_db()
    started = time.perf_counter()
    ActivePlanner.from_bytes(blob)
    return {
        "build_s": built,
        "load_ms": 1000 * (time.perf_counter() - started),
        "blob_mb": len(blob) / 1e6,
    }


def _run(study: Any, args: argparse.Namespace) -> dict[str, list[float]]:
    from studies import services
    from studies.services import planning, rating_sql
    from studies.services.issuing import TrialIssuer

    times: dict[str, list[float]] = {"choose": [], "next": [], "baseline": [], "vote": []}
    sessions = [
        services.rater_session_start(study=study, platform="direct", participant=f"r{n}")[0]
        for n in range(args.raters)
    ]
    for session in sessions:  # the first call issues two trials; steady state after
        services.trials_pending_by_token(token=session.token)
    planning.loaded_planner(study)  # loaded once per process and version
    for _ in range(args.rounds):
        for session in sessions:
            found = rating_sql.session_for_next(session.pk)
            assert found is not None
            live, trials = found
            issuer = TrialIssuer(live, trials, rating_sql.study_stimuli(live.study))
            tick = time.perf_counter()
            issuer.choose_comparison(position=len(trials))
            times["choose"].append(time.perf_counter() - tick)

            pending = services.trials_pending_by_token(token=session.token)
            assert pending is not None and pending[1]
            tick = time.perf_counter()
            services.vote_record_by_token(
                token=session.token,
                trial_id=pending[1][0].public_id,
                choice="left",
                client_vote_id=uuid.uuid4(),
                response_ms=900,
                flips=0,
            )
            times["vote"].append(time.perf_counter() - tick)
            tick = time.perf_counter()
            after = services.trials_pending_by_token(token=session.token)
            times["next"].append(time.perf_counter() - tick)
            assert after is not None and len(after[1]) == 2
            tick = time.perf_counter()
            services.trials_pending_by_token(token=session.token)
            times["baseline"].append(time.perf_counter() - tick)
    return times


def _cleanup(study: Any) -> None:
    from studies.models import (
        ConditionIssueCount,
        PairIssueCount,
        RaterSession,
        Study,
        Trial,
        Vote,
    )

    Study.objects.filter(pk=study.pk).update(planner=None)
    Vote.objects.filter(trial__session__study=study).delete()
    Trial.objects.filter(session__study=study).delete()
    RaterSession.objects.filter(study=study).delete()
    PairIssueCount.objects.filter(study=study).delete()
    ConditionIssueCount.objects.filter(study=study).delete()
    study.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--conditions", type=int, default=1000)
    parser.add_argument("--raters", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--history", type=int, default=25_000)
    parser.add_argument("--history-kind", choices=["random", "matchings"], default="random")
    parser.add_argument("--strategies", default="balanced,active")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    _setup(args)
    from django.db import connection

    print(
        f"# bench/schedule.py — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {connection.vendor}"
    )
    print(
        f"# {args.images} image(s) x {args.conditions} conditions, {args.history} trials of "
        f"{args.history_kind} history, {args.raters} raters x {args.rounds} trials each"
    )
    print("| strategy | call | p50 ms | p99 ms | max ms | n |")
    print("|---|---|---|---|---|---|")
    for strategy in args.strategies.split(","):
        study, history = _build_study(args, strategy)
        extra = _store_planner(study, history) if strategy == "active" else None
        try:
            times = _run(study, args)
        finally:
            _cleanup(study)
        for call in ("choose", "next", "baseline", "vote"):
            ms = 1000 * np.asarray(times[call])
            label = "next (read only): baseline" if call == "baseline" else call
            print(
                f"| {strategy} | {label} | {np.percentile(ms, 50):.2f} | "
                f"{np.percentile(ms, 99):.2f} | {ms.max():.2f} | {ms.size} |"
            )
        if extra:
            print(
                f"# active planner: built in {extra['build_s']:.1f} s (refresh task), "
                f"{extra['blob_mb']:.1f} MB stored, loaded in {extra['load_ms']:.0f} ms "
                "(once per version and process)"
            )


if __name__ == "__main__":
    main()
