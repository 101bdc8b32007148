"""Media types: images, histograms, tables, audio and video, logged with ``run.log``.

Each type is a value for ``run.log``, alone or in a list under one key::

    run.log({"samples": [trackline.Image(x, caption=str(y)) for x, y in batch]})

The constructor runs on the training thread. It validates the input (bad input
raises ``TypeError``/``ValueError``/``FileNotFoundError`` right there, at the
call site) and takes a private snapshot: a copy of the array, the bytes of the
file, the rendered PNG of a matplotlib figure. A later in-place change by the
caller does not leak in. Nothing is encoded there: PNG, WAV, GIF and Parquet
encoding, hashing and file I/O happen in ``write``, on the run's writer thread.

``write(media_dir)`` stores each file once, as ``media/<sha256>.<ext>`` in the
run directory (written to a temporary name, then renamed: a reader never sees a
partial file; an existing file of that name is not rewritten), and returns the
item's description for the run's ``MediaRecord``. Every description holds
``path`` (relative to the run directory), ``sha256`` and ``size`` (bytes),
except a histogram's, which is small and kept inline (``counts``, ``edges``)
with no file.

Data problems that should not stop training (NaN pixels, out-of-range values)
are fixed as documented on each type and reported with one ``TracklineWarning``
per kind of problem.

numpy is required by the array inputs; Pillow by images, GIF video and image
files; pyarrow by tables. All of them are imported only when used.
"""

from __future__ import annotations

import hashlib
import io
import math
import operator
import os
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._media_base import Media
from ._warn import warn_once

if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[Any]

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_VIDEO_PIXELS",
    "Audio",
    "Histogram",
    "Image",
    "Table",
    "Video",
]

#: The largest image accepted, in pixels (8192 x 8192).
MAX_IMAGE_PIXELS = 8192 * 8192
#: The largest video accepted, in pixels over all frames (for example 1024 frames of 512 x 512).
MAX_VIDEO_PIXELS = 1 << 28
#: The most bins a histogram may have.
MAX_HISTOGRAM_BINS = 512
#: The most channels an audio clip may have.
MAX_AUDIO_CHANNELS = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Image file formats stored as they are; any other format Pillow reads is stored as PNG.
_KEPT_IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
_VIDEO_FILE_TYPES = {".gif": "gif", ".mp4": "mp4", ".webm": "webm"}
#: Pillow modes written to PNG as they are; other modes are converted to RGB(A).
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


# -- shared helpers ---------------------------------------------------------------------


def _np() -> Any:
    import numpy

    return numpy


def _mro_has(value: object, module: str, name: str) -> bool:
    """``isinstance`` against a class that may not be imported (no import is done)."""
    return any(c.__module__ == module and c.__name__ == name for c in type(value).__mro__)


def _is_dataframe(value: object) -> bool:
    # pandas 3 reports its classes as ``pandas.DataFrame``; earlier versions as
    # ``pandas.core.frame.DataFrame``.
    return any(
        c.__name__ == "DataFrame" and c.__module__.partition(".")[0] == "pandas"
        for c in type(value).__mro__
    )


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _existing_file(value: str | os.PathLike[str], what: str) -> Path:
    path = Path(value)
    if not path.is_file():
        if path.exists():
            raise ValueError(f"{what}: {str(path)!r} is not a file")
        raise FileNotFoundError(f"{what}: no such file: {str(path)!r}")
    return path


def _as_array(value: Any, what: str) -> tuple[Array, bool]:
    """``value`` as a numpy array, and whether that array is already a private copy.

    Accepts numpy arrays, torch tensors (detached; a device tensor is copied to the
    host, which waits for it), TensorFlow/Keras tensors, JAX arrays and nested lists.
    """
    np = _np()
    if isinstance(value, np.ndarray):
        return value, False
    module = type(value).__module__.partition(".")[0]
    if module == "torch":
        tensor = value.detach()
        if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            tensor = tensor.float()
        on_host = tensor.device.type == "cpu"
        return tensor.cpu().numpy(), not on_host
    if module in ("tensorflow", "keras") and hasattr(value, "numpy"):
        return np.asarray(value.numpy()), False
    if module in ("jax", "jaxlib"):
        return np.asarray(value), False
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{what}: the nested lists do not form an array ({exc})") from None
        return array, True
    raise TypeError(f"{what} cannot be made from {type(value).__module__}.{type(value).__name__}")


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _store(media_dir: Path, data: bytes, ext: str) -> dict[str, Any]:
    """Write ``data`` as ``<sha256>.<ext>`` once; its ``path``, ``sha256`` and ``size``."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest}.{ext}"
    target = media_dir / name
    if not target.exists():
        media_dir.mkdir(parents=True, exist_ok=True)
        temporary = media_dir / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return {"path": f"{media_dir.name}/{name}", "sha256": digest, "size": len(data)}


# -- pixels (images and video frames) -------------------------------------------------------


def _pixel_snapshot(array: Array, owned: bool, what: str, stacklevel: int) -> Array:
    """Check the dtype and values of image pixels; a private C-contiguous copy.

    Warns (once per kind) about NaN and about values that clipping will change;
    ``stacklevel`` counts the frames from here to the user's call.
    """
    np = _np()
    kind = array.dtype.kind
    if kind not in "buif":
        raise TypeError(f"{what}: pixels must be uint8, float, int or bool, not {array.dtype}")
    snapshot: Array = (
        np.ascontiguousarray(array) if owned else np.array(array, order="C", copy=True)
    )
    if kind == "f":
        low, high = snapshot.min(), snapshot.max()
        if math.isnan(low) or math.isnan(high):
            warn_once(
                "media:image-nan",
                f"trackline: {what} has NaN pixels; they are stored as 0 "
                "(further NaN pixels are fixed without a warning)",
                stacklevel=stacklevel + 1,
            )
        elif low < -0.5 / 255 or high >= 255.5 / 255:
            warn_once(
                "media:image-range",
                f"trackline: {what} has float pixels in [{low:.4g}, {high:.4g}], outside [0, 1]; "
                "they are clipped to [0, 1] (scale 0-255 data to [0, 1] or pass uint8)",
                stacklevel=stacklevel + 1,
            )
    elif kind in "iu" and array.dtype != np.uint8:
        low, high = snapshot.min(), snapshot.max()
        if low < 0 or high > 255:
            warn_once(
                "media:image-range",
                f"trackline: {what} has integer pixels in [{low}, {high}], outside [0, 255]; "
                "they are clipped to [0, 255]",
                stacklevel=stacklevel + 1,
            )
    return snapshot


def _to_uint8(pixels: Array) -> Array:
    """The documented pixel conversion (see ``Image``)."""
    np = _np()
    kind = pixels.dtype.kind
    if pixels.dtype == np.uint8:
        return pixels
    if kind == "b":
        return pixels.astype(np.uint8) * np.uint8(255)  # type: ignore[no-any-return]
    if kind == "f":
        scaled = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(scaled, 0.0, 1.0, out=scaled)
        scaled *= 255.0
        return np.rint(scaled).astype(np.uint8)  # type: ignore[no-any-return]
    return np.clip(pixels, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _channels_last(array: Array, what: str, leading: int) -> Array:
    """Move a channel axis to the end, by the rules of ``Image``; drop a single channel.

    ``leading`` is the number of axes before the image's own (1 for video frames).
    """
    shape = array.shape[leading:]
    if len(shape) == 2:
        return array
    if len(shape) != 3:
        raise ValueError(f"{what}: unsupported shape {_shape_text(array.shape)}")
    if shape[2] in (1, 3, 4):
        pass
    elif shape[0] in (1, 3, 4):
        axes = (*range(leading), leading + 1, leading + 2, leading)
        array = array.transpose(axes)
    else:
        raise ValueError(
            f"{what}: shape {_shape_text(array.shape)} has no channel axis of 1, 3 or 4 "
            "(first or last)"
        )
    if array.shape[-1] == 1:
        array = array[..., 0]
    return array


def _png_header(data: bytes) -> tuple[int, int, int]:
    """Width, height and channel count from a PNG's IHDR chunk."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height, _depth, color = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color, 3)
    return width, height, channels


def _check_pixels(width: int, height: int, what: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{what}: {width}x{height} is larger than the limit of "
            f"{MAX_IMAGE_PIXELS:,} pixels (8192x8192); downscale it first"
        )


def _pil_snapshot(image: Any) -> Array:
    """A PIL image as a uint8 array of 1, 3 or 4 channels."""
    np = _np()
    mode = image.mode
    if mode in ("1", "I", "I;16", "I;16B", "I;16L", "F"):
        image = image.convert("L")
    elif mode in ("LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)  # type: ignore[no-any-return]


class Image(Media):
    """An image, stored as PNG (image files in PNG, JPEG, GIF or WebP are kept as they are).

    ``data`` may be:

    - a numpy array, torch tensor, TensorFlow tensor or JAX array:
      2-D is grayscale ``(H, W)``; 3-D is ``(H, W, C)`` when the last axis is 1, 3
      or 4 long, else ``(C, H, W)`` when the first is (so ``(3, 32, 32)`` is CHW and
      ``(3, 32, 3)`` is HWC). C is 1 (grayscale), 3 (RGB) or 4 (RGBA).
      Pixels: ``uint8`` as they are; ``float`` in [0, 1] become ``round(x * 255)``
      (half to even), values outside are clipped and NaN becomes 0 (one warning each);
      ``bool`` becomes 0 / 255; other integer types are taken as 0-255 levels, clipped
      (one warning). At most ``MAX_IMAGE_PIXELS`` (8192 x 8192) pixels.
    - a PIL image: L, RGB and RGBA as they are; 1/I/F to L; LA, PA and P with
      transparency to RGBA; other modes (CMYK, YCbCr, P...) to RGB.
    - a matplotlib ``Figure``: rendered to PNG now (``savefig``, the figure's dpi).
    - a path (``str`` or ``os.PathLike``) to an image file: its bytes are read now.
    - another ``Image`` (its caption is replaced when ``caption`` is given).

    Overlays as W&B takes them, drawn on the image in the dashboard with a toggle per class:

    - ``masks={"predictions": {"mask_data": array, "class_labels": {0: "bg", 1: "cat"}}}``:
      a 2-D array of class ids (0-255) the image's size, stored as a PNG of its own;
    - ``boxes={"truth": {"box_data": [{"position": {"minX", "maxX", "minY", "maxY"}
      (or {"middle": [x, y], "width", "height"}), "class_id": 1, "box_caption": "cat",
      "scores": {"iou": 0.8}, "domain": "pixel"}], "class_labels": {1: "cat"}}}``:
      positions in pixels with ``"domain": "pixel"``, else as fractions of the image.

    The item description: ``path``, ``sha256``, ``size``, ``width``, ``height``,
    ``channels``, ``format``, ``caption``; with overlays ``masks`` (per name: the mask
    file's ``path``, ``sha256``, ``class_labels``) and ``boxes`` (per name, as given).
    """

    kind = "image"

    def __init__(
        self,
        data: Any,
        caption: str | None = None,
        masks: Mapping[str, Any] | None = None,
        boxes: Mapping[str, Any] | None = None,
        classes: Any = None,
        **_wandb: Any,
    ) -> None:
        self.caption = None if caption is None else str(caption)
        self._masks = _masks(masks)
        self._boxes = _boxes(boxes)
        self._pixels: Array | None = None
        self._encoded: bytes | None = None
        self.format = "png"
        self.width = self.height = self.channels = 0
        if isinstance(data, Image):
            self._pixels, self._encoded, self.format = data._pixels, data._encoded, data.format
            self.width, self.height, self.channels = data.width, data.height, data.channels
            if caption is None:
                self.caption = data.caption
            self._masks = self._masks or data._masks
            self._boxes = self._boxes or data._boxes
        elif _mro_has(data, "matplotlib.figure", "Figure"):
            self._from_figure(data)
        elif _mro_has(data, "PIL.Image", "Image"):
            _check_pixels(data.size[0], data.size[1], "Image")
            self._from_array(_pil_snapshot(data), owned=True)
        elif _is_path(data):
            self._from_file(data)
        else:
            array, owned = _as_array(data, "Image")
            self._from_array(array, owned)

    def _from_array(self, array: Array, owned: bool) -> None:
        if array.size == 0:
            raise ValueError(f"Image: the array is empty (shape {_shape_text(array.shape)})")
        if array.ndim not in (2, 3):
            hint = "; log a list of images for a batch" if array.ndim == 4 else ""
            raise ValueError(
                f"Image: expected (H, W), (H, W, C) or (C, H, W), "
                f"got shape {_shape_text(array.shape)}{hint}"
            )
        array = _channels_last(array, "Image", 0)
        self.height, self.width = int(array.shape[0]), int(array.shape[1])
        self.channels = 1 if array.ndim == 2 else int(array.shape[2])
        _check_pixels(self.width, self.height, "Image")
        self._pixels = _pixel_snapshot(array, owned, "Image", 4)

    def _from_figure(self, figure: Any) -> None:
        # matplotlib is not thread-safe: render here, on the caller's thread. ``savefig``
        # switches to an Agg canvas for the call only and leaves pyplot's state alone.
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self._encoded = buffer.getvalue()
        self.width, self.height, self.channels = _png_header(self._encoded)
        _check_pixels(self.width, self.height, "Image")

    def _from_file(self, path_like: str | os.PathLike[str]) -> None:
        import PIL.Image

        path = _existing_file(path_like, "Image")
        data = path.read_bytes()
        try:
            with PIL.Image.open(io.BytesIO(data)) as image:  # reads the header only
                self.width, self.height = image.size
                bands = len(image.getbands())
                image_format = image.format or ""
                mode = image.mode
        except (PIL.UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"Image: {str(path)!r} is not an image file Pillow can read") from exc
        _check_pixels(self.width, self.height, "Image")
        self._encoded = data
        if image_format in _KEPT_IMAGE_FORMATS:
            self.format = _KEPT_IMAGE_FORMATS[image_format]
            self.channels = bands
        else:  # re-encoded as PNG on the writer thread
            self.format = "png"
            if mode in _PNG_MODES:
                self.channels = bands
            else:
                self.channels = 4 if "A" in mode else 3

    def _file_bytes(self) -> bytes:
        import PIL.Image

        if self._pixels is not None:
            buffer = io.BytesIO()
            # Level 1: several times faster than the default (6) for ~15% larger files; the
            # writer thread that encodes this also carries the run's metrics.
            PIL.Image.fromarray(_to_uint8(self._pixels)).save(
                buffer, format="PNG", compress_level=1
            )
            return buffer.getvalue()
        assert self._encoded is not None
        if self.format != "png" or self._encoded[:8] == _PNG_SIGNATURE:
            return self._encoded
        # Another format Pillow reads (BMP, TIFF...): stored as PNG.
        with PIL.Image.open(io.BytesIO(self._encoded)) as opened:
            image: PIL.Image.Image = opened
            if image.mode not in _PNG_MODES:
                image = opened.convert("RGBA" if "A" in opened.mode else "RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
        return buffer.getvalue()

    def write(self, media_dir: Path) -> dict[str, Any]:
        """Encode (PNG) and store the image (and its masks); its description."""
        item = _store(media_dir, self._file_bytes(), self.format)
        item.update(
            width=self.width,
            height=self.height,
            channels=self.channels,
            format=self.format,
            caption=self.caption,
        )
        if self._masks:
            import PIL.Image

            item["masks"] = {}
            files = []
            for name, (mask, labels) in self._masks.items():
                buffer = io.BytesIO()
                PIL.Image.fromarray(mask).save(buffer, format="PNG")
                stored = _store(media_dir, buffer.getvalue(), "png")
                item["masks"][name] = {**stored, "class_labels": labels}
                files.append(stored)
            item["files"] = files  # uploaded with the image
        if self._boxes:
            item["boxes"] = self._boxes
        return item

    def __repr__(self) -> str:
        return f"<trackline.Image {self.width}x{self.height}x{self.channels} {self.format}>"


def _labels(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"Image: {what} class_labels must be a dict of class id -> name")
    return {str(int(k)): str(v) for k, v in value.items()}


def _masks(masks: Mapping[str, Any] | None) -> dict[str, tuple[Any, dict[str, str]]]:
    """Each mask as (a private uint8 array of class ids, its class labels)."""
    import numpy as np

    out: dict[str, tuple[Any, dict[str, str]]] = {}
    for name, mask in (masks or {}).items():
        if not isinstance(mask, Mapping) or "mask_data" not in mask:
            raise TypeError(f"Image: masks[{name!r}] needs 'mask_data' (a 2-D array of class ids)")
        array, _owned = _as_array(mask["mask_data"], "Image mask")
        if array.ndim != 2:
            raise ValueError(f"Image: masks[{name!r}] must be 2-D, not {_shape_text(array.shape)}")
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"Image: masks[{name!r}] class ids must be 0 to 255")
        out[str(name)] = (
            np.ascontiguousarray(array, dtype=np.uint8),
            _labels(mask.get("class_labels"), f"masks[{name!r}]"),
        )
    return out


_BOX_KEYS = ("position", "class_id", "box_caption", "scores", "domain")


def _boxes(boxes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Boxes as plain JSON: positions as numbers, the rest as given (W&B's layout)."""
    out: dict[str, Any] = {}
    for name, group in (boxes or {}).items():
        if not isinstance(group, Mapping) or "box_data" not in group:
            raise TypeError(f"Image: boxes[{name!r}] needs 'box_data' (a list of boxes)")
        data = []
        for box in group["box_data"]:
            position = box.get("position") if isinstance(box, Mapping) else None
            if not isinstance(position, Mapping):
                raise TypeError(f"Image: each box of boxes[{name!r}] needs a 'position' dict")
            clean = {k: box[k] for k in _BOX_KEYS if k in box}
            clean["position"] = {
                k: [float(x) for x in v] if isinstance(v, (list, tuple)) else float(v)
                for k, v in position.items()
            }
            clean["class_id"] = int(box.get("class_id", 0))
            if "scores" in box:
                clean["scores"] = {str(k): float(v) for k, v in box["scores"].items()}
            data.append(clean)
        out[str(name)] = {
            "box_data": data,
            "class_labels": _labels(group.get("class_labels"), f"boxes[{name!r}]"),
        }
    return out


# -- histograms ------------------------------------------------------------------------------


class Histogram(Media):
    """A histogram: ``Histogram(values, bins=64)`` or ``Histogram(np_histogram=(counts, edges))``.

    ``values`` (array, tensor or sequence of numbers, any shape) are binned now with
    ``numpy.histogram(values, bins)``; ``bins`` is 1 to ``MAX_HISTOGRAM_BINS`` (512).
    NaN and +-inf values are left out (one warning); if none is left, all counts are 0.
    ``np_histogram`` is what ``numpy.histogram`` returns: ``counts`` (1-D, finite) and
    ``edges`` (one longer, finite, non-decreasing).

    A histogram is stored inline, with no file: the item description is
    ``{"counts": [...], "edges": [...]}`` (no ``path`` or ``sha256``).
    """

    kind = "histogram"

    def __init__(
        self,
        values: Any = None,
        bins: int = 64,
        *,
        np_histogram: tuple[Any, Any] | None = None,
    ) -> None:
        np = _np()
        self.counts: list[float]
        self.edges: list[float]
        if (values is None) == (np_histogram is None):
            raise TypeError("Histogram takes either values or np_histogram=(counts, edges)")
        if np_histogram is not None:
            self.counts, self.edges = _checked_histogram(np_histogram)
            return
        if isinstance(bins, bool) or not hasattr(bins, "__index__"):
            raise TypeError(f"Histogram: bins must be an int, not {type(bins).__name__}")
        bins = operator.index(bins)
        if not 1 <= bins <= MAX_HISTOGRAM_BINS:
            raise ValueError(f"Histogram: bins must be 1 to {MAX_HISTOGRAM_BINS}, not {bins}")
        array, _owned = _as_array(values, "Histogram")
        if array.size == 0:
            raise ValueError("Histogram: values is empty")
        if array.dtype.kind not in "buif":
            raise TypeError(f"Histogram: values must be numbers, not {array.dtype}")
        array = array.ravel()
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                warn_once(
                    "media:histogram-nonfinite",
                    "trackline: Histogram values hold NaN or inf; they are left out",
                    stacklevel=3,
                )
                array = array[finite]
        elif array.dtype.kind == "b":
            array = array.astype(np.uint8)
        counts, edges = np.histogram(array, bins=bins)
        self.counts = counts.tolist()
        self.edges = edges.astype(np.float64).tolist()

    def write(self, media_dir: Path) -> dict[str, Any]:
        """The description (no file is written)."""
        return {"counts": list(self.counts), "edges": list(self.edges)}

    def __repr__(self) -> str:
        return f"<trackline.Histogram {len(self.counts)} bins>"


def _checked_histogram(pair: Any) -> tuple[list[float], list[float]]:
    np = _np()
    try:
        raw_counts, raw_edges = pair
    except (TypeError, ValueError):
        raise TypeError("Histogram: np_histogram must be a pair (counts, edges)") from None
    counts, _ = _as_array(raw_counts, "Histogram counts")
    edges, _ = _as_array(raw_edges, "Histogram edges")
    if counts.ndim != 1 or edges.ndim != 1:
        raise ValueError("Histogram: counts and edges must be 1-D")
    if counts.size == 0:
        raise ValueError("Histogram: counts is empty")
    if counts.size > MAX_HISTOGRAM_BINS:
        raise ValueError(f"Histogram: more than {MAX_HISTOGRAM_BINS} bins ({counts.size})")
    if edges.size != counts.size + 1:
        raise ValueError(
            f"Histogram: edges must have one more element than counts "
            f"({edges.size} edges, {counts.size} counts)"
        )
    if counts.dtype.kind not in "buif" or edges.dtype.kind not in "buif":
        raise TypeError("Histogram: counts and edges must be numbers")
    if not (np.isfinite(counts).all() and np.isfinite(edges).all()):
        raise ValueError("Histogram: counts and edges must be finite")
    if (np.diff(edges) < 0).any():
        raise ValueError("Histogram: edges must be sorted (non-decreasing)")
    if counts.dtype.kind == "b":
        counts = counts.astype(np.int64)
    return counts.tolist(), edges.astype(np.float64).tolist()


# -- tables ----------------------------------------------------------------------------------

#: Field metadata on a Parquet column whose cells are image paths.
TABLE_IMAGE_METADATA = {b"trackline.kind": b"image"}


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # fail now, not on the writer thread
    except ImportError:
        raise ImportError(
            "trackline.Table stores tables as Parquet and needs pyarrow: pip install pyarrow"
        ) from None
    return pyarrow


def _cell(value: Any) -> Any:
    """A numpy scalar or 0-d array or tensor as a Python scalar; other cells as they are."""
    module = type(value).__module__.partition(".")[0]
    if module in ("numpy", "torch", "tensorflow", "jax", "jaxlib"):
        shape = getattr(value, "shape", None)
        if shape is not None and tuple(shape) == ():
            if module == "tensorflow":
                value = value.numpy()
            return value.item()
    return value


class Table(Media):
    """A table, stored as Parquet (needs ``pyarrow``).

    Give ``columns`` (names) and ``data`` (a list of rows, or a 2-D array), or a pandas
    ``dataframe`` (its index is not kept; column names become strings). Without
    ``columns`` they are named ``"0"``, ``"1"``, ... Cells may be ``None``, ``bool``,
    ``int``, ``float``, ``str``, ``bytes``, numpy scalars or 0-d tensors, ``Image``, and
    whatever else pyarrow infers a type for (lists, dicts...).
    Each column's type is inferred by pyarrow (ints and floats mixed become float);
    a column mixing, say, ``str`` and ``int`` raises ``TypeError``. A column of images
    (``None`` allowed) stores each image as a media file and the cell as its ``path``;
    such a Parquet field has the metadata ``{"trackline.kind": "image"}``.

    The item description: ``path``, ``sha256``, ``size``, ``format`` (``"parquet"``),
    ``columns``, ``types`` (pyarrow type names; ``"image"`` for image columns), ``rows``.
    """

    kind = "table"

    def __init__(
        self,
        columns: Sequence[Any] | None = None,
        data: Any = None,
        dataframe: Any = None,
    ) -> None:
        pa = _pyarrow()
        if dataframe is None and _is_dataframe(data):
            data, dataframe = None, data
        if dataframe is not None:
            if data is not None:
                raise TypeError("Table takes data or dataframe, not both")
            names, arrays = self._from_dataframe(pa, dataframe, columns)
        else:
            names, arrays = self._from_rows(pa, columns, data)
        if not names:
            raise ValueError("Table: a table needs at least one column")
        if len(set(names)) != len(names):
            raise ValueError(f"Table: column names must be unique: {names}")
        self.columns: list[str] = names
        self._built: list[Any] = arrays  # a pyarrow Array, or a list of Image | None
        self._pending: list[list[Any]] = []  # rows added by add_data, not yet in _built

    # -- W&B's Table methods ---------------------------------------------------------------

    @property
    def _arrays(self) -> list[Any]:
        if self._pending:
            pa = _pyarrow()
            rows, self._pending = self._pending, []
            columns = []
            for j, (name, column) in enumerate(zip(self.columns, self._built, strict=True)):
                before = column if isinstance(column, list) else column.to_pylist()
                columns.append(_column(pa, name, before + [_cell(row[j]) for row in rows]))
            self._built = columns
        return self._built

    @property
    def rows(self) -> int:
        return len(self._built[0]) + len(self._pending)

    @property
    def data(self) -> list[list[Any]]:
        """The rows, as lists of cells."""
        columns = [c if isinstance(c, list) else c.to_pylist() for c in self._arrays]
        return [list(row) for row in zip(*columns, strict=True)]

    def add_data(self, *cells: Any) -> None:
        """Append one row (one cell per column). A table already logged keeps its rows."""
        if len(cells) != len(self.columns):
            raise ValueError(f"Table.add_data: {len(cells)} cells for {len(self.columns)} columns")
        self._pending.append(list(cells))

    def add_column(self, name: str, data: Sequence[Any]) -> None:
        """Append a column of ``len(data) == rows`` cells."""
        name = str(name)
        if name in self.columns:
            raise ValueError(f"Table.add_column: there is a column {name!r} already")
        cells = list(data)
        if len(cells) != self.rows:
            raise ValueError(f"Table.add_column: {len(cells)} cells for {self.rows} rows")
        arrays = self._arrays
        self._built = [*arrays, _column(_pyarrow(), name, [_cell(c) for c in cells])]
        self.columns = [*self.columns, name]

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """A column's cells as a list (``convert_to="numpy"``: an array)."""
        if name not in self.columns:
            raise KeyError(f"Table has no column {name!r}")
        column = self._arrays[self.columns.index(name)]
        values = column if isinstance(column, list) else column.to_pylist()
        if convert_to == "numpy":
            import numpy as np

            return np.asarray(values)
        return values

    def get_index(self) -> list[int]:
        """The row numbers, 0 to ``rows - 1``."""
        return list(range(self.rows))

    def frozen(self) -> Table:
        copy = Table.__new__(Table)
        copy.columns = list(self.columns)
        copy._built = list(self._arrays)  # pyarrow arrays are immutable; image lists copied
        copy._built = [list(c) if isinstance(c, list) else c for c in copy._built]
        copy._pending = []
        return copy

    @staticmethod
    def _from_rows(
        pa: Any, columns: Sequence[Any] | None, data: Any
    ) -> tuple[list[str], list[Any]]:
        if data is None:
            data = []
        elif type(data).__module__.partition(".")[0] in ("numpy", "torch", "tensorflow"):
            array, _owned = _as_array(data, "Table data")
            if array.ndim != 2:
                raise ValueError(f"Table: data must be 2-D, got shape {_shape_text(array.shape)}")
            data = array.tolist()
        elif isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
            raise TypeError(f"Table: data must be a list of rows, not {type(data).__name__}")
        rows: list[list[Any]] = []
        for number, row in enumerate(data):
            if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
                raise TypeError(
                    f"Table: row {number} is a {type(row).__name__}, not a sequence of cells"
                )
            rows.append(list(row))
        if columns is None:
            width = len(rows[0]) if rows else 0
            names = [str(i) for i in range(width)]
        else:
            if isinstance(columns, (str, bytes)):
                raise TypeError("Table: columns must be a list of names, not a string")
            names = [str(name) for name in columns]
        for number, row in enumerate(rows):
            if len(row) != len(names):
                raise ValueError(
                    f"Table: row {number} has {len(row)} cells for {len(names)} columns"
                )
        arrays = [
            _column(pa, name, [_cell(row[j]) for row in rows]) for j, name in enumerate(names)
        ]
        return names, arrays

    @staticmethod
    def _from_dataframe(
        pa: Any, frame: Any, columns: Sequence[Any] | None
    ) -> tuple[list[str], list[Any]]:
        if not _is_dataframe(frame):
            raise TypeError(
                f"Table: dataframe must be a pandas DataFrame, not {type(frame).__name__}"
            )
        if columns is not None:
            frame = frame[list(columns)]
        names = [str(name) for name in frame.columns]
        arrays: list[Any] = []
        for position, name in enumerate(names):
            series = frame.iloc[:, position]
            if series.dtype == object:
                arrays.append(_column(pa, name, [_cell(v) for v in series.tolist()]))
                continue
            try:
                # from_pandas copies the data into Arrow memory: the snapshot.
                arrays.append(pa.Array.from_pandas(series))
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise TypeError(f"Table: column {name!r} cannot be stored: {exc}") from None
        return names, arrays

    def _arrow_table(self, media_dir: Path) -> Any:
        pa = _pyarrow()
        fields = []
        arrays = []
        for name, column in zip(self.columns, self._arrays, strict=True):
            if isinstance(column, list):  # images
                described = [None if cell is None else cell.write(media_dir) for cell in column]
                self._cell_files.extend(d for d in described if d is not None)
                paths = [None if d is None else d["path"] for d in described]
                arrays.append(pa.array(paths, type=pa.string()))
                fields.append(pa.field(name, pa.string(), metadata=TABLE_IMAGE_METADATA))
            else:
                arrays.append(column)
                fields.append(pa.field(name, column.type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def write(self, media_dir: Path) -> dict[str, Any]:
        """Store the images, then the table as Parquet; its description."""
        import pyarrow.parquet as pq

        self._cell_files: list[dict[str, Any]] = []
        table = self._arrow_table(media_dir)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        item = _store(media_dir, sink.getvalue(), "parquet")
        item.update(
            format="parquet",
            columns=list(self.columns),
            types=[
                "image" if isinstance(column, list) else str(column.type) for column in self._arrays
            ],
            rows=self.rows,
        )
        if self._cell_files:
            # The image cells' own files, so that they are uploaded with the table.
            item["files"] = [
                {"path": d["path"], "sha256": d["sha256"], "size": d.get("size", 0)}
                for d in self._cell_files
            ]
        return item

    def __repr__(self) -> str:
        return f"<trackline.Table {self.rows} rows x {len(self.columns)} columns>"


def _column(pa: Any, name: str, cells: list[Any]) -> Any:
    """A pyarrow array of ``cells`` (type inferred), or the list itself for an image column."""
    images = [isinstance(cell, Image) for cell in cells]
    if any(images):
        if not all(is_image or cell is None for is_image, cell in zip(images, cells, strict=True)):
            raise TypeError(f"Table: column {name!r} mixes images and other values")
        return cells
    for cell in cells:
        if isinstance(cell, Media):
            raise TypeError(
                f"Table: column {name!r} holds a {type(cell).__name__}; only Image cells are supported"
            )
    try:
        return pa.array(cells)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"Table: column {name!r} cannot be stored: {exc}") from None


# -- audio -----------------------------------------------------------------------------------

#: numpy dtype -> (WAV format tag, bits per sample, little-endian dtype stored).
_WAV_DTYPES = {
    "uint8": (1, 8, "u1"),
    "int16": (1, 16, "<i2"),
    "int32": (1, 32, "<i4"),
    "float16": (3, 32, "<f4"),
    "float32": (3, 32, "<f4"),
    "float64": (3, 32, "<f4"),
}


def wav_bytes(samples: Array, sample_rate: int) -> bytes:
    """A WAV file of ``samples`` (``(n, channels)``), PCM for ints, IEEE float32 for floats."""
    tag, bits, stored = _WAV_DTYPES[samples.dtype.name]
    frames, channels = samples.shape
    data = samples.astype(stored, copy=False).tobytes()
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, bits)
    extra = b""
    if tag == 3:  # non-PCM: a cbSize field and a fact chunk (the frame count)
        fmt += struct.pack("<H", 0)
        extra = b"fact" + struct.pack("<II", 4, frames)
    chunks = (
        b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra
        + b"data"
        + struct.pack("<I", len(data))
        + data
        + (b"\x00" if len(data) % 2 else b"")
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


class Audio(Media):
    """An audio clip, stored as WAV.

    ``array`` (numpy array or tensor) is 1-D (mono) or 2-D ``(samples, channels)``; a
    2-D array whose second axis is longer than ``MAX_AUDIO_CHANNELS`` (64) and whose
    first is not is taken as ``(channels, samples)`` (torchaudio's layout).
    ``float`` samples (nominally in [-1, 1]; values outside are kept, players clip them)
    are stored as 32-bit IEEE float WAV: reading back gives ``float32(array)`` exactly.
    ``int16``, ``int32`` and ``uint8`` samples are stored as PCM of that width, exactly.
    NaN and +-inf become 0 (one warning). Other dtypes raise ``TypeError``.
    ``sample_rate`` is a positive int (Hz).

    The item description: ``path``, ``sha256``, ``size``, ``format`` (``"wav"``),
    ``sample_rate``, ``channels``, ``samples``, ``duration`` (seconds), ``dtype``, ``caption``.
    """

    kind = "audio"

    def __init__(self, array: Any, sample_rate: int, caption: str | None = None) -> None:
        np = _np()
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int):
            raise TypeError(f"Audio: sample_rate must be an int, not {type(sample_rate).__name__}")
        if not 1 <= sample_rate < 1 << 31:
            raise ValueError(f"Audio: sample_rate must be positive, not {sample_rate}")
        if _is_path(array):
            raise TypeError("Audio takes an array of samples, not a path")
        samples, owned = _as_array(array, "Audio")
        if samples.size == 0:
            raise ValueError(f"Audio: the array is empty (shape {_shape_text(samples.shape)})")
        dtype = samples.dtype.name
        if dtype not in _WAV_DTYPES:
            raise TypeError(
                f"Audio: samples must be float, int16, int32 or uint8, not {samples.dtype}"
            )
        if samples.ndim == 1:
            samples = samples[:, None]
        elif samples.ndim == 2:
            if samples.shape[1] > MAX_AUDIO_CHANNELS:
                if samples.shape[0] > MAX_AUDIO_CHANNELS:
                    raise ValueError(
                        f"Audio: shape {_shape_text(samples.shape)} has more than "
                        f"{MAX_AUDIO_CHANNELS} channels either way; expected (samples, channels)"
                    )
                samples = samples.T
        else:
            raise ValueError(
                f"Audio: expected (samples,) or (samples, channels), got shape "
                f"{_shape_text(samples.shape)}"
            )
        _tag, bits, _stored = _WAV_DTYPES[dtype]
        if samples.size * bits // 8 > (1 << 32) - 1024:
            raise ValueError("Audio: the clip is larger than a WAV file can hold (4 GiB)")
        snapshot = np.ascontiguousarray(samples) if owned else np.array(samples, order="C")
        if samples.dtype.kind == "f":
            finite = np.isfinite(snapshot)
            if not finite.all():
                warn_once(
                    "media:audio-nonfinite",
                    "trackline: Audio has NaN or inf samples; they are stored as 0",
                    stacklevel=3,
                )
                snapshot[~finite] = 0
        self._samples: Array = snapshot
        self.sample_rate = sample_rate
        self.caption = None if caption is None else str(caption)

    def write(self, media_dir: Path) -> dict[str, Any]:
        """Encode (WAV) and store the clip; its description."""
        frames, channels = self._samples.shape
        stored = _WAV_DTYPES[self._samples.dtype.name][2]
        item = _store(media_dir, wav_bytes(self._samples, self.sample_rate), "wav")
        item.update(
            format="wav",
            sample_rate=self.sample_rate,
            channels=int(channels),
            samples=int(frames),
            duration=frames / self.sample_rate,
            dtype={"u1": "uint8", "<i2": "int16", "<i4": "int32", "<f4": "float32"}[stored],
            caption=self.caption,
        )
        return item

    def __repr__(self) -> str:
        frames, channels = self._samples.shape
        return f"<trackline.Audio {frames} samples x {channels} at {self.sample_rate} Hz>"


# -- video -----------------------------------------------------------------------------------


class Video(Media):
    """A video, stored as an animated GIF (or a ``.gif``/``.mp4``/``.webm`` file as it is).

    ``array_or_path``: an array or tensor ``(T, H, W, C)`` when the last axis is 1, 3 or 4
    long, else ``(T, C, H, W)`` when the second is (W&B's layout), or ``(T, H, W)``
    grayscale; pixels follow the rules of ``Image`` (uint8; float in [0, 1]; ...). Alpha
    is dropped. At most ``MAX_VIDEO_PIXELS`` pixels over all frames. Or the path to an
    existing ``.gif``, ``.mp4`` or ``.webm`` file, whose bytes are read now.

    GIF is palette-based (256 colours a frame): frames with more colours are quantised,
    so general video is stored lossily; frames of few colours read back exactly. Each
    frame shows for ``round(1000 / fps)`` ms, which GIF rounds to 10 ms. Pillow merges
    consecutive identical frames into one longer frame.

    The item description: ``path``, ``sha256``, ``size``, ``format``, ``fps``, ``frames``,
    ``width``, ``height``, ``caption`` (``None`` where unknown, for a file).
    """

    kind = "video"

    def __init__(self, array_or_path: Any, fps: float = 4, caption: str | None = None) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)):
            raise TypeError(f"Video: fps must be a number, not {type(fps).__name__}")
        if not (math.isfinite(fps) and 0 < fps <= 1000):
            raise ValueError(f"Video: fps must be in (0, 1000], not {fps}")
        self.fps: float | None = fps
        self.caption = None if caption is None else str(caption)
        self._frames: Array | None = None
        self._encoded: bytes | None = None
        self.frames: int | None = None
        self.width: int | None = None
        self.height: int | None = None
        if _is_path(array_or_path):
            path = _existing_file(array_or_path, "Video")
            self.format = _VIDEO_FILE_TYPES.get(path.suffix.lower(), "")
            if not self.format:
                raise ValueError(f"Video: {str(path)!r} is not a .gif, .mp4 or .webm file")
            self._encoded = path.read_bytes()
            self.fps = None
            return
        self.format = "gif"
        array, owned = _as_array(array_or_path, "Video")
        if array.size == 0:
            raise ValueError(f"Video: the array is empty (shape {_shape_text(array.shape)})")
        if array.ndim not in (3, 4):
            raise ValueError(
                f"Video: expected (T, H, W, C), (T, C, H, W) or (T, H, W), "
                f"got shape {_shape_text(array.shape)}"
            )
        array = _channels_last(array, "Video", 1)
        if array.ndim == 4 and array.shape[-1] == 4:
            array = array[..., :3]
        self.frames, self.height, self.width = (int(n) for n in array.shape[:3])
        if self.frames * self.height * self.width > MAX_VIDEO_PIXELS:
            raise ValueError(
                f"Video: {self.frames} frames of {self.width}x{self.height} are more than the "
                f"limit of {MAX_VIDEO_PIXELS:,} pixels"
            )
        if self.width > 65535 or self.height > 65535:
            raise ValueError("Video: frames wider or taller than 65535 pixels do not fit a GIF")
        self._frames = _pixel_snapshot(array, owned, "Video", 3)

    def _gif(self) -> bytes:
        import PIL.Image

        assert self._frames is not None and self.fps is not None
        frames = [PIL.Image.fromarray(frame) for frame in _to_uint8(self._frames)]
        buffer = io.BytesIO()
        frames[0].save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / self.fps),
            loop=0,
        )
        return buffer.getvalue()

    def write(self, media_dir: Path) -> dict[str, Any]:
        """Encode (GIF) and store the video; its description."""
        if self._frames is not None:
            data = self._gif()
        else:
            assert self._encoded is not None
            data = self._encoded
        sizes = {"frames": self.frames, "width": self.width, "height": self.height}
        if self._frames is None and self.format == "gif":
            sizes = _gif_sizes(data)
        item = _store(media_dir, data, self.format)
        item.update(format=self.format, fps=self.fps, **sizes, caption=self.caption)
        return item

    def __repr__(self) -> str:
        return f"<trackline.Video {self.format} frames={self.frames}>"


def _gif_sizes(data: bytes) -> dict[str, int | None]:
    """Frame count, width and height of a GIF file (``None`` where it cannot be read)."""
    import PIL.Image

    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1))
    except (PIL.UnidentifiedImageError, OSError):
        return {"frames": None, "width": None, "height": None}  # stored anyway
    return {"frames": frames, "width": width, "height": height}


# -- files shown as downloads: HTML, 3D objects, molecules ----------------------------------


class _FileMedia(Media):
    """Media stored as given (bytes read when created), offered by the dashboard as a
    download, never rendered in its page."""

    extensions: tuple[str, ...] = ()

    def __init__(self, data: Any, file_type: str | None = None) -> None:
        name = type(self).__name__
        if isinstance(data, (str, os.PathLike)) and Path(data).is_file():
            path = Path(data)
            self.data = path.read_bytes()
            ext = path.name.lower().split(".", 1)[-1] if "." in path.name else ""
        elif hasattr(data, "read"):
            content = data.read()
            self.data = content.encode() if isinstance(content, str) else bytes(content)
            ext = (file_type or "").lower()
        else:
            raise TypeError(f"{name} takes a path to a file or an open file, not {data!r:.80}")
        ext = (file_type or ext).lower().lstrip(".")
        if ext not in self.extensions:
            raise ValueError(
                f"{name}: file type {ext!r} is not one of {', '.join(self.extensions)}"
            )
        self.ext = ext

    def write(self, media_dir: Path) -> dict[str, Any]:
        item = _store(media_dir, self.data, self.ext)
        item["format"] = self.ext
        return item


class Html(_FileMedia):
    """An HTML page: ``Html("<h1>report</h1>")``, a path or an open file. Stored and
    downloadable; the dashboard never renders it (its scripts could act as you)."""

    kind = "html"
    extensions = ("html",)

    def __init__(self, data: Any, inject: bool = True) -> None:
        if isinstance(data, str) and (len(data) > 1024 or "<" in data or not Path(data).is_file()):
            self.data = data.encode()  # the page itself, not a path
            self.ext = "html"
            return
        super().__init__(data, "html")


class Object3D(_FileMedia):
    """A 3D object: a file (``.obj``, ``.gltf``, ``.glb``, ``.babylon``, ``.stl``,
    ``.pts.json``) or a point cloud array of shape (N, 3), (N, 4) or (N, 6), stored as
    ``.pts.json``."""

    kind = "object3d"
    extensions = ("obj", "gltf", "glb", "babylon", "stl", "pts.json")

    def __init__(self, data_or_path: Any, file_type: str | None = None, **_: Any) -> None:
        if type(data_or_path).__module__.partition(".")[0] in ("numpy", "torch"):
            import json

            np = _np()
            points = np.asarray(data_or_path, dtype=float)
            if points.ndim != 2 or points.shape[1] not in (3, 4, 6):
                raise ValueError(
                    f"Object3D: a point cloud has shape (N, 3), (N, 4) or (N, 6), "
                    f"not {_shape_text(points.shape)}"
                )
            self.data = json.dumps(points.tolist()).encode()
            self.ext = "pts.json"
            return
        super().__init__(data_or_path, file_type)


class Molecule(_FileMedia):
    """A molecule file: ``.pdb``, ``.pqr``, ``.mmcif``, ``.mcif``, ``.cif``, ``.sdf``,
    ``.sd``, ``.gro``, ``.mol2`` or ``.mmtf``."""

    kind = "molecule"
    extensions = ("pdb", "pqr", "mmcif", "mcif", "cif", "sdf", "sd", "gro", "mol2", "mmtf")

    def __init__(self, data_or_path: Any, file_type: str | None = None, **_: Any) -> None:
        super().__init__(data_or_path, file_type)
