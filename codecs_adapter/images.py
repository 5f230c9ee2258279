"""Reading source images and writing stimulus PNGs.

Sources are read into one canonical form, an 8-bit RGB array of shape ``(height, width,
3)``, by :func:`load_rgb`. Stimuli go to the browser as PNG files written by
:func:`png_bytes` / :func:`write_png`: a minimal file of IHDR, IDAT and IEND chunks only,
so that nothing in a stimulus (an encoder comment, a timestamp, a colour chunk that one
codec's decoder sets and another's does not) tells a rater or a curious browser which
codec made it. Identical pixels give byte-identical files, so a file's SHA-256 is a
stable name for its content.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Final

import imagecodecs
import numpy as np
import numpy.typing as npt
from PIL import Image

#: The canonical pixel array of this library: uint8, shape ``(height, width, 3)``, RGB.
RGB8 = npt.NDArray[np.uint8]

#: Number of colour channels of the canonical array.
RGB_CHANNELS: Final = 3

#: zlib level of the IDAT stream. Fixed, so that equal pixels give equal bytes. 6 (zlib's
#: default): on a 2 MP photograph level 9 took 3.3 times as long (4.4 s against 1.4 s)
#: for a file 1.2% smaller, too dear when a ladder writes hundreds of stimuli.
PNG_COMPRESSION_LEVEL: Final = 6

#: PNG filter applied to every scanline (4 = Paeth, PNG spec section 9.2). One fixed
#: filter instead of libpng's per-row heuristic keeps the output a pure function of the
#: pixels; Paeth suits photographs.
PNG_FILTER_PAETH: Final = 4

#: The eight-byte PNG signature (PNG spec section 5.2).
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"

#: IHDR fields for 8-bit truecolour, non-interlaced (PNG spec section 11.2.2).
PNG_BIT_DEPTH_8: Final = 8
PNG_COLOUR_TYPE_RGB: Final = 2
PNG_COMPRESSION_METHOD: Final = 0
PNG_FILTER_METHOD: Final = 0
PNG_INTERLACE_NONE: Final = 0

#: Bit depth that :func:`load_rgb` reads natively (sample values 0..65535).
BIT_DEPTH_16: Final = 16
#: Largest sample value of 8-bit and of 16-bit images.
MAX_8BIT: Final = 255
MAX_16BIT: Final = 65535

#: Byte offsets of the bit depth and colour type inside a PNG file (signature, IHDR length,
#: "IHDR", width, height, then bit depth and colour type).
_PNG_BIT_DEPTH_OFFSET: Final = 24
_PNG_IHDR_END: Final = 26

#: EXIF tag of the orientation (TIFF/EXIF 2.32, tag 0x0112) and its "as stored" value.
EXIF_ORIENTATION_TAG: Final = 0x0112
ORIENTATION_NORMAL: Final = 1

#: File mode of written stimuli: readable by a web server running as another user.
STIMULUS_FILE_MODE: Final = 0o644

#: Largest image, in pixels, that :func:`load_rgb` decodes unless told otherwise: 50
#: megapixels, above any image of a codec study (CLIC's are up to ~4 MP, an 8K UHD frame
#: is 33 MP) and far below what a small header can claim (a decompression bomb).
DEFAULT_MAX_PIXELS: Final = 50_000_000

#: Pillow modes that are 16-bit (or wider integer) greyscale.
_WIDE_GREY_MODES: Final = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def validate_rgb(rgb: np.ndarray, *, name: str = "rgb") -> RGB8:
    """Check that an array is the canonical RGB image and return it C-contiguous.

    Parameters
    ----------
    rgb : numpy.ndarray
        Candidate image.
    name : str, optional
        Name of the argument, for the error message.

    Returns
    -------
    numpy.ndarray
        The same pixels, uint8 of shape ``(height, width, 3)``, C-contiguous (a copy only
        when the input was not).

    Raises
    ------
    ValueError
        If the array is not uint8, not three-dimensional with three channels, or empty.
    """
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != RGB_CHANNELS:
        raise ValueError(f"{name} must have shape (height, width, 3), got {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


class ImageTooLarge(ValueError):
    """An image file claims more pixels than allowed (checked from its header, undecoded).

    Attributes
    ----------
    width, height : int or None
        The size the header claims (None if Pillow refused to read even the header).
    max_pixels : int
        The limit.
    """

    def __init__(
        self, source: object, *, width: int | None, height: int | None, max_pixels: int
    ) -> None:
        self.width = width
        self.height = height
        self.max_pixels = max_pixels
        size = f"{width}x{height} = {width * height:,} pixels" if width and height else "its size"
        super().__init__(
            f"{source}: {size} exceeds the limit of {max_pixels:,} pixels; "
            "not decoded (a decompression bomb, or a source far larger than a study needs)"
        )


def sha256_bytes(data: bytes) -> str:
    """Return the SHA-256 of some bytes as 64 lowercase hex digits.

    Parameters
    ----------
    data : bytes
        Any bytes-like content.

    Returns
    -------
    str
        The hex digest.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    """
    return hashlib.sha256(data).hexdigest()


def pixels_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of an image's pixels and shape: a name for its content, whatever the file.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.

    Returns
    -------
    str
        Hex digest of ``b"rgb8 <height> <width>\\n"`` followed by the pixel bytes in
        row-major order, so equal pixels give equal digests however they were stored.

    Raises
    ------
    ValueError
        If ``rgb`` is not a valid image.
    """
    pixels = validate_rgb(rgb)
    digest = hashlib.sha256(f"rgb8 {pixels.shape[0]} {pixels.shape[1]}\n".encode("ascii"))
    digest.update(pixels.tobytes())
    return digest.hexdigest()


# --- PNG writing -----------------------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """Frame one PNG chunk: length, type, data, CRC-32 over type and data."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _paeth_filtered_scanlines(rgb: RGB8) -> bytes:
    """Return the IDAT payload before compression: each row as filter byte + Paeth residuals.

    The Paeth predictor (PNG spec section 9.4) uses the unfiltered left, up and up-left
    bytes, all of which are known in advance, so the whole image filters in one pass.
    """
    height, width, channels = rgb.shape
    raw = rgb.reshape(height, width * channels).astype(np.int16)
    left = np.zeros_like(raw)
    left[:, channels:] = raw[:, :-channels]
    up = np.zeros_like(raw)
    up[1:, :] = raw[:-1, :]
    up_left = np.zeros_like(raw)
    up_left[1:, channels:] = raw[:-1, :-channels]

    estimate = left + up - up_left
    dist_left = np.abs(estimate - left)
    dist_up = np.abs(estimate - up)
    dist_up_left = np.abs(estimate - up_left)
    predictor = np.where(
        (dist_left <= dist_up) & (dist_left <= dist_up_left),
        left,
        np.where(dist_up <= dist_up_left, up, up_left),
    )
    residual = ((raw - predictor) & 0xFF).astype(np.uint8)
    rows = np.empty((height, width * channels + 1), dtype=np.uint8)
    rows[:, 0] = PNG_FILTER_PAETH
    rows[:, 1:] = residual
    return rows.tobytes()


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB image as a minimal, metadata-free, deterministic PNG.

    The file holds exactly three chunks, IHDR, one IDAT and IEND: no text, time, gamma,
    chromaticity, sRGB, ICC or physical-size chunks. Browsers treat such a file as sRGB.
    Every row uses the Paeth filter and the IDAT stream is compressed at
    :data:`PNG_COMPRESSION_LEVEL`, so equal pixels always give equal bytes with the same
    zlib build (a different zlib may compress the same pixels to different, equally
    valid, bytes).

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    ValueError
        If ``rgb`` is not a non-empty uint8 ``(height, width, 3)`` array.
    """
    pixels = validate_rgb(rgb)
    height, width, _ = pixels.shape
    header = struct.pack(
        ">IIBBBBB",
        width,
        height,
        PNG_BIT_DEPTH_8,
        PNG_COLOUR_TYPE_RGB,
        PNG_COMPRESSION_METHOD,
        PNG_FILTER_METHOD,
        PNG_INTERLACE_NONE,
    )
    compressed = zlib.compress(_paeth_filtered_scanlines(pixels), PNG_COMPRESSION_LEVEL)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", compressed)
        + _png_chunk(b"IEND", b"")
    )


def write_file_atomically(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write bytes to a file so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the destination's folder, are flushed to disk and
    then renamed over ``path`` (``os.replace``). The file gets mode
    :data:`STIMULUS_FILE_MODE`.

    Parameters
    ----------
    data : bytes
        The content.
    path : str or os.PathLike
        Destination file; its folder must exist. An existing file is replaced.

    Raises
    ------
    OSError
        If the folder does not exist or cannot be written; no temporary file is left.
    """
    destination = Path(path)
    handle, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_name, STIMULUS_FILE_MODE)
        os.replace(temp_name, destination)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_png(rgb: np.ndarray, path: str | os.PathLike[str]) -> str:
    """Write :func:`png_bytes` of an image to a file atomically; return its SHA-256.

    See :func:`write_file_atomically` for how the file is replaced.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 image of shape ``(height, width, 3)``.
    path : str or os.PathLike
        Destination file; its folder must exist. An existing file is replaced.

    Returns
    -------
    str
        SHA-256 hex digest of the bytes written.

    Raises
    ------
    ValueError
        If ``rgb`` is not a valid image.
    OSError
        If the folder does not exist or cannot be written; no temporary file is left.
    """
    data = png_bytes(rgb)
    write_file_atomically(data, path)
    return sha256_bytes(data)


# --- reading ---------------------------------------------------------------------------------


def _png_is_16_bit(path: Path) -> bool:
    """Tell whether a file is a PNG with 16-bit samples, from its IHDR alone."""
    with path.open("rb") as source:
        head = source.read(_PNG_IHDR_END)
    return (
        len(head) == _PNG_IHDR_END
        and head.startswith(PNG_SIGNATURE)
        and head[_PNG_BIT_DEPTH_OFFSET] == BIT_DEPTH_16
    )


def _scale_16_to_8(samples: np.ndarray) -> npt.NDArray[np.uint8]:
    """Map 16-bit samples to 8 bits as ``round(v * 255 / 65535)``, in exact integer maths."""
    wide = samples.astype(np.uint64)
    if wide.size and int(wide.max()) > MAX_16BIT:
        raise ValueError(f"sample values exceed the 16-bit range (max {int(wide.max())})")
    return ((wide * MAX_8BIT + MAX_16BIT // 2) // MAX_16BIT).astype(np.uint8)


def _require_opaque(alpha: np.ndarray, opaque: int, source: Path) -> None:
    """Raise unless every alpha value is fully opaque."""
    if not np.all(alpha == opaque):
        transparent = int(np.count_nonzero(alpha != opaque))
        raise ValueError(
            f"{source}: {transparent} of {alpha.size} pixels are not fully opaque; "
            "codec comparisons need an opaque image (flatten it onto a background first)"
        )


def _channels_to_rgb(samples: np.ndarray, opaque: int, source: Path) -> np.ndarray:
    """Turn a grey, grey+alpha, RGB or RGBA array into an RGB array of the same dtype."""
    if samples.ndim == 2:
        samples = samples[:, :, np.newaxis]
    channels = samples.shape[2]
    if channels in (2, 4):
        _require_opaque(samples[:, :, -1], opaque, source)
        samples = samples[:, :, :-1]
        channels -= 1
    if channels == 1:
        return np.repeat(samples, RGB_CHANNELS, axis=2)
    if channels == RGB_CHANNELS:
        return samples
    raise ValueError(f"{source}: unsupported number of channels: {channels}")


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into displayed pixels for an EXIF orientation value (1-8)."""
    if orientation == 2:
        return rgb[:, ::-1]
    if orientation == 3:
        return rgb[::-1, ::-1]
    if orientation == 4:
        return rgb[::-1, :]
    if orientation == 5:
        return rgb.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(rgb, k=-1)
    if orientation == 7:
        return rgb[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(rgb, k=1)
    return rgb


def _pillow_to_rgb(image: Image.Image, source: Path) -> RGB8:
    """Convert an opened 8-bit or 16-bit-greyscale Pillow image by the rules of load_rgb."""
    mode = image.mode
    if mode in _WIDE_GREY_MODES:
        return _scale_16_to_8(_channels_to_rgb(np.asarray(image), MAX_16BIT, source))
    # A transparent palette entry or colour key ("transparency") becomes real alpha here,
    # so that the opacity rule below sees it.
    has_key = "transparency" in image.info
    if mode == "P":
        image = image.convert("RGBA" if has_key else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("L", "RGB") and has_key:
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("RGBa", "PA"):
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ValueError(
            f"{source}: unsupported image mode {mode!r}; "
            "supply an RGB, greyscale or palette image (CMYK, Lab and float are not converted)"
        )
    return _channels_to_rgb(np.asarray(image), MAX_8BIT, source).astype(np.uint8)


def _check_pixel_limit(image: Image.Image, source: Path, max_pixels: int) -> None:
    """Raise ImageTooLarge if an opened (not yet decoded) image has too many pixels."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(source, width=width, height=height, max_pixels=max_pixels)


def open_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Open an image file lazily (header only), refusing it if it claims too many pixels.

    Parameters
    ----------
    path : str or os.PathLike
        Image file.
    max_pixels : int, optional
        Largest ``width * height`` accepted.

    Returns
    -------
    PIL.Image.Image
        The opened, undecoded image; close it (use it as a context manager).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PIL.UnidentifiedImageError
        If the file is not an image Pillow can read.
    ImageTooLarge
        If the header claims more than ``max_pixels`` pixels (also when Pillow's own
        decompression-bomb check refuses the file).
    """
    source = Path(path)
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(source, width=None, height=None, max_pixels=max_pixels) from exc
    try:
        _check_pixel_limit(image, source, max_pixels)
    except BaseException:
        image.close()
        raise
    return image


def load_rgb(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> RGB8:
    """Read an image file into the canonical uint8 RGB array.

    Rules, applied in this order:

    - A file whose header claims more than ``max_pixels`` pixels is refused before any
      pixel is decoded (see :class:`ImageTooLarge`).
    - Animated or multi-frame files are rejected.
    - The EXIF orientation tag is applied, so the array is the image as it is meant to
      be displayed (as browsers show it).
    - Greyscale (1-bit, 8-bit or 16-bit) is replicated into three equal channels; a
      palette image is expanded to its colours.
    - 16-bit samples (16-bit PNG of any colour type, 16-bit greyscale in any format
      Pillow reads) are mapped to 8 bits as ``round(v * 255 / 65535)``.
    - Alpha: a fully opaque alpha channel is dropped; any pixel that is not fully opaque
      makes the file rejected. Compositing onto a background would invent content that
      the researcher did not choose, so it is left to them.
    - Embedded ICC profiles are not applied: the stored code values are used as they
      are, and treated as sRGB (as the minimal stimulus PNGs will be).
    - Other modes (CMYK, Lab, YCbCr, float) are rejected.

    Parameters
    ----------
    path : str or os.PathLike
        Image file in any format Pillow reads (PNG, JPEG, TIFF, WebP, AVIF, ...).
    max_pixels : int, optional
        Largest ``width * height`` decoded; :data:`DEFAULT_MAX_PIXELS` by default.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(height, width, 3)``, C-contiguous.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PIL.UnidentifiedImageError
        If the file is not an image Pillow can read.
    ImageTooLarge
        If the image has more than ``max_pixels`` pixels (a subclass of ValueError).
    ValueError
        If the image is animated, has transparent pixels, or has an unsupported mode.
    """
    source = Path(path)
    with open_image(source, max_pixels=max_pixels) as image:
        if getattr(image, "n_frames", 1) > 1:
            raise ValueError(f"{source}: animated or multi-frame images are not supported")
        orientation = int(image.getexif().get(EXIF_ORIENTATION_TAG, ORIENTATION_NORMAL))
        if image.format == "PNG" and _png_is_16_bit(source):
            # Pillow reduces 16-bit colour PNGs to 8 bits by dropping the low byte;
            # imagecodecs keeps all 16 bits so that the rounding rule above holds.
            samples = np.asarray(imagecodecs.png_decode(source.read_bytes()))
            rgb = _scale_16_to_8(_channels_to_rgb(samples, MAX_16BIT, source))
        else:
            image.load()
            rgb = _pillow_to_rgb(image, source)
    return np.ascontiguousarray(_apply_orientation(rgb, orientation))
