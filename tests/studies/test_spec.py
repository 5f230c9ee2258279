"""Study definition files: a valid one reads into its settings; every kind of error is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.spec import SpecError, key_lines, parse_spec, read_spec


def _problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, base_dir=folder, source="study.toml")
    return str(caught.value).splitlines()


def _spec_with(folder: Path, old: str, new: str) -> str:
    text = (folder / "study.toml").read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def test_a_valid_spec_gives_the_study_its_settings(spec_folder: Path) -> None:
    spec = read_spec(spec_folder / "study.toml")
    assert (spec.slug, spec.title, spec.anchor) == ("spec-study", "A study from a spec", "jpeg")
    assert spec.images == (spec_folder / "images").resolve()
    assert [(c.name, c.bpp) for c in spec.codecs] == [("jpeg", (1.5, 3.0)), ("webp", (1.0, 2.0))]
    fields = spec.study_fields()
    assert fields["trials_per_session"] == 4
    assert fields["display_mode"] == "side-by-side"
    assert fields["completion_code"] == "SPEC-DONE"
    assert fields["screening_required"] is False
    assert "golden_rate" in fields and fields["golden_rate"] == 0.0


def test_key_lines_finds_keys_in_tables_and_arrays_of_tables(spec_folder: Path) -> None:
    lines = key_lines((spec_folder / "study.toml").read_text(encoding="utf-8"))
    assert lines["slug"] == 1
    assert lines["display.mode"] == 7
    assert lines["codec[1].bpp"] == 28


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # TOML syntax
        ('title = "A study from a spec"', "title = A study", "study.toml, line 2: (syntax)"),
        # an unknown key, top level and in a section
        ('anchor = "jpeg"', 'anchor = "jpeg"\ncolour = "blue"', "line 5: colour: unknown key"),
        (
            'mode = "side-by-side"',
            'mode = "side-by-side"\nzoom = 2',
            "line 8: display.zoom: unknown key",
        ),
        # a missing required key
        ('slug = "spec-study"\n', "", "study.toml: slug: missing: expected text"),
        # a wrong type
        (
            "trials = 4",
            'trials = "four"',
            "line 11: session.trials: expected a positive whole number, got 'four'",
        ),
        (
            "required = false",
            "required = 1",
            "line 16: screening.required: expected true or false, got 1",
        ),
        # a value out of its range
        (
            'mode = "side-by-side"',
            'mode = "tiled"',
            "line 7: display.mode: expected one of side-by-side, stacked, flip, got 'tiled'",
        ),
        (
            "golden_rate = 0.0",
            "golden_rate = 1.5",
            "line 13: session.golden_rate: expected a share from 0 up to (not including) 1",
        ),
        (
            'platform = "prolific"',
            'platform = "myspace"',
            "line 19: recruitment.platform: expected one of prolific, mturk, direct",
        ),
        (
            'slug = "spec-study"',
            'slug = "Spec Study!"',
            "line 1: slug: expected lower-case letters, digits and '-'",
        ),
        # sampling: the [sampling] table is inserted after [session] (line 15 on)
        (
            "[screening]",
            '[sampling]\nstrategy = "random"\n\n[screening]',
            "line 16: sampling.strategy: expected one of balanced, active, got 'random'",
        ),
        (
            "[screening]",
            "[sampling]\nrefresh_every = 0\n\n[screening]",
            "line 16: sampling.refresh_every: expected a positive whole number of votes, got 0",
        ),
        (
            "[screening]",
            '[sampling]\nstrategy = "active"\nauto_close = "yes"\n\n[screening]',
            "line 17: sampling.auto_close: expected true or false, got 'yes'",
        ),
        (
            "[screening]",
            "[sampling]\ntarget_halfwidth = -5\n\n[screening]",
            "line 16: sampling.target_halfwidth: expected positive percentage points, got -5",
        ),
        # codecs
        (
            "bpp = [1.5, 3.0]",
            "bpp = [3.0, 1.5]",
            "line 24: codec[0].bpp: expected a list of increasing positive target bitrates",
        ),
        ('name = "webp"', 'name = "vvc"', "line 27: codec[1].name: expected a built-in codec"),
        ('name = "webp"', 'name = "vvc"\ntype = "command"', "codec[1]: codec 'vvc': missing keys"),
        (
            'name = "webp"',
            'name = "jpeg"',
            "study.toml, line 22: codec: codec 'jpeg' is defined twice",
        ),
        (
            'anchor = "jpeg"',
            'anchor = "av1"',
            "line 4: anchor: expected one of the study's codecs (jpeg, webp), got 'av1'",
        ),
        # folders
        (
            'images = "images"',
            'images = "nowhere"',
            "line 3: images: expected an existing folder, but",
        ),
        (
            'anchor = "jpeg"',
            'anchor = "jpeg"\n\n[[import]]\nfolder = "missing"',
            "line 7: import[0].folder: expected an existing folder",
        ),
    ],
)
def test_each_problem_names_the_key_the_line_and_what_was_expected(
    spec_folder: Path, old: str, new: str, expected: str
) -> None:
    problems = _problems(spec_folder, _spec_with(spec_folder, old, new))
    assert any(expected in p for p in problems), problems


def test_the_sampling_keys_give_the_study_its_strategy_and_stopping_rule(
    spec_folder: Path,
) -> None:
    sampling = (
        '[sampling]\nstrategy = "active"\ntarget_halfwidth = 4.5\nvote_budget = 3000\n'
        "refresh_every = 150\nauto_close = true\n\n[screening]"
    )
    spec = parse_spec(
        _spec_with(spec_folder, "[screening]", sampling), base_dir=spec_folder, source="study.toml"
    )
    fields = spec.study_fields()
    assert (
        fields["sampling_strategy"],
        fields["target_halfwidth"],
        fields["vote_budget"],
        fields["refresh_every"],
        fields["auto_close"],
    ) == ("active", 4.5, 3000, 150, True)


def test_every_problem_is_reported_at_once(spec_folder: Path) -> None:
    text = _spec_with(spec_folder, "trials = 4", 'trials = "four"')
    text = text.replace('mode = "side-by-side"', 'mode = "tiled"')
    text = text.replace('images = "images"', 'images = "nowhere"')
    assert len(_problems(spec_folder, text)) == 3


def test_an_images_folder_without_pngs_is_refused(spec_folder: Path) -> None:
    empty = spec_folder / "empty"
    empty.mkdir()
    problems = _problems(
        spec_folder, _spec_with(spec_folder, 'images = "images"', 'images = "empty"')
    )
    assert any("images: expected PNG source images" in p for p in problems)


def test_a_spec_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot be read"):
        read_spec(tmp_path / "absent.toml")
