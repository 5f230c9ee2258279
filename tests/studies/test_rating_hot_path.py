"""The rater API's fast path: counted pairs, hand-written queries, concurrent raters."""

from __future__ import annotations

import importlib
import itertools
import random
import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from studies import api, scheduling, services
from studies.models import ConditionIssueCount, PairIssueCount, RaterSession, Trial, Vote
from studies.services import issuing, rating_sql

IMAGES = [1, 2, 3]
CONDITIONS = [10, 11, 12, 13, 14, 15]


def _pairs_issued(study: Any) -> Counter[tuple[int, int, int]]:
    """The study's comparison trials per (image, low condition, high condition), counted."""
    counted: Counter[tuple[int, int, int]] = Counter()
    for trial in Trial.objects.filter(
        session__study=study, is_golden=False, is_practice=False
    ).select_related("left", "right"):
        key = scheduling.pair_key(
            trial.source_image_id, trial.left.condition_id, trial.right.condition_id
        )
        counted[key] += 1
    return counted


def _pair_counts(study: Any) -> Counter[tuple[int, int, int]]:
    return Counter(
        {
            (c.source_image_id, c.condition_low_id, c.condition_high_id): c.issued
            for c in PairIssueCount.objects.filter(study=study)
        }
    )


def _condition_counts(study: Any) -> Counter[tuple[int, int]]:
    return Counter(
        {
            (c.source_image_id, c.condition_id): c.issued
            for c in ConditionIssueCount.objects.filter(study=study)
        }
    )


def _appearances(pairs: Counter[tuple[int, int, int]]) -> Counter[tuple[int, int]]:
    shown: Counter[tuple[int, int]] = Counter()
    for (image_id, low, high), n in pairs.items():
        shown[image_id, low] += n
        shown[image_id, high] += n
    return shown


def _answer_all(session: RaterSession) -> list[Trial]:
    answered = []
    while (trial := services.trial_next(session=session)) is not None:
        answered.append(trial)
        services.vote_record(
            session=session,
            trial_id=trial.public_id,
            choice="left",
            client_vote_id=uuid.uuid4(),
            response_ms=900,
            flips=0,
        )
    return answered


@pytest.mark.parametrize("seed", range(20))
def test_the_two_steps_choose_what_choose_balanced_pair_chooses(seed: int) -> None:
    data = random.Random(seed)
    all_pairs = [
        scheduling.pair_key(i, a, b)
        for i in IMAGES
        for a, b in itertools.combinations(CONDITIONS, 2)
    ]
    issued = scheduling.IssuedCounts(
        pairs={key: data.randrange(4) for key in data.sample(all_pairs, 30)}
    )
    seen = set(data.sample(all_pairs, 20))
    balance = {c: data.randrange(-2, 3) for c in CONDITIONS}
    whole = scheduling.choose_balanced_pair(
        image_ids=IMAGES,
        condition_ids=CONDITIONS,
        issued=issued,
        seen_by_rater=seen,
        side_balance=balance,
        rng=random.Random(seed),
    )
    rng = random.Random(seed)
    image = scheduling.choose_image(
        image_ids=IMAGES,
        condition_ids=CONDITIONS,
        issued_per_image=issued.per_image(),
        seen_by_rater=seen,
        rng=rng,
    )
    assert image is not None
    on_image = scheduling.IssuedCounts(
        pairs={k: n for k, n in issued.pairs.items() if k[0] == image}
    )
    steps = scheduling.choose_pair_on_image(
        image_id=image,
        condition_ids=CONDITIONS,
        issued=on_image,
        seen_by_rater=seen,
        side_balance=balance,
        rng=rng,
    )
    assert steps == whole


def test_pair_counts_follow_the_trials_issued(make_study: Any) -> None:
    study = make_study(slug="counted", trials_per_session=6, practice_trials=1, golden_rate=0.2)
    for n in range(4):
        session, _ = services.rater_session_start(
            study=study, platform="direct", participant=f"p{n}"
        )
        _answer_all(session)
    assert Trial.objects.filter(session__study=study, is_golden=True).exists()
    issued = _pairs_issued(study)
    assert _pair_counts(study) == issued
    assert _condition_counts(study) == _appearances(issued)
    per_image: Counter[int] = Counter()
    for (image_id, _, _), n in issued.items():
        per_image[image_id] += n
    assert rating_sql.issued_per_image(study.pk) == per_image
    for image_id in per_image:
        on_image = {(low, high): n for (i, low, high), n in issued.items() if i == image_id}
        # A pair never issued is missing, as it is from the lookup.
        never = (-2, -1)
        asked = [*on_image, never]
        assert rating_sql.issued_pairs(study.pk, image_id, asked) == on_image
        assert rating_sql.issued_on_image(study.pk, image_id) == on_image
        assert rating_sql.appearances_on_image(study.pk, image_id) == {
            c: n for (i, c), n in _appearances(issued).items() if i == image_id
        }


def test_the_issuer_reads_the_stored_counts_plus_its_own_trials(make_study: Any) -> None:
    """Within one call the balanced rule sees the trials it has just chosen, not yet
    stored, as the in-memory counts of stored and chosen trials together show them."""
    study = make_study(slug="overlay", trials_per_session=6)
    for n in range(2):
        session, _ = services.rater_session_start(
            study=study, platform="direct", participant=f"p{n}"
        )
        _answer_all(session)
    stored = _pairs_issued(study)
    image_id, low, high = next(iter(stored))
    # A pair no trial has shown (ids past the study's): counted only as just chosen.
    last = max(c for _, a, b in stored for c in (a, b))
    fresh = (last + 1, last + 2)
    added = {(image_id, low, high): 2, (image_id, *fresh): 1}
    counts = issuing._StudyCounts(study.pk, added, lambda: rating_sql.issued_per_image(study.pk))
    expected = scheduling.IssuedCounts(pairs=stored + Counter(added))
    asked = [(low, high), fresh]
    assert counts.pairs_issued(image_id, asked) == expected.pairs_issued(image_id, asked)
    assert counts.pairs_issued_on(image_id) == expected.pairs_issued_on(image_id)
    assert counts.appearances_on(image_id) == expected.appearances_on(image_id)
    assert counts.pairs_issued(image_id, [fresh]) == {fresh: 1}


def test_the_backfill_migration_counts_the_trials_issued_before_it(make_study: Any) -> None:
    study = make_study(slug="backfill", trials_per_session=5)
    session, _ = services.rater_session_start(study=study, platform="direct", participant="p")
    _answer_all(session)
    expected = _pair_counts(study)
    PairIssueCount.objects.all().delete()
    migration = importlib.import_module("studies.migrations.0006_pair_issue_count_backfill")
    migration.count_issued_pairs(apps, None)
    assert _pair_counts(study) == expected == _pairs_issued(study)


def test_the_condition_count_migration_counts_the_pairs_counted_before_it(
    make_study: Any,
) -> None:
    study = make_study(slug="backfill-conditions", trials_per_session=5)
    for n in range(2):
        session, _ = services.rater_session_start(
            study=study, platform="direct", participant=f"p{n}"
        )
        _answer_all(session)
    expected = _condition_counts(study)
    assert expected == _appearances(_pairs_issued(study))
    ConditionIssueCount.objects.all().delete()
    migration = importlib.import_module("studies.migrations.0008_condition_issue_count")
    migration.count_issued_conditions(apps, None)
    assert _condition_counts(study) == expected


def test_pending_trials_are_the_trials_the_orm_reads(make_study: Any) -> None:
    study = make_study(slug="same", trials_per_session=3, practice_trials=1)
    session, _ = services.rater_session_start(study=study, platform="direct", participant="p")
    services.trials_pending(session=session)
    pending = services.trials_pending(session=session)  # read back, not just issued
    assert len(pending) == 2
    for trial in pending:
        stored = Trial.objects.select_related(
            "source_image", "left__condition", "right__condition"
        ).get(pk=trial.pk)
        for field in Trial._meta.concrete_fields:
            assert getattr(trial, field.attname) == getattr(stored, field.attname), field.name
        assert trial.source_image.token == stored.source_image.token
        assert (trial.source_image.width, trial.source_image.height) == (
            stored.source_image.width,
            stored.source_image.height,
        )
        assert (trial.left.token, trial.right.token) == (stored.left.token, stored.right.token)
        assert trial.golden_answer == stored.golden_answer
        # What was not read is read when asked for.
        assert trial.left.sha256 == stored.left.sha256


def test_a_vote_a_concurrent_request_stored_first_is_answered_as_a_retry(
    study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = services.rater_session_start(study=study, platform="direct", participant="p")
    trial = services.trial_next(session=session)
    assert trial is not None
    vote_id = uuid.uuid4()
    answer: dict[str, Any] = {
        "trial_id": trial.public_id,
        "choice": "left",
        "client_vote_id": vote_id,
        "response_ms": 900,
        "flips": 0,
    }
    # Both requests read the trial unanswered; the other one stores its vote first.
    unanswered = rating_sql.vote_target(
        session=session.pk, trial_id=trial.public_id, client_vote_id=vote_id
    )
    first, created = services.vote_record(session=session, **answer)
    assert created
    monkeypatch.setattr(rating_sql, "vote_target", lambda **kwargs: unanswered)
    again, created = services.vote_record(session=session, **answer)
    assert not created and again.pk == first.pk
    with pytest.raises(services.VoteConflict):
        services.vote_record(session=session, **{**answer, "client_vote_id": uuid.uuid4()})
    assert Vote.objects.count() == 1


def test_the_image_url_is_the_reversed_url() -> None:
    token = "0123456789abcdef" * 2
    assert api.image_url(token) == reverse("studies:image", kwargs={"token": token})


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_calls_never_issue_a_pair_twice_to_a_rater(make_study: Any) -> None:
    """Raters whose clients send several `next` at once (a retry while the first is
    under way) still get unique positions and never the same pair twice."""
    study = make_study(slug="concurrent", trials_per_session=8, practice_trials=1)
    tokens = [
        services.rater_session_start(study=study, platform="direct", participant=f"p{n}")[0].token
        for n in range(4)
    ]
    errors: list[BaseException] = []
    start = threading.Barrier(len(tokens) * 2)

    def rater(token: str) -> None:
        try:
            start.wait()
            while True:
                found = services.trials_pending_by_token(token=token)
                assert found is not None
                _, pending = found
                if not pending:
                    return
                recorded = services.vote_record_by_token(
                    token=token,
                    trial_id=pending[0].public_id,
                    choice="right",
                    client_vote_id=uuid.uuid4(),
                    response_ms=900,
                    flips=0,
                )
                assert recorded is not None
        except services.VoteConflict:
            pass  # the twin thread answered this trial first; it goes on
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    # Two threads per rater: every `next` of a rater races its twin.
    threads = [threading.Thread(target=rater, args=(t,)) for t in tokens for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for token in tokens:
        session = RaterSession.objects.get(token=token)
        trials = list(session.trials.filter(is_practice=False).select_related("left", "right"))
        pairs = [
            scheduling.pair_key(t.source_image_id, t.left.condition_id, t.right.condition_id)
            for t in trials
        ]
        assert len(pairs) == len(set(pairs))
        positions = list(session.trials.values_list("position", flat=True))
        assert sorted(positions) == list(range(len(positions)))
    assert _pair_counts(study) == _pairs_issued(study)


# Threads that start sessions and ask for trials at once: as many raters arriving
# together as the test server's PostgreSQL connections allow with room to spare
# (max_connections is 100 and other test runs share the server).
CROWD = 50
CROWD_ROUNDS = 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", ["balanced", "active"])
def test_a_crowd_starting_at_once_gets_valid_trials_each_issued_once(
    make_study: Any, store_planner: Any, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CROWD raters start a session, ask for a trial and answer it, CROWD_ROUNDS times,
    all at once on one study: each gets a valid trial of their own, no rater a pair twice,
    and the study's pair counts equal its trials."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite runs one writer at a time, nothing races")
    study = make_study(
        slug=f"crowd-{strategy}",
        trials_per_session=8,
        practice_trials=1,
        golden_rate=0.2,
        sampling_strategy=strategy,
        refresh_every=10_000,
    )
    chose: list[int] = []
    if strategy == "active":
        from analysis.active import ActivePlanner

        store_planner(study)
        original = ActivePlanner.choose

        def counted(self: ActivePlanner, **kwargs: Any) -> Any:
            chose.append(1)
            return original(self, **kwargs)

        monkeypatch.setattr(ActivePlanner, "choose", counted)
    errors: list[BaseException] = []
    got: dict[int, list[Trial]] = {}
    start = threading.Barrier(CROWD)

    def rater(n: int) -> None:
        try:
            start.wait()
            session, _ = services.rater_session_start(
                study=study, platform="prolific", participant=f"crowd-{n}"
            )
            mine = got.setdefault(session.pk, [])
            for _ in range(CROWD_ROUNDS):
                found = services.trials_pending_by_token(token=session.token)
                assert found is not None
                _, pending = found
                assert pending, "a session of 9 trials ended after fewer"
                mine.append(pending[0])
                recorded = services.vote_record_by_token(
                    token=session.token,
                    trial_id=pending[0].public_id,
                    choice="left",
                    client_vote_id=uuid.uuid4(),
                    response_ms=900,
                    flips=0,
                )
                assert recorded is not None and recorded[1]
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rater, args=(n,)) for n in range(CROWD)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:3]
    assert len(got) == CROWD and all(len(t) == CROWD_ROUNDS for t in got.values())
    # Each trial handed out was its session's own, and handed out once.
    handed = [t.public_id for trials in got.values() for t in trials]
    assert len(handed) == len(set(handed))
    for session_id, trials in got.items():
        assert {t.session_id for t in trials} == {session_id}
    stored = list(
        Trial.objects.filter(session__study=study).select_related(
            "left__condition", "right__condition"
        )
    )
    assert {t.public_id for t in stored} >= set(handed)
    for trial in stored:
        # Both stimuli show the trial's image; a comparison shows two study conditions.
        assert trial.left.source_image_id == trial.right.source_image_id == trial.source_image_id
        kinds = {trial.left.condition.kind, trial.right.condition.kind}
        assert kinds == {"study"} or trial.is_golden or trial.is_practice
    for session in RaterSession.objects.filter(study=study):
        trials = [t for t in stored if t.session_id == session.pk]
        positions = sorted(t.position for t in trials)
        assert positions == list(range(len(trials)))
        pairs = [
            scheduling.pair_key(t.source_image_id, t.left.condition_id, t.right.condition_id)
            for t in trials
            if not (t.is_golden or t.is_practice)
        ]
        assert len(pairs) == len(set(pairs))
    assert _pair_counts(study) == _pairs_issued(study)
    comparisons = sum(_pairs_issued(study).values())
    assert comparisons > CROWD
    if strategy == "active":
        assert len(chose) == comparisons  # every comparison came from the planner
