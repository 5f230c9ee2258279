"""The statements of the rater's hot path: the `next` and `vote` calls of docs/api.md.

Written out by hand (with studies.services.raw_sql) because on the small
machines the site runs on, Django's query compiler took longer to build these
queries than the database took to answer them, and because several reads are
one statement here where querysets would make them several (bench/load.py,
BENCHMARKS.md). Each function runs one statement; callers get the model
instances a queryset would give, with the fields not selected deferred. Every
statement runs on PostgreSQL and SQLite.

Nothing here decides anything: the rules stay in ``studies.services.rating``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from studies.models import (
    Condition,
    ConditionIssueCount,
    ConditionKind,
    PairIssueCount,
    Rater,
    RaterSession,
    SourceImage,
    Stimulus,
    Study,
    Trial,
    Vote,
)
from studies.services import raw_sql

# --- Sessions ----------------------------------------------------------------------

# What the rater API reads of a session and its study (the payloads, the
# scheduling, the answer rules, the ending); their other fields (the study's
# definition file and instructions, the session's recruitment data, ...) are
# deferred, read if something asks for them.
_HOT_SESSION_FIELDS = (
    "id",
    "study_id",
    "rater_id",
    "token",
    "status",
    "trials_total",
    "practice_total",
    "started_at",
    "screening_passed_at",
    "completed_at",
)
_HOT_STUDY_FIELDS = (
    "id",
    "slug",
    "question",
    "status",
    "display_mode",
    "crop_size",
    "allow_ties",
    "min_view_ms",
    "min_flips",
    "golden_rate",
    "screening_required",
    "completion_code",
    "failed_attention_code",
    "screen_out_code",
    "seed",
    "created_at",
    # Sampling: which rule issues trials, and when the posterior is refreshed.
    "sampling_strategy",
    "target_halfwidth",
    "vote_budget",
    "refresh_every",
    "planner_id",
)


@functools.cache
def _session_by_token_sql(vendor: str) -> str:
    return raw_sql.sql(
        "SELECT {session_columns}, {study_columns}, {rater_columns} "
        "FROM {session} s "
        "JOIN {study} st ON st.id = s.study_id "
        "JOIN {rater} r ON r.id = s.rater_id "
        "WHERE s.token = %s",
        session_columns=raw_sql.columns(RaterSession, "s"),
        study_columns=raw_sql.columns(Study, "st"),
        rater_columns=raw_sql.columns(Rater, "r"),
    )


def _session_from_row(row: Sequence[Any], *, hot: bool = False) -> RaterSession:
    """The session, its study and its rater from their columns (only the hot fields
    of the session and the study with ``hot``)."""
    session_fields = _HOT_SESSION_FIELDS if hot else None
    study_fields = _HOT_STUDY_FIELDS if hot else None
    n_session = len(raw_sql.model_fields(RaterSession, session_fields))
    n_study = len(raw_sql.model_fields(Study, study_fields))
    n_rater = len(raw_sql.model_fields(Rater, None))
    session = raw_sql.instance(RaterSession, row[:n_session], session_fields)
    session.study = raw_sql.instance(Study, row[n_session : n_session + n_study], study_fields)
    session.rater = raw_sql.instance(
        Rater, row[n_session + n_study : n_session + n_study + n_rater]
    )
    return session


def session_by_token(token: str) -> RaterSession | None:
    """The session with this bearer token, with its study and rater."""
    with connection.cursor() as cursor:
        cursor.execute(_session_by_token_sql(connection.vendor), [token])
        row = cursor.fetchone()
    return None if row is None else _session_from_row(row)


@dataclass(frozen=True)
class SessionTrial:
    """One trial of a session: its columns, and whether it has a vote."""

    row: tuple[Any, ...]  # the trial's concrete fields, in model order
    answered: bool

    @property
    def pk(self) -> int:
        return int(self.row[0])

    @property
    def source_image_id(self) -> int:
        return int(self.row[4])

    @property
    def left_id(self) -> int:
        return int(self.row[5])

    @property
    def right_id(self) -> int:
        return int(self.row[6])

    @property
    def is_golden(self) -> bool:
        return bool(self.row[7])

    @property
    def is_practice(self) -> bool:
        return bool(self.row[8])


@functools.cache
def _session_for_next_sql(vendor: str, by_token: bool) -> str:
    # One row per trial (one with no trial if there is none), the session's
    # columns on each. Each trial's vote is looked up by a correlated subquery
    # (an index probe), never by joining the study's votes.
    return raw_sql.sql(
        "SELECT {session_columns}, {study_columns}, {rater_columns}, {trial_columns}, "
        "(SELECT v.id FROM {vote} v WHERE v.trial_id = t.id) "
        "FROM {session} s "
        "JOIN {study} st ON st.id = s.study_id "
        "JOIN {rater} r ON r.id = s.rater_id "
        "LEFT JOIN {trial} t ON t.session_id = s.id "
        "WHERE {session_is} = %s ORDER BY t.position",
        session_columns=raw_sql.columns(RaterSession, "s", _HOT_SESSION_FIELDS),
        study_columns=raw_sql.columns(Study, "st", _HOT_STUDY_FIELDS),
        rater_columns=raw_sql.columns(Rater, "r"),
        trial_columns=raw_sql.columns(Trial, "t"),
        session_is="s.token" if by_token else "s.id",
    )


def session_for_next(session: int | str) -> tuple[RaterSession, list[SessionTrial]] | None:
    """The session with this id (an int) or bearer token (a str), with its study and
    rater, and its trials in order of position; None if there is no such session."""
    with connection.cursor() as cursor:
        cursor.execute(
            _session_for_next_sql(connection.vendor, isinstance(session, str)), [session]
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    n_trial = len(raw_sql.model_fields(Trial, None))
    trials = [
        SessionTrial(row=tuple(row[-1 - n_trial : -1]), answered=row[-1] is not None)
        for row in rows
        if row[-1 - n_trial] is not None
    ]
    return _session_from_row(rows[0], hot=True), trials


# --- The study's stimuli --------------------------------------------------------------


@dataclass(frozen=True)
class StudyStimuli:
    """What issuing and showing a trial need to know of a study's images and stimuli."""

    stimulus: dict[tuple[int, int], int]  # (source image, condition) -> stimulus
    condition_of: dict[int, int]  # stimulus -> condition
    stimulus_token: dict[int, str]
    image_size: dict[int, tuple[int, int]]  # source image -> (width, height)
    image_token: dict[int, str]
    kind: dict[int, str]  # condition -> kind

    @functools.cached_property
    def image_ids(self) -> list[int]:
        return sorted(self.image_size)

    @functools.cached_property
    def study_conditions(self) -> list[int]:
        """The conditions compared in the study (not the golden ones)."""
        return sorted(c for c, kind in self.kind.items() if kind == ConditionKind.STUDY)

    @functools.cached_property
    def golden(self) -> dict[str, int]:
        """Condition kind -> condition, for golden and practice trials."""
        return {kind: c for c, kind in sorted(self.kind.items()) if kind != ConditionKind.STUDY}


@functools.cache
def _study_stimuli_sql(vendor: str) -> str:
    return raw_sql.sql(
        "SELECT x.id, x.source_image_id, x.condition_id, x.token, c.kind, "
        "i.width, i.height, i.token "
        "FROM {stimulus} x "
        "JOIN {source_image} i ON i.id = x.source_image_id "
        "JOIN {condition} c ON c.id = x.condition_id "
        "WHERE i.study_id = %s"
    )


def _load_study_stimuli(study_id: int) -> StudyStimuli:
    loaded = StudyStimuli({}, {}, {}, {}, {}, {})
    with connection.cursor() as cursor:
        cursor.execute(_study_stimuli_sql(connection.vendor), [study_id])
        rows = cursor.fetchall()
    for pk, image_id, condition_id, token, kind, width, height, image_token in rows:
        loaded.stimulus[(image_id, condition_id)] = pk
        loaded.condition_of[pk] = condition_id
        loaded.stimulus_token[pk] = token
        loaded.image_size[image_id] = (width, height)
        loaded.image_token[image_id] = image_token
        loaded.kind[condition_id] = kind
    return loaded


# Per process, the stimuli of the studies being rated. A study's images,
# conditions and stimuli are stored once, all together, before raters can see it
# (services.building.study_add_stimuli refuses a study that has them), and its
# stimuli are never edited (read-only in the admin), so they are read once. Keyed
# by the study's creation time too, as a test database may give a new study an
# id an earlier one had.
_STUDY_STIMULI: dict[tuple[int, datetime], StudyStimuli] = {}
STUDY_STIMULI_CACHED = 32


def study_stimuli(study: Study) -> StudyStimuli:
    """The study's stimuli, read once per process."""
    key = (study.pk, study.created_at)
    found = _STUDY_STIMULI.get(key)
    if found is None:
        found = _load_study_stimuli(study.pk)
        if found.stimulus:  # a study without stimuli yet is not remembered
            if len(_STUDY_STIMULI) >= STUDY_STIMULI_CACHED:
                _STUDY_STIMULI.clear()
            _STUDY_STIMULI[key] = found
    return found


# --- Trials ------------------------------------------------------------------------


def unanswered_trial(session: RaterSession, trial: SessionTrial, stimuli: StudyStimuli) -> Trial:
    """The whole trial (read by :func:`session_for_next`), with its images and conditions."""
    return with_images(session, raw_sql.instance(Trial, trial.row), stimuli)


def with_images(session: RaterSession, trial: Trial, stimuli: StudyStimuli) -> Trial:
    """The trial with its session, source image and stimuli (and their conditions) set,
    from the study's stimuli; their other fields are deferred."""
    alias = connection.alias
    image_id = trial.source_image_id
    width, height = stimuli.image_size[image_id]
    trial.session = session
    trial.source_image = SourceImage.from_db(
        alias,
        ["id", "token", "width", "height"],
        [image_id, stimuli.image_token[image_id], width, height],
    )
    for side, stimulus_id in (("left", trial.left_id), ("right", trial.right_id)):
        condition_id = stimuli.condition_of[stimulus_id]
        stimulus = Stimulus.from_db(
            alias,
            ["id", "condition_id", "source_image_id", "token"],
            [stimulus_id, condition_id, image_id, stimuli.stimulus_token[stimulus_id]],
        )
        stimulus.condition = Condition.from_db(
            alias, ["id", "kind"], [condition_id, stimuli.kind[condition_id]]
        )
        setattr(trial, side, stimulus)
    return trial


@functools.cache
def _trial_insert_sql(vendor: str) -> str:
    return raw_sql.sql(
        "INSERT INTO {trial} (public_id, session_id, position, source_image_id, left_id, "
        "right_id, is_golden, is_practice, crop_x, crop_y, crop_width, crop_height, issued_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )


def trial_insert(
    *,
    session_id: int,
    position: int,
    source_image_id: int,
    left_id: int,
    right_id: int,
    crop: tuple[int, int, int, int],
    is_golden: bool,
    is_practice: bool,
) -> Trial:
    """Store a new trial, as ``Trial.objects.create`` would; the stored trial."""
    trial = Trial(
        public_id=uuid.uuid4(),
        session_id=session_id,
        position=position,
        source_image_id=source_image_id,
        left_id=left_id,
        right_id=right_id,
        is_golden=is_golden,
        is_practice=is_practice,
        crop_x=crop[0],
        crop_y=crop[1],
        crop_width=crop[2],
        crop_height=crop[3],
        issued_at=timezone.now(),
    )
    params = [
        raw_sql.db_value(Trial, "public_id", trial.public_id),
        session_id,
        position,
        source_image_id,
        left_id,
        right_id,
        is_golden,
        is_practice,
        *crop,
        raw_sql.db_value(Trial, "issued_at", trial.issued_at),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_trial_insert_sql(connection.vendor), params)
        trial.pk = cursor.fetchone()[0]
    trial._state.adding = False
    trial._state.db = connection.alias
    return trial


@functools.cache
def _issued_per_image_sql(vendor: str) -> str:
    # Each trial counts once for each of its two conditions.
    return raw_sql.sql(
        "SELECT source_image_id, SUM(issued) / 2 FROM {condition_count} "
        "WHERE study_id = %s GROUP BY source_image_id"
    )


def issued_per_image(study_id: int) -> dict[int, int]:
    """Comparison trials issued so far in the study, per source image."""
    with connection.cursor() as cursor:
        cursor.execute(_issued_per_image_sql(connection.vendor), [study_id])
        return {image_id: int(n) for image_id, n in cursor.fetchall()}


@functools.cache
def _appearances_on_image_sql(vendor: str) -> str:
    return raw_sql.sql(
        "SELECT condition_id, issued FROM {condition_count} "
        "WHERE study_id = %s AND source_image_id = %s"
    )


def appearances_on_image(study_id: int, image_id: int) -> dict[int, int]:
    """Comparison trials issued so far on one image, per condition shown (either side)."""
    with connection.cursor() as cursor:
        cursor.execute(_appearances_on_image_sql(connection.vendor), [study_id, image_id])
        return {condition_id: int(n) for condition_id, n in cursor.fetchall()}


@functools.cache
def _issued_on_image_sql(vendor: str) -> str:
    return raw_sql.sql(
        "SELECT condition_low_id, condition_high_id, issued FROM {pair_count} "
        "WHERE study_id = %s AND source_image_id = %s"
    )


def issued_on_image(study_id: int, image_id: int) -> dict[tuple[int, int], int]:
    """Comparison trials issued so far on one image, per (low, high) condition pair."""
    with connection.cursor() as cursor:
        cursor.execute(_issued_on_image_sql(connection.vendor), [study_id, image_id])
        return {(low, high): int(n) for low, high, n in cursor.fetchall()}


#: Pairs per lookup statement (SQLite allows 500 terms in a compound SELECT).
PAIRS_PER_LOOKUP = 64


@functools.cache
def _issued_pairs_sql(vendor: str, rows: int) -> str:
    # One probe of the unique index per pair: both databases scan the image's rows
    # for a row-value IN list or an OR of pairs.
    one = (
        "SELECT condition_low_id, condition_high_id, issued FROM {pair_count} "
        "WHERE study_id = %s AND source_image_id = %s "
        "AND condition_low_id = %s AND condition_high_id = %s"
    )
    return raw_sql.sql(" UNION ALL ".join([one] * rows))


def issued_pairs(
    study_id: int, image_id: int, pairs: Collection[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """Comparison trials issued so far on one image for these (low, high) condition pairs;
    pairs never issued are missing."""
    unique = sorted(set(pairs))
    found: dict[tuple[int, int], int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(unique), PAIRS_PER_LOOKUP):
            chunk = unique[start : start + PAIRS_PER_LOOKUP]
            params = [v for low, high in chunk for v in (study_id, image_id, low, high)]
            cursor.execute(_issued_pairs_sql(connection.vendor, len(chunk)), params)
            found.update(((low, high), int(n)) for low, high, n in cursor.fetchall())
    return found


PAIR_COUNT_KEYS = ("study_id", "source_image_id", "condition_low_id", "condition_high_id")
CONDITION_COUNT_KEYS = ("study_id", "source_image_id", "condition_id")


@functools.cache
def _add_counts_sql(
    vendor: str, model: type[PairIssueCount | ConditionIssueCount], keys: tuple[str, ...], rows: int
) -> str:
    """Add to ``issued`` of ``rows`` rows of a count table, keyed by its unique ``keys``,
    creating the rows that are missing."""
    row = "(" + ", ".join(["%s"] * (len(keys) + 1)) + ")"
    return raw_sql.sql(
        "INSERT INTO {target} ({columns}, issued) VALUES {values} "
        "ON CONFLICT ({columns}) DO UPDATE SET issued = {target}.issued + EXCLUDED.issued",
        target=raw_sql.table(model),
        columns=", ".join(keys),
        values=", ".join([row] * rows),
    )


def count_issued_pairs(study_id: int, added: dict[tuple[int, int, int], int]) -> None:
    """Add newly issued trials to the study's pair counts and condition counts.

    One statement per table, pairs before conditions, rows in key order, so two
    transactions that count the same rows lock them in the same order and
    cannot deadlock.
    """
    if not added:
        return
    conditions: dict[tuple[int, int], int] = {}
    for (image_id, low, high), n in added.items():
        for condition_id in (low, high):
            conditions[image_id, condition_id] = conditions.get((image_id, condition_id), 0) + n
    pair_params = [v for pair, n in sorted(added.items()) for v in (study_id, *pair, n)]
    condition_params = [v for key, n in sorted(conditions.items()) for v in (study_id, *key, n)]
    with connection.cursor() as cursor:
        vendor = connection.vendor
        cursor.execute(
            _add_counts_sql(vendor, PairIssueCount, PAIR_COUNT_KEYS, len(added)), pair_params
        )
        cursor.execute(
            _add_counts_sql(vendor, ConditionIssueCount, CONDITION_COUNT_KEYS, len(conditions)),
            condition_params,
        )


# --- Active sampling ----------------------------------------------------------------


@functools.cache
def _pairs_issued_since_sql(vendor: str) -> str:
    # The trial's primary key bounds the scan to the trials issued since the refresh.
    return raw_sql.sql(
        "SELECT t.source_image_id, t.left_id, t.right_id, COUNT(*) FROM {trial} t "
        "JOIN {session} s ON s.id = t.session_id "
        "WHERE t.id > %s AND s.study_id = %s AND NOT t.is_golden AND NOT t.is_practice "
        "GROUP BY t.source_image_id, t.left_id, t.right_id"
    )


def pairs_issued_since(study_id: int, trial_id: int) -> list[tuple[int, int, int, int]]:
    """Comparison trials of the study with ids above ``trial_id``: (source image, left
    stimulus, right stimulus, how many)."""
    with connection.cursor() as cursor:
        cursor.execute(_pairs_issued_since_sql(connection.vendor), [trial_id, study_id])
        return [(int(i), int(a), int(b), int(n)) for i, a, b, n in cursor.fetchall()]


@functools.cache
def _max_trial_id_sql(vendor: str) -> str:
    return raw_sql.sql("SELECT MAX(id) FROM {trial}")


def max_trial_id() -> int:
    """The highest trial id of all studies (an index's last entry): a watermark."""
    with connection.cursor() as cursor:
        cursor.execute(_max_trial_id_sql(connection.vendor))
        found = cursor.fetchone()[0]
    return int(found or 0)


@dataclass(frozen=True)
class RefreshDue:
    due: bool  # refresh_every counted votes since the latest refresh's watermark
    in_flight: int | None  # the refresh queued or running, if any


@functools.cache
def _refresh_due_sql(vendor: str) -> str:
    # Counted votes on trials above the latest refresh's watermark, counted up to the
    # threshold only (LIMIT), so the statement costs the same however late a refresh is.
    return raw_sql.sql(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {trial} t "
        "JOIN {vote} v ON v.trial_id = t.id "
        "JOIN {session} s ON s.id = t.session_id "
        "WHERE t.id > COALESCE((SELECT MAX(r.trial_watermark) FROM {refresh} r "
        "WHERE r.study_id = %s), 0) AND s.study_id = %s AND NOT t.is_practice "
        "LIMIT %s) recent), "
        "(SELECT MIN(f.id) FROM {refresh} f WHERE f.study_id = %s AND f.status IN (%s, %s))"
    )


def refresh_due(study_id: int, every: int) -> RefreshDue:
    """Whether ``every`` counted votes have arrived since the study's latest refresh."""
    params: list[int | str] = [study_id, study_id, every, study_id, "queued", "running"]
    with connection.cursor() as cursor:
        cursor.execute(_refresh_due_sql(connection.vendor), params)
        count, in_flight = cursor.fetchone()
    return RefreshDue(due=int(count) >= every, in_flight=in_flight)


# --- Votes -------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteTarget:
    """A trial about to be answered, and what deciding on the answer needs."""

    trial: Trial  # with its session
    session: RaterSession  # with its study, read now
    vote_id: int | None  # the trial's vote, if it has one
    vote_client_id: uuid.UUID | None
    client_id_used_elsewhere: bool
    counted_votes: int  # the session's votes on counted (not practice) trials


_VOTE_TRIAL_FIELDS = ("id", "public_id", "session_id", "left_id", "is_golden", "is_practice")


@functools.cache
def _vote_target_sql(vendor: str, by_token: bool) -> str:
    # Three tables joined, the rest in subqueries: planning a join of more
    # tables costs PostgreSQL more than running the query.
    return raw_sql.sql(
        "SELECT {trial_columns}, {session_columns}, {study_columns}, v.id, v.client_vote_id, "
        "EXISTS (SELECT 1 FROM {vote} o WHERE o.client_vote_id = %s AND o.trial_id <> t.id), "
        "(SELECT COUNT(*) FROM {vote} cv JOIN {trial} ct ON ct.id = cv.trial_id "
        "WHERE ct.session_id = t.session_id AND NOT ct.is_practice) "
        "FROM {trial} t "
        "JOIN {session} s ON s.id = t.session_id "
        "JOIN {study} st ON st.id = s.study_id "
        "LEFT JOIN {vote} v ON v.trial_id = t.id "
        "WHERE t.public_id = %s AND {session_is} = %s",
        trial_columns=raw_sql.columns(Trial, "t", _VOTE_TRIAL_FIELDS),
        session_columns=raw_sql.columns(RaterSession, "s", _HOT_SESSION_FIELDS),
        study_columns=raw_sql.columns(Study, "st", _HOT_STUDY_FIELDS),
        session_is="s.token" if by_token else "s.id",
    )


def vote_target(
    *, session: int | str, trial_id: uuid.UUID, client_vote_id: uuid.UUID
) -> VoteTarget | None:
    """The trial with this public id of the session with this id (an int) or bearer
    token (a str); None if the session has no such trial or there is no such session.

    The trial comes with its session and the session with its study (their hot
    fields); the trial's stimuli and the session's rater are deferred.
    """
    params = [
        raw_sql.db_value(Vote, "client_vote_id", client_vote_id),
        raw_sql.db_value(Trial, "public_id", trial_id),
        session,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_vote_target_sql(connection.vendor, isinstance(session, str)), params)
        row = cursor.fetchone()
    if row is None:
        return None
    n_trial = len(_VOTE_TRIAL_FIELDS)
    n_session = len(raw_sql.model_fields(RaterSession, _HOT_SESSION_FIELDS))
    n_study = len(raw_sql.model_fields(Study, _HOT_STUDY_FIELDS))
    trial = raw_sql.instance(Trial, row[:n_trial], _VOTE_TRIAL_FIELDS)
    at = n_trial
    target_session = raw_sql.instance(RaterSession, row[at : at + n_session], _HOT_SESSION_FIELDS)
    at += n_session
    target_session.study = raw_sql.instance(Study, row[at : at + n_study], _HOT_STUDY_FIELDS)
    at += n_study
    vote_id, vote_client_id, used_elsewhere, counted = row[at:]
    trial.session = target_session
    return VoteTarget(
        trial=trial,
        session=target_session,
        vote_id=vote_id,
        vote_client_id=uuid.UUID(str(vote_client_id)) if vote_client_id is not None else None,
        client_id_used_elsewhere=bool(used_elsewhere),
        counted_votes=int(counted),
    )


@functools.cache
def _vote_insert_sql(vendor: str) -> str:
    return raw_sql.sql(
        "INSERT INTO {vote} (trial_id, client_vote_id, choice, response_ms, flips, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
    )


def vote_insert(
    *, trial: Trial, client_vote_id: uuid.UUID, choice: str, response_ms: int, flips: int
) -> Vote:
    """Store a vote, as ``Vote.objects.create`` would; the stored vote.

    Raises IntegrityError when the trial has a vote or the client id is taken.
    """
    vote = Vote(
        trial=trial,
        client_vote_id=client_vote_id,
        choice=choice,
        response_ms=response_ms,
        flips=flips,
        created_at=timezone.now(),
    )
    params = [
        trial.pk,
        raw_sql.db_value(Vote, "client_vote_id", client_vote_id),
        choice,
        response_ms,
        flips,
        raw_sql.db_value(Vote, "created_at", vote.created_at),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_vote_insert_sql(connection.vendor), params)
        vote.pk = cursor.fetchone()[0]
    vote._state.adding = False
    vote._state.db = connection.alias
    return vote
