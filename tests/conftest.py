"""Shared fixtures: personas, a small real study, isolated media storage."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses
# database access from such a thread unless told it is safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Test on a SQLite file, not in memory: the live server for browser tests then
    gets a connection per thread instead of sharing one across threads."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        path = tmp_path_factory.mktemp("database") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(path)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Password hashing is deliberately slow; tests need no protection from brute force."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test writes stimuli, fit outputs and caches under its own temporary folders."""
    media = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = str(media)
    settings.VAR_DIR = media.parent / f"{media.name}-var"
    return media


@pytest.fixture(autouse=True)
def _cache(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test counts its requests (rate limits) in a cache of its own, empty."""
    settings.CACHES = {
        "default": {
            "BACKEND": "evalsite.cache.CounterFileCache",
            "LOCATION": str(tmp_path_factory.mktemp("cache")),
        }
    }


# --- Personas ----------------------------------------------------------------------


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="owner", password="owner-pass-123")


@pytest.fixture
def other_researcher(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="other", password="other-pass-123")


# --- A small study with real codecs ---------------------------------------------------

# Two codecs at two fixed settings each, on two small crops of real photographs:
# real encodes, fast enough for every test that needs a study.
SMALL_STUDY_SETTINGS = {"jpeg": (20, 60), "webp": (20, 60)}
SMALL_IMAGE_SIDE = 96


@functools.cache
def small_sources() -> dict[str, np.ndarray]:
    from skimage import data

    side = SMALL_IMAGE_SIDE
    return {
        "astronaut": np.ascontiguousarray(data.astronaut()[100 : 100 + side, 180 : 180 + side]),
        "chelsea": np.ascontiguousarray(data.chelsea()[60 : 60 + side, 150 : 150 + side]),
    }


@functools.cache
def small_stimuli() -> tuple[Any, ...]:
    import codecs_adapter
    from studies.ladder import EncodedStimulus

    out = []
    for codec_name, settings_ in SMALL_STUDY_SETTINGS.items():
        codec = codecs_adapter.get_codec(codec_name)
        for rate_index, setting in enumerate(settings_):
            for image, rgb in small_sources().items():
                point = codecs_adapter.encode_at(codec, rgb, setting)
                stimulus = EncodedStimulus.from_point(
                    point,
                    image=image,
                    condition=f"{codec_name}-r{rate_index + 1}",
                    rate_index=rate_index,
                )
                metrics = codecs_adapter.compute_metrics(rgb, point.decoded)
                out.append(dataclasses.replace(stimulus, metrics=metrics))
    return tuple(out)


@pytest.fixture
def make_study(db: None, owner: Any) -> Callable[..., Any]:
    """Build a small open study with real stimuli; keyword arguments set study fields."""
    from studies import services

    def build(slug: str = "small", **fields: Any) -> Any:
        fields.setdefault("screening_required", False)
        fields.setdefault("trials_per_session", 4)
        fields.setdefault("completion_code", "SMALL-DONE")
        fields.setdefault("min_view_ms", 0)
        fields.setdefault("practice_trials", 0)
        fields.setdefault("golden_rate", 0.0)
        return services.study_create(
            slug=slug,
            title=fields.pop("title", f"Study {slug}"),
            owner=fields.pop("owner", owner),
            anchor_codec="jpeg",
            sources=small_sources(),
            stimuli=small_stimuli(),
            **fields,
        )

    return build


@pytest.fixture
def study(make_study: Callable[..., Any]) -> Any:
    return make_study()


# --- Active sampling ------------------------------------------------------------------

# The small study's conditions, and a posterior of their scores: the anchor (jpeg) known
# to 10 Elo, webp uncertain by 150, so that pairs with webp carry the information.
PLANNER_CONDITIONS = ("jpeg-r1", "jpeg-r2", "webp-r1", "webp-r2")
PLANNER_MEAN = (-300.0, 0.0, -150.0, 150.0)
PLANNER_SD = (10.0, 10.0, 150.0, 150.0)


@pytest.fixture
def store_planner() -> Callable[..., Any]:
    """Give a small study a successful refresh with a planner from a known posterior, as
    the refresh task would store it (watermark: now), and make it the current one."""
    from analysis.active import ActivePlanner, PlannerSettings
    from studies import selectors
    from studies.models import PlannerRefresh, Study
    from studies.services import rating_sql

    def store(
        study: Any,
        *,
        settings: PlannerSettings | None = None,
        appearances: dict[str, int] | None = None,
    ) -> Any:
        conditions = selectors.conditions_frame(study)
        grouped = conditions.groupby("condition").agg(codec=("codec", "first"), bpp=("bpp", "mean"))
        points = grouped.loc[list(PLANNER_CONDITIONS)].reset_index()
        by_name = dict(study.conditions.values_list("name", "pk"))
        planner = ActivePlanner.from_posterior(
            np.array(PLANNER_MEAN),
            np.diag(PLANNER_SD) ** 2,
            points,
            anchor="jpeg",
            condition_ids=[by_name[name] for name in PLANNER_CONDITIONS],
            settings=settings or PlannerSettings(),
            random_seed=1,
        )
        refresh = PlannerRefresh.objects.create(
            study=study,
            status=PlannerRefresh.Status.SUCCEEDED,
            trial_watermark=rating_sql.max_trial_id(),
            appearances={str(by_name[n]): c for n, c in (appearances or {}).items()},
            planner=planner.to_bytes(),
            summary={"codecs": []},
        )
        Study.objects.filter(pk=study.pk).update(planner=refresh)
        study.refresh_from_db()
        return refresh

    return store


# --- Screening -----------------------------------------------------------------------


@functools.cache
def small_artifact_bank() -> tuple[dict[str, np.ndarray], tuple[Any, ...]]:
    """A small artifact item bank (two 96-pixel images), encoded once per test run."""
    from screening import artifacts

    side = SMALL_IMAGE_SIDE
    images = {
        "gradient": artifacts.gradient_image(side),
        "texture": np.ascontiguousarray(artifacts.screening_images()["ihc"][:side, :side]),
    }
    return images, tuple(artifacts.build_items(images))


@pytest.fixture
def artifact_bank(db: None) -> int:
    from screening import services

    images, items = small_artifact_bank()
    return services.artifact_bank_build(images=images, items=items)


# --- Study definition files -------------------------------------------------------------

SMALL_SPEC = """\
slug = "spec-study"
title = "A study from a spec"
images = "images"
anchor = "jpeg"

[display]
mode = "side-by-side"
min_view_ms = 0

[session]
trials = 4
practice_trials = 0
golden_rate = 0.0

[screening]
required = false

[recruitment]
platform = "prolific"
completion_code = "SPEC-DONE"

[[codec]]
name = "jpeg"
bpp = [1.5, 3.0]

[[codec]]
name = "webp"
bpp = [1.0, 2.0]
"""


@pytest.fixture
def spec_folder(tmp_path: Path) -> Path:
    """A folder with a valid study.toml and two small PNG source images."""
    import codecs_adapter

    images = tmp_path / "images"
    images.mkdir()
    for name, rgb in small_sources().items():
        codecs_adapter.write_png(rgb, images / f"{name}.png")
    (tmp_path / "study.toml").write_text(SMALL_SPEC, encoding="utf-8")
    return tmp_path


# --- The task worker ---------------------------------------------------------------------


def _database_url() -> str:
    """The URL of the database the tests run on, for a worker in another process."""
    from urllib.parse import quote

    from django.db import connection

    database = connection.settings_dict
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{database['NAME']}"
    user = quote(database["USER"] or "")
    password = f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else ""
    host = f"{database['HOST']}:{database['PORT'] or 5432}"
    return f"postgres://{user}{password}@{host}/{database['NAME']}"


@pytest.fixture
def run_worker(settings: Any) -> Callable[[], None]:
    """Run the real task worker, in its own process, until the queue is empty.

    The test must commit its writes (``django_db(transaction=True)``) for the
    worker to see them.
    """
    import subprocess
    import sys

    def run() -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "VAR_DIR": str(settings.VAR_DIR),
        }
        result = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--batch",
                "--no-startup-delay",
                "--no-reload",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr

    return run
