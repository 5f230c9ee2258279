"""Stimulus PNGs carry pixels and nothing else; sources load by documented rules.

The PNG structure is checked by parsing the chunks here, from the PNG specification;
decoding is checked with two independent decoders (Pillow and imagecodecs' libpng).
Orientation is checked against Pillow's own ``ImageOps.exif_transpose``.
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zlib
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from codecs_adapter import load_rgb, pixels_sha256, png_bytes, sha256_bytes, write_png
from codecs_adapter.images import DEFAULT_MAX_PIXELS, ImageTooLarge

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The only chunks a stimulus may contain, in order (IDAT may repeat).
CRITICAL_CHUNKS = ("IHDR", "IDAT", "IEND")
#: IHDR of 8-bit truecolour, deflate, adaptive filtering method 0, no interlace.
IHDR_BIT_DEPTH, IHDR_COLOUR_TYPE_RGB = 8, 2

#: EXIF orientation tag.
ORIENTATION = 0x0112

PHOTO = np.ascontiguousarray(data.astronaut()[100:164, 150:230])


def parse_chunks(png: bytes) -> list[tuple[str, bytes]]:
    """Split a PNG file into (type, data) chunks, checking every CRC."""
    assert png[:8] == PNG_SIGNATURE
    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack_from(">I", png, offset)
        kind = png[offset + 4 : offset + 8]
        payload = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack_from(">I", png, offset + 8 + length)
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.append((kind.decode("ascii"), payload))
        offset += 12 + length
    return chunks


def save(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


# --- PNG writing -----------------------------------------------------------------------------


def test_png_holds_only_header_data_and_end_chunks() -> None:
    chunks = parse_chunks(png_bytes(PHOTO))
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == "IHDR" and kinds[-1] == "IEND"
    assert set(kinds) <= set(CRITICAL_CHUNKS)
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (width, height) == (PHOTO.shape[1], PHOTO.shape[0])
    assert (depth, colour) == (IHDR_BIT_DEPTH, IHDR_COLOUR_TYPE_RGB)
    assert (compression, filtering, interlace) == (0, 0, 0)


def test_png_round_trips_losslessly_through_two_decoders() -> None:
    png = png_bytes(PHOTO)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), PHOTO)
    assert np.array_equal(imagecodecs.png_decode(png), PHOTO)


def test_equal_pixels_give_identical_bytes_whatever_the_memory_layout() -> None:
    big = np.ascontiguousarray(data.astronaut())
    view = big[100:164, 150:230]  # not contiguous
    copy = np.array(view, order="C")
    fortran = np.asfortranarray(view)
    assert png_bytes(view) == png_bytes(copy) == png_bytes(fortran)


def test_png_of_edge_cases_round_trips() -> None:
    rng = np.random.default_rng(seed=7)
    for shape in [(1, 1, 3), (1, 17, 3), (13, 1, 3), (9, 11, 3)]:
        noise = rng.integers(0, 256, size=shape, dtype=np.uint8)
        assert np.array_equal(imagecodecs.png_decode(png_bytes(noise)), noise)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16)],
    ids=["grey", "rgba", "uint16"],
)
def test_png_refuses_anything_but_uint8_rgb(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        png_bytes(bad)


def test_write_png_writes_the_bytes_and_returns_their_sha256(tmp_path: Path) -> None:
    target = tmp_path / "stimulus.png"
    digest = write_png(PHOTO, target)
    written = target.read_bytes()
    assert written == png_bytes(PHOTO)
    assert digest == hashlib.sha256(written).hexdigest()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stimulus.png"]


def test_write_png_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "stimulus.png"
    target.write_bytes(b"old content")
    write_png(PHOTO, str(target))
    assert np.array_equal(load_rgb(target), PHOTO)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stimulus.png"]


def test_write_png_into_a_missing_folder_fails_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_png(PHOTO, tmp_path / "missing" / "stimulus.png")
    assert list(tmp_path.iterdir()) == []


def test_sha256_matches_the_fips_180_test_vector() -> None:
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_bytes(b"abc") == expected


# --- loading ---------------------------------------------------------------------------------


def test_rgb_png_loads_unchanged(tmp_path: Path) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / "rgb.png")
    loaded = load_rgb(path)
    assert loaded.dtype == np.uint8 and loaded.flags.c_contiguous
    assert np.array_equal(loaded, PHOTO)


def test_greyscale_is_replicated_into_three_channels(tmp_path: Path) -> None:
    grey = PHOTO[:, :, 1]
    path = save(Image.fromarray(grey), tmp_path / "grey.png")
    assert np.array_equal(load_rgb(path), np.stack([grey, grey, grey], axis=2))


def test_one_bit_images_become_black_and_white(tmp_path: Path) -> None:
    bits = PHOTO[:, :, 0] > 128
    path = save(Image.fromarray(bits), tmp_path / "bits.png")
    expected = np.where(bits, 255, 0).astype(np.uint8)
    assert np.array_equal(load_rgb(path), np.stack([expected] * 3, axis=2))


def expected_8_bit(samples: np.ndarray) -> np.ndarray:
    """The documented rule round(v * 255 / 65535), computed in floating point."""
    return np.round(samples.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


def test_16_bit_greyscale_is_rounded_to_8_bits(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 32).round().astype(np.uint16).reshape(64, 32)
    path = tmp_path / "grey16.png"
    path.write_bytes(imagecodecs.png_encode(ramp))
    expected = expected_8_bit(ramp)
    assert np.array_equal(load_rgb(path), np.stack([expected] * 3, axis=2))


def test_16_bit_colour_is_rounded_not_truncated(tmp_path: Path) -> None:
    rng = np.random.default_rng(seed=3)
    colour = rng.integers(0, 65536, size=(24, 40, 3), dtype=np.uint16)
    colour[0, 0] = (0, 65535, 255)  # 255 * 255 / 65535 = 0.99 rounds to 1; v >> 8 gives 0
    path = tmp_path / "rgb16.png"
    path.write_bytes(imagecodecs.png_encode(colour))
    assert np.array_equal(load_rgb(path), expected_8_bit(colour))


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    rgba = np.dstack([PHOTO, np.full(PHOTO.shape[:2], 255, np.uint8)])
    path = save(Image.fromarray(rgba), tmp_path / "rgba.png")
    assert np.array_equal(load_rgb(path), PHOTO)


def test_16_bit_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    colour = PHOTO.astype(np.uint16) * 257
    rgba = np.ascontiguousarray(np.dstack([colour, np.full(PHOTO.shape[:2], 65535, np.uint16)]))
    path = tmp_path / "rgba16.png"
    path.write_bytes(imagecodecs.png_encode(rgba))
    assert np.array_equal(load_rgb(path), PHOTO)


def test_any_transparent_pixel_is_refused(tmp_path: Path) -> None:
    alpha = np.full(PHOTO.shape[:2], 255, np.uint8)
    alpha[3, 5] = 254
    path = save(Image.fromarray(np.dstack([PHOTO, alpha])), tmp_path / "rgba.png")
    with pytest.raises(ValueError, match="opaque"):
        load_rgb(path)


def test_palette_images_expand_to_their_colours(tmp_path: Path) -> None:
    palette_image = Image.fromarray(PHOTO).quantize(colors=16)
    path = save(palette_image, tmp_path / "palette.png")
    assert np.array_equal(load_rgb(path), np.asarray(palette_image.convert("RGB")))


def test_a_transparent_palette_entry_in_use_is_refused(tmp_path: Path) -> None:
    palette_image = Image.fromarray(PHOTO).quantize(colors=16)
    used = int(np.asarray(palette_image)[0, 0])
    path = save(palette_image, tmp_path / "palette.png", transparency=used)
    with pytest.raises(ValueError, match="opaque"):
        load_rgb(path)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow_does(tmp_path: Path, orientation: int) -> None:
    image = Image.fromarray(PHOTO)
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    path = save(image, tmp_path / "oriented.png", exif=exif)
    with Image.open(path) as reopened:
        expected = np.asarray(ImageOps.exif_transpose(reopened).convert("RGB"))
    assert np.array_equal(load_rgb(path), expected)


def test_jpeg_sources_load_as_pillow_decodes_them(tmp_path: Path) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / "source.jpg", quality=90)
    with Image.open(path) as reopened:
        expected = np.asarray(reopened.convert("RGB"))
    assert np.array_equal(load_rgb(path), expected)


def test_animated_images_are_refused(tmp_path: Path) -> None:
    frames = [Image.fromarray(PHOTO), Image.fromarray(PHOTO[::-1].copy())]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="animated"):
        load_rgb(path)


def test_cmyk_images_are_refused(tmp_path: Path) -> None:
    path = save(Image.fromarray(PHOTO).convert("CMYK"), tmp_path / "cmyk.tif")
    with pytest.raises(ValueError, match="CMYK"):
        load_rgb(path)


def test_missing_files_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_rgb(tmp_path / "nothing.png")


# --- pixel limit and content digests ---------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its few bytes of data do not hold."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))


def test_load_rgb_refuses_images_over_the_pixel_limit_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    write_png(PHOTO, path)
    height, width, _ = PHOTO.shape
    with pytest.raises(ImageTooLarge, match=f"{width}x{height} = {width * height:,} pixels"):
        load_rgb(path, max_pixels=width * height - 1)
    assert np.array_equal(load_rgb(path, max_pixels=width * height), PHOTO)


@pytest.mark.parametrize("side", [20_000, 200_000])
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path, side: int) -> None:
    # 400 MP is over the default limit; 40 GP is over Pillow's own bomb check too.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(side, side))
    with pytest.raises(ImageTooLarge) as caught:
        load_rgb(path)
    assert caught.value.max_pixels == DEFAULT_MAX_PIXELS
    assert isinstance(caught.value, ValueError)


def test_pixel_digests_name_content_and_shape_not_files() -> None:
    flat = np.arange(36, dtype=np.uint8)
    wide, tall = flat.reshape(2, 6, 3), flat.reshape(6, 2, 3)
    assert pixels_sha256(wide) != pixels_sha256(tall)
    assert pixels_sha256(np.asfortranarray(PHOTO)) == pixels_sha256(PHOTO.copy())
    expected = hashlib.sha256(b"rgb8 2 6\n" + wide.tobytes()).hexdigest()
    assert pixels_sha256(wide) == expected
