"""Studies from definition files: a draft at once, its stimuli by a background task."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studies.ladder import EncodedStimulus
from studies.models import Study, StudyBuild, StudyStatus, TaskStatus
from studies.services.building import study_add_stimuli
from studies.services.errors import ServiceError
from studies.spec import IMAGE_SUFFIXES, StudySpec, parse_spec


def study_create_from_spec(*, spec: StudySpec, owner: Any, source_dir: Path) -> Study:
    """Create the study of a validated spec as a draft and queue the build of its stimuli.

    ``source_dir`` is the folder the spec's relative paths start from; the
    build task reads the images (and imports) there.

    Raises
    ------
    ServiceError
        A study with the spec's slug exists already.
    """
    from screening.services import policy_set
    from studies.tasks import build_study

    if Study.objects.filter(slug=spec.slug).exists():
        raise ServiceError(f"a study with slug {spec.slug!r} exists already")
    with transaction.atomic():
        study = Study.objects.create(
            slug=spec.slug,
            title=spec.title,
            owner=owner,
            anchor_codec=spec.anchor,
            status=StudyStatus.DRAFT,
            spec_text=spec.text,
            **spec.study_fields(),
        )
        policy_set(study=study, **spec.screening_policy())
        build = StudyBuild.objects.create(study=study, source_dir=str(source_dir))

        def enqueue() -> None:
            result = build_study.enqueue(build.pk)
            StudyBuild.objects.filter(pk=build.pk).update(task_id=str(result.id))

        transaction.on_commit(enqueue)
    return study


class BuildFailed(Exception):
    """The stimuli of a study could not be made; the message says why."""


def _pixels_digest(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + str(rgb.shape).encode()).hexdigest()


def _load_sources(spec: StudySpec) -> dict[str, np.ndarray]:
    from codecs_adapter import load_rgb

    paths = sorted(p for p in spec.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    sources: dict[str, np.ndarray] = {}
    for path in paths:
        try:
            sources[path.stem] = load_rgb(path)
        except (OSError, ValueError) as exc:
            raise BuildFailed(f"images: {path.name} cannot be read: {exc}") from exc
    return sources


def _encode(
    spec: StudySpec, sources: dict[str, np.ndarray], build: StudyBuild
) -> list[EncodedStimulus]:
    import codecs_adapter
    from codecs_adapter.external import command_codec_from_mapping

    ladders = [codecs_adapter.Ladder(c.name, c.bpp) for c in spec.codecs]
    codecs = {
        c.name: command_codec_from_mapping(c.name, c.command)
        for c in spec.codecs
        if c.command is not None
    }

    def progress(done: int, total: int) -> None:
        StudyBuild.objects.filter(pk=build.pk).update(done=done, total=total)

    result = codecs_adapter.run_ladders(
        sources,
        ladders,
        codecs=codecs,
        cache=Path(settings.VAR_DIR) / "encode-cache",
        progress=progress,
        metrics=True,
    )
    if result.unreached:
        lines = [f"{u.image}: {u.message}" for u in result.unreached]
        raise BuildFailed("targets not reached (lower or raise them):\n" + "\n".join(lines))
    return [EncodedStimulus.from_record(record) for record in result.stimuli]


def _import(spec: StudySpec, sources: dict[str, np.ndarray]) -> list[EncodedStimulus]:
    import codecs_adapter

    stimuli: list[EncodedStimulus] = []
    expected = {name: _pixels_digest(rgb) for name, rgb in sources.items()}
    for folder in spec.imports:
        try:
            result = codecs_adapter.import_reconstructions(folder, metrics=True)
        except codecs_adapter.ImportInvalid as exc:
            raise BuildFailed(f"import {folder}:\n{exc.report.describe()}") from exc
        problems = [
            f"{name}: not a study image" for name in sorted(set(result.sources) - set(sources))
        ]
        problems += [
            f"{name}: no reconstructions of this study image"
            for name in sorted(set(sources) - set(result.sources))
        ]
        problems += [
            f"{name}: reference.png differs from the study's source image"
            for name, rgb in sorted(result.sources.items())
            if name in expected and _pixels_digest(rgb) != expected[name]
        ]
        if problems:
            raise BuildFailed(f"import {folder}:\n" + "\n".join(problems))
        stimuli += [EncodedStimulus.from_record(record) for record in result.stimuli]
    return stimuli


def study_build_run(*, build_id: int) -> StudyBuild:
    """Make a study's stimuli from its spec (the background task's work).

    A failure is recorded on the build with its message and the study stays a
    draft without stimuli; unexpected errors are raised again after that.
    """
    with transaction.atomic():
        build = (
            StudyBuild.objects.select_for_update(of=("self",))
            .select_related("study")
            .get(pk=build_id)
        )
        if build.status != TaskStatus.QUEUED:
            return build  # already run (a retried task)
        build.status = TaskStatus.RUNNING
        build.save(update_fields=["status"])
    study = build.study
    try:
        spec = parse_spec(study.spec_text, base_dir=Path(build.source_dir), source="spec")
        sources = _load_sources(spec)
        stimuli = _encode(spec, sources, build) + _import(spec, sources)
        study_add_stimuli(study=study, sources=sources, stimuli=stimuli)
    except (BuildFailed, ServiceError, ValueError) as exc:
        _build_end(build, TaskStatus.FAILED, str(exc))
        return build
    except Exception as exc:
        _build_end(build, TaskStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    _build_end(build, TaskStatus.SUCCEEDED, f"{len(stimuli)} stimuli of {len(sources)} images")
    return build


def _build_end(build: StudyBuild, status: TaskStatus, message: str) -> None:
    build.refresh_from_db(fields=["done", "total"])
    build.status = status
    build.message = message
    build.finished_at = timezone.now()
    build.save(update_fields=["status", "message", "finished_at"])
