"""Reproducible study bundles: one zip another lab can re-analyse without our database.

Contents (docs/bundle.md):

- ``README.md``: what the files are and the command that reproduces the results;
- ``spec.toml`` (the study definition file, when the study came from one) and
  ``study.json`` (every setting of the study, whatever its origin);
- ``stimuli.csv``: one row per stimulus with sha256, bytes, bpp, codec library,
  version and settings, and its objective metrics;
- ``screening.json``: screening version and the study's policy;
- ``votes.csv`` (every vote at the time of the fit, in the public format),
  ``exclusions.csv`` (raters left out, who decided and why), ``conditions.csv``;
- ``fit.json``: the fit's settings and seed, the excluded raters and library
  versions;
- ``results/``: the fit's outputs as published (elo.csv, bd_rate.csv, ...).
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings

from studies.models import ConditionKind, Fit, Stimulus, Study

BUNDLE_INPUTS = ("votes.csv", "exclusions.csv", "conditions.csv")


def reproduce_command(fit: Fit) -> list[str]:
    """The command that re-runs the fit from the bundle's files."""
    command = [
        "python",
        "-m",
        "analysis",
        "fit",
        "votes.csv",
        "--conditions",
        "conditions.csv",
        "--anchor",
        fit.anchor_codec,
        "--seed",
        str(fit.seed),
        "--exclude-raters",
        "exclusions.csv",
        "--out",
        "reproduced",
    ]
    model = fit.summary.get("diagnostics", {}).get("model_name")
    if model:
        command[-2:-2] = ["--model", str(model)]
    if fit.fast:
        command.insert(-2, "--fast")
    return command


def stimuli_frame(study: Study) -> pd.DataFrame:
    rows = []
    for s in (
        Stimulus.objects.filter(condition__study=study)
        .select_related("condition", "source_image")
        .order_by("condition__kind", "condition__codec", "condition__rate_index", "source_image")
    ):
        rows.append(
            {
                "image": s.source_image.name,
                "condition": s.condition.name,
                "kind": s.condition.kind,
                "codec": s.condition.codec,
                "rate_index": s.condition.rate_index,
                "target_bpp": s.condition.target_bpp,
                "bpp": s.bpp,
                "bytes": s.bitstream_bytes,
                "sha256": s.sha256,
                "library": s.codec_library,
                "version": s.codec_version,
                "settings": json.dumps(s.settings, sort_keys=True),
                **{f"metric_{k}": v for k, v in sorted(s.metrics.items())},
            }
        )
    return pd.DataFrame(rows)


def study_settings(study: Study) -> dict[str, Any]:
    fields = [
        "slug",
        "title",
        "question",
        "instructions",
        "anchor_codec",
        "display_mode",
        "crop_size",
        "trials_per_session",
        "allow_ties",
        "min_view_ms",
        "min_flips",
        "golden_rate",
        "practice_trials",
        "pause_every",
        "screening_required",
        "platform",
        "sampling_strategy",
        "target_halfwidth",
        "vote_budget",
        "refresh_every",
        "auto_close",
        "closed_reason",
        "seed",
    ]
    return {
        **{name: getattr(study, name) for name in fields},
        "conditions": [
            {
                "name": c.name,
                "codec": c.codec,
                "rate_index": c.rate_index,
                "target_bpp": c.target_bpp,
            }
            for c in study.conditions.filter(kind=ConditionKind.STUDY)
        ],
    }


def _screening(study: Study) -> dict[str, Any]:
    from screening.models import SCREENING_VERSION
    from screening.services import policy_for

    policy = policy_for(study)
    return {
        "required": study.screening_required,
        "version": SCREENING_VERSION,
        "require_colour": policy.require_colour,
        "require_tritan": policy.require_tritan,
        "require_artifacts": policy.require_artifacts,
        "artifact_cutoff_level": policy.artifact_cutoff_level,
    }


def _readme(study: Study, fit: Fit) -> str:
    command = shlex.join(reproduce_command(fit))
    return f"""# Study bundle: {study.title}

Study `{study.slug}`, fit {fit.pk} of {fit.finished_at:%Y-%m-%d %H:%M} UTC, {fit.n_votes} votes
analysed ({len(fit.excluded_raters)} raters excluded; see exclusions.csv).

Re-run the analysis without the Codec Arena database (Python >= 3.12 with the
`analysis` package of Codec Arena installed, the versions in fit.json):

    {command}

`reproduced/` then holds the same elo.csv and bd_rate.csv as `results/`.

| file | what |
|---|---|
| spec.toml, study.json | how the study was defined and run |
| stimuli.csv | every stimulus: sha256, bytes, bpp, codec library, version, settings, metrics |
| screening.json | screening version and policy |
| votes.csv | every vote at the time of the fit (public format, docs/formats.md) |
| exclusions.csv | raters left out of the fit, who decided and why |
| conditions.csv | bpp of every condition on every image |
| fit.json | the fit's settings, seed, exclusions and library versions |
| results/ | the published outputs of the fit |
"""


def build_bundle(study: Study, fit: Fit) -> bytes:
    """The zip of a study and one of its successful fits.

    Raises
    ------
    ValueError
        The fit did not succeed or its files are missing.
    """
    if fit.status != Fit.Status.SUCCEEDED or not fit.output_dir:
        raise ValueError(f"fit {fit.pk} has no results to bundle")
    out_dir = Path(settings.MEDIA_ROOT) / fit.output_dir
    inputs = out_dir / "inputs"
    missing = [name for name in BUNDLE_INPUTS if not (inputs / name).is_file()]
    if missing:
        raise ValueError(f"fit {fit.pk} lacks its inputs: {', '.join(missing)}")
    fit_record = {
        "fit": fit.pk,
        "anchor": fit.anchor_codec,
        "seed": fit.seed,
        "fast": fit.fast,
        "excluded_raters": fit.excluded_raters,
        "n_votes": fit.n_votes,
        "finished_at": fit.finished_at.isoformat() if fit.finished_at else None,
        "command": reproduce_command(fit),
        "diagnostics": fit.summary.get("diagnostics", {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        prefix = f"{study.slug}-fit{fit.pk}/"
        bundle.writestr(prefix + "README.md", _readme(study, fit))
        if study.spec_text:
            bundle.writestr(prefix + "spec.toml", study.spec_text)
        bundle.writestr(prefix + "study.json", json.dumps(study_settings(study), indent=2))
        bundle.writestr(prefix + "stimuli.csv", stimuli_frame(study).to_csv(index=False))
        bundle.writestr(prefix + "screening.json", json.dumps(_screening(study), indent=2))
        bundle.writestr(prefix + "fit.json", json.dumps(fit_record, indent=2, default=str))
        for name in BUNDLE_INPUTS:
            bundle.write(inputs / name, prefix + name)
        for path in sorted(out_dir.iterdir()):
            if path.is_file():
                bundle.write(path, prefix + "results/" + path.name)
    return buffer.getvalue()
