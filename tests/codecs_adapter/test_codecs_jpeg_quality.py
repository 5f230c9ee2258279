"""JPEG's continuous quality: whole values are libjpeg's own; fractions lie in between.

The reference is libjpeg-turbo itself: Pillow's ``quality=`` calls libjpeg's
``jpeg_set_quality``, and a decoded file reports the tables libjpeg wrote into it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from codecs_adapter import encode_to_bpp, get_codec
from codecs_adapter.codecs import jpeg_quant_tables

IMAGE = np.ascontiguousarray(data.coffee()[100:164, 200:280])


def libjpeg_encode(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(
        buffer, "JPEG", quality=quality, subsampling="4:2:0", optimize=True, progressive=False
    )
    return buffer.getvalue()


def tables_in_file(jpeg: bytes) -> list[list[int]]:
    with Image.open(io.BytesIO(jpeg)) as image:
        quantization = image.quantization  # type: ignore[attr-defined]
    return [list(quantization[index]) for index in sorted(quantization)]


def test_whole_qualities_give_exactly_libjpegs_bytes() -> None:
    jpeg = get_codec("jpeg")
    for quality in range(1, 101):
        assert jpeg.encode(IMAGE, quality) == libjpeg_encode(IMAGE, quality), quality


@pytest.mark.parametrize("quality", [1, 7, 25, 49, 50, 51, 75, 99, 100])
def test_whole_quality_tables_are_the_ones_libjpeg_writes(quality: int) -> None:
    assert jpeg_quant_tables(quality) == tables_in_file(libjpeg_encode(IMAGE, quality))


@pytest.mark.parametrize("low", [5, 30, 49, 50, 80, 94])
def test_fractional_qualities_lie_between_their_whole_neighbours(low: int) -> None:
    jpeg = get_codec("jpeg")
    lower, upper = jpeg_quant_tables(low), jpeg_quant_tables(low + 1)
    rates = [len(jpeg.encode(IMAGE, low + step / 4)) for step in range(5)]
    for step in (1, 2, 3):
        tables = jpeg_quant_tables(low + step / 4)
        for table, below, above in zip(tables, lower, upper, strict=True):
            assert all(b >= t >= a for t, b, a in zip(table, below, above, strict=True))
        assert tables_in_file(jpeg.encode(IMAGE, low + step / 4)) == tables
    assert rates[0] <= min(rates) and max(rates) <= rates[-1]


def test_rate_control_lands_between_whole_qualities() -> None:
    jpeg = get_codec("jpeg")
    rates = {q: len(jpeg.encode(IMAGE, q)) * 8 / IMAGE[:, :, 0].size for q in (70, 71)}
    target = (rates[70] + rates[71]) / 2
    point = encode_to_bpp(jpeg, IMAGE, target, rel_tol=0.005)
    assert 70 < point.setting < 71
    assert point.bpp == pytest.approx(target, rel=0.005)


def test_qualities_outside_the_range_are_refused() -> None:
    for bad in (0.5, 100.5):
        with pytest.raises(ValueError, match="quality"):
            jpeg_quant_tables(bad)
