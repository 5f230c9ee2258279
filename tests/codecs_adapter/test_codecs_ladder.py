"""Ladders: targets per image, unreachable ones apart, the cache reused, runs resumed.

Real encoders throughout. Reuse is checked by counting real encoder calls: the external
quantiser codec (see conftest.py) appends a line to a log file each time it encodes, from
whatever process runs it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from codecs_adapter import (
    CommandCodec,
    CommandCodecConfig,
    EncodeCache,
    Ladder,
    StimulusRecord,
    TextProgress,
    UnknownCodecError,
    get_codec,
    run_ladders,
)
from codecs_adapter.ratecontrol import DEFAULT_REL_TOL

type Quantiser = Callable[..., CommandCodecConfig]

SIDE = 48
IMAGES = {
    "astronaut": np.ascontiguousarray(data.astronaut()[150 : 150 + SIDE, 180 : 180 + SIDE]),
    "chelsea": np.ascontiguousarray(data.chelsea()[80 : 80 + SIDE, 160 : 160 + SIDE]),
}
#: Targets the quantiser reaches on both crops (it spans about 1.7 to 21 bpp there).
QUANTISER_TARGETS = (3.0, 6.0, 10.0)
#: Targets JPEG and WebP reach on these small crops (JPEG's headers alone are ~1.2 bpp).
JPEG_TARGETS = (2.0, 4.0)
WEBP_TARGETS = (1.0, 2.0)


def comparable(stimulus: StimulusRecord) -> tuple[object, ...]:
    """Everything about a stimulus except how many encodes the search spent."""
    return (
        stimulus.image,
        stimulus.condition,
        stimulus.setting,
        stimulus.bpp,
        stimulus.sha256,
        stimulus.bitstream_sha256,
        tuple(sorted(stimulus.metrics.items())),
    )


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class StopAfter:
    """A progress callback that interrupts the run, like Ctrl+C, once some stimuli are done."""

    def __init__(self, stimuli: int) -> None:
        self.stimuli = stimuli
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        if done >= self.stimuli:
            raise KeyboardInterrupt


def test_every_target_is_hit_per_image_and_named_by_codec_and_rate() -> None:
    result = run_ladders(
        IMAGES,
        [Ladder("jpeg", JPEG_TARGETS), Ladder("webp", WEBP_TARGETS)],
        workers=1,
        metrics=False,
    )
    assert result.unreached == ()
    assert [(s.codec, s.rate_index, s.image) for s in result.stimuli] == [
        (codec, rate, image)
        for codec in ("jpeg", "webp")
        for rate in (0, 1)
        for image in ("astronaut", "chelsea")
    ]
    for stimulus in result.stimuli:
        assert stimulus.condition == f"{stimulus.codec}-r{stimulus.rate_index + 1}"
        assert stimulus.target_bpp is not None
        assert stimulus.within_tolerance == (
            abs(stimulus.bpp / stimulus.target_bpp - 1) <= DEFAULT_REL_TOL
        )
        # The stimulus is the codec's reconstruction at the recorded setting.
        codec = get_codec(stimulus.codec)
        assert stimulus.setting is not None
        bitstream = codec.encode(IMAGES[stimulus.image], stimulus.setting)
        assert len(bitstream) == stimulus.n_bytes
        shown = np.asarray(Image.open(io.BytesIO(stimulus.png)))
        assert np.array_equal(shown, codec.decode(bitstream))
        assert stimulus.library == codec.library and stimulus.version == codec.version
    assert result.encoder_calls + result.cache_hits == sum(s.encodes for s in result.stimuli)


def test_unreachable_targets_are_listed_apart_and_never_as_stimuli() -> None:
    result = run_ladders(
        {"astronaut": IMAGES["astronaut"]},
        [Ladder("jpeg", (0.01, 3.0, 40.0))],
        workers=1,
        metrics=False,
    )
    assert [s.target_bpp for s in result.stimuli] == [3.0]
    assert [(u.condition, u.target_bpp) for u in result.unreached] == [
        ("jpeg-r1", 0.01),
        ("jpeg-r3", 40.0),
    ]
    for unreached in result.unreached:
        assert unreached.min_bpp < 3.0 < unreached.max_bpp
        assert unreached.encodes >= 2
        assert unreached.message.startswith("astronaut: jpeg: target")
        assert "unreachable" in unreached.message


def test_stimuli_carry_their_metrics_which_the_cache_keeps(tmp_path: Path) -> None:
    image = {"astronaut": np.ascontiguousarray(data.astronaut()[:180, :180])}
    first = run_ladders(image, [Ladder("jpeg", (1.0,))], workers=1, cache=tmp_path)
    (stimulus,) = first.stimuli
    assert set(stimulus.metrics) == {"psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ssimulacra2"}
    assert list(tmp_path.rglob("*.metrics-*.json"))
    second = run_ladders(image, [Ladder("jpeg", (1.0,))], workers=1, cache=tmp_path)
    assert second.encoder_calls == 0
    assert second.stimuli[0].metrics == stimulus.metrics


def test_a_second_run_takes_every_encode_from_the_cache(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    log = tmp_path / "calls.log"
    codec = CommandCodec(quantiser_config(log=log))
    ladders = [Ladder("quant", QUANTISER_TARGETS)]
    cache = tmp_path / "cache"
    first = run_ladders(
        IMAGES, ladders, codecs={"quant": codec}, cache=cache, workers=1, metrics=False
    )
    encoded = log_lines(log)
    assert first.encoder_calls == len(encoded) == len(EncodeCache(cache))
    assert len(set(encoded)) == len(encoded)  # within a run, no encode twice
    second = run_ladders(
        IMAGES, ladders, codecs={"quant": codec}, cache=cache, workers=1, metrics=False
    )
    assert log_lines(log) == encoded  # the encoder never ran again
    assert second.encoder_calls == 0
    assert second.cache_hits == sum(s.encodes for s in second.stimuli)
    assert [comparable(s) for s in second.stimuli] == [comparable(s) for s in first.stimuli]


def test_an_interrupted_ladder_resumes_without_redoing_any_encode(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    ladders = [Ladder("quant", QUANTISER_TARGETS)]
    # The same ladder without interruption, for reference, in its own cache.
    reference_log = tmp_path / "reference.log"
    reference = run_ladders(
        IMAGES,
        ladders,
        codecs={"quant": CommandCodec(quantiser_config(log=reference_log))},
        cache=tmp_path / "reference-cache",
        workers=1,
        metrics=False,
    )

    log = tmp_path / "calls.log"
    codec = CommandCodec(quantiser_config(log=log))
    cache = tmp_path / "cache"
    stop = StopAfter(1)
    with pytest.raises(KeyboardInterrupt):
        run_ladders(
            IMAGES,
            ladders,
            codecs={"quant": codec},
            cache=cache,
            workers=1,
            progress=stop,
            metrics=False,
        )
    assert stop.calls == [(3, 6)]  # one image's ladder (three targets) done
    before = log_lines(log)
    assert 0 < len(before) < len(log_lines(reference_log))

    resumed = run_ladders(
        IMAGES, ladders, codecs={"quant": codec}, cache=cache, workers=1, metrics=False
    )
    after = log_lines(log)
    assert len(set(after)) == len(after)  # nothing encoded twice across the two runs
    assert sorted(after) == sorted(log_lines(reference_log))  # exactly the work of one run
    assert resumed.encoder_calls == len(after) - len(before)
    assert [comparable(s) for s in resumed.stimuli] == [comparable(s) for s in reference.stimuli]


@pytest.mark.slow
def test_worker_processes_give_the_same_result_and_resume_too(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    ladders = [Ladder("quant", QUANTISER_TARGETS), Ladder("jpeg", JPEG_TARGETS)]
    serial = run_ladders(
        IMAGES,
        ladders,
        codecs={"quant": CommandCodec(quantiser_config())},
        workers=1,
        metrics=False,
    )
    log = tmp_path / "calls.log"
    codec = CommandCodec(quantiser_config(log=log))
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        run_ladders(
            IMAGES,
            ladders,
            codecs={"quant": codec},
            cache=cache,
            workers=2,
            progress=StopAfter(1),
            metrics=False,
        )
    parallel = run_ladders(
        IMAGES, ladders, codecs={"quant": codec}, cache=cache, workers=2, metrics=False
    )
    calls = log_lines(log)
    assert len(set(calls)) == len(calls)
    assert parallel.cache_hits > 0
    assert [comparable(s) for s in parallel.stimuli] == [comparable(s) for s in serial.stimuli]


def test_a_damaged_cache_entry_is_encoded_again(
    tmp_path: Path, quantiser_config: Quantiser
) -> None:
    log = tmp_path / "calls.log"
    codec = CommandCodec(quantiser_config(log=log))
    ladders = [Ladder("quant", (6.0,))]
    image = {"astronaut": IMAGES["astronaut"]}
    first = run_ladders(
        image, ladders, codecs={"quant": codec}, cache=tmp_path / "c", workers=1, metrics=False
    )
    (bits, *_) = sorted((tmp_path / "c").rglob("*.bits"))
    bits.write_bytes(b"damaged")
    second = run_ladders(
        image, ladders, codecs={"quant": codec}, cache=tmp_path / "c", workers=1, metrics=False
    )
    assert second.encoder_calls == 1
    assert len(log_lines(log)) == first.encoder_calls + 1
    assert [comparable(s) for s in second.stimuli] == [comparable(s) for s in first.stimuli]


@pytest.mark.parametrize(
    ("targets", "message"),
    [((), "has no targets"), ((0.5, 0.2), "must increase"), ((0.0, 1.0), "must be positive")],
)
def test_ladders_need_increasing_positive_targets(targets: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ladder("jpeg", targets)


def test_bad_runs_are_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="same codec"):
        run_ladders(IMAGES, [Ladder("jpeg", (1.0,)), Ladder("jpeg", (2.0,))])
    with pytest.raises(UnknownCodecError, match="'vvc'"):
        run_ladders(IMAGES, [Ladder("vvc", (1.0,))])
    with pytest.raises(ValueError, match="workers"):
        run_ladders(IMAGES, [Ladder("jpeg", (1.0,))], workers=0)
    with pytest.raises(ValueError, match="image 'grey'"):
        run_ladders({"grey": np.zeros((8, 8), np.uint8)}, [Ladder("jpeg", (1.0,))])


def test_text_progress_draws_a_bar_and_ends_the_line() -> None:
    stream = io.StringIO()
    progress = TextProgress("stimuli", stream)
    progress(1, 4)
    progress(4, 4)
    text = stream.getvalue()
    assert "\r[" + "#" * 7 + "." * 23 + "] 1/4 stimuli" in text
    assert "] 4/4 stimuli" in text and text.endswith("\n")
