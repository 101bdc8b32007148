"""Media types through real runs: every input read back exactly, bad input refused clearly."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trackline
import trackline.media
from trackline import TracklineWarning
from trackline.media import MAX_IMAGE_PIXELS, Audio, Histogram, Image, Table, Video

PIL_Image = pytest.importorskip("PIL.Image")

# -- helpers ------------------------------------------------------------------------------


def log_and_read(values: dict[str, Any], **kwargs: Any) -> tuple[trackline.Run, trackline.LocalRun]:
    run = trackline.init(project="p")
    run.log(values, **kwargs)
    run.finish()
    return run, trackline.open_run(run.dir)


def items(run: trackline.Run, local: trackline.LocalRun, key: str) -> list[dict[str, Any]]:
    records = local.media(key)
    assert len(records) == 1, records
    return records[0].items


def decoded(run: trackline.Run, item: dict[str, Any]) -> np.ndarray:
    with PIL_Image.open(run.dir / item["path"]) as image:
        return np.asarray(image)


def roundtrip_image(data: Any, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    run, local = log_and_read({"img": Image(data, **kwargs)})
    (item,) = items(run, local, "img")
    return decoded(run, item), item


def random_uint8(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def expected_from_float(array: np.ndarray) -> np.ndarray:
    """The documented conversion: NaN -> 0, clip to [0, 1], round(x * 255) half to even."""
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


# -- images: every input read back exactly ---------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "channels"),
    [((17, 23), 1), ((17, 23, 3), 3), ((17, 23, 4), 4), ((3, 5, 3), 3)],
)
def test_uint8_hw_and_hwc_read_back_exactly(shape: tuple[int, ...], channels: int) -> None:
    array = random_uint8(*shape)
    pixels, item = roundtrip_image(array, caption="a cat")
    np.testing.assert_array_equal(pixels, array)
    assert (item["height"], item["width"], item["channels"]) == (shape[0], shape[1], channels)
    assert item["caption"] == "a cat" and item["format"] == "png"
    assert item["path"] == f"media/{item['sha256']}.png"


def test_single_channel_is_stored_as_grayscale() -> None:
    array = random_uint8(9, 11, 1)
    pixels, item = roundtrip_image(array)
    np.testing.assert_array_equal(pixels, array[..., 0])
    assert item["channels"] == 1
    chw, _ = roundtrip_image(array.transpose(2, 0, 1))
    np.testing.assert_array_equal(chw, array[..., 0])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_chw_is_transposed(channels: int) -> None:
    array = random_uint8(channels, 12, 20)
    pixels, item = roundtrip_image(array)
    expected = array.transpose(1, 2, 0)
    np.testing.assert_array_equal(pixels, expected[..., 0] if channels == 1 else expected)
    assert (item["height"], item["width"]) == (12, 20)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_in_unit_range_is_scaled_and_rounded(dtype: Any) -> None:
    array = np.random.default_rng(1).random((16, 8, 3)).astype(dtype)
    array[0, 0] = [0.0, 1.0, 0.5]  # exact ends and a tie: 127.5 rounds to even, 128
    pixels, _ = roundtrip_image(array)
    np.testing.assert_array_equal(pixels, expected_from_float(array))
    assert pixels[0, 0].tolist() == [0, 255, 128]


def test_float_outside_unit_range_is_clipped_with_one_warning() -> None:
    array = np.linspace(-1.0, 2.0, 64 * 3).reshape(8, 8, 3)
    with pytest.warns(TracklineWarning, match=r"outside \[0, 1\].*clipped") as record:
        first = Image(array)
        Image(array * 3)
    assert len(record) == 1
    run, local = log_and_read({"img": first})
    np.testing.assert_array_equal(
        decoded(run, items(run, local, "img")[0]), expected_from_float(array)
    )


def test_tiny_float_overshoot_that_rounds_the_same_does_not_warn() -> None:
    array = np.full((4, 4), 1.0 + 1e-7)
    array[0, 0] = -1e-7
    pixels, _ = roundtrip_image(array)  # filterwarnings=error: no warning allowed
    assert pixels[0, 0] == 0 and pixels[1, 1] == 255


def test_nan_pixels_become_zero_with_one_warning_and_the_row_is_kept() -> None:
    array = np.full((6, 6, 3), 0.5)
    array[2, 3, 1] = np.nan
    run = trackline.init(project="p")
    with pytest.warns(TracklineWarning, match="NaN") as record:
        run.log({"img": Image(array), "loss": 0.25})
        run.log({"img": Image(array), "loss": 0.5})
    assert len(record) == 1
    run.finish()
    local = trackline.open_run(run.dir)
    assert [row["loss"] for row in local.history()] == [0.25, 0.5]
    pixels = decoded(run, local.media("img")[0].items[0])
    assert pixels[2, 3].tolist() == [128, 0, 128]
    np.testing.assert_array_equal(pixels, expected_from_float(array))


def test_bool_and_other_integer_types() -> None:
    mask = np.random.default_rng(2).random((10, 10)) > 0.5
    pixels, _ = roundtrip_image(mask)
    np.testing.assert_array_equal(pixels, mask.astype(np.uint8) * 255)
    levels = np.arange(256, dtype=np.int64).reshape(16, 16)
    pixels, _ = roundtrip_image(levels)
    np.testing.assert_array_equal(pixels, levels.astype(np.uint8))
    nested, _ = roundtrip_image(levels.tolist())
    np.testing.assert_array_equal(nested, levels.astype(np.uint8))
    wide = np.array([[-5, 0, 300, 255]], dtype=np.int32)
    with pytest.warns(TracklineWarning, match=r"outside \[0, 255\]"):
        image = Image(wide)
    run, local = log_and_read({"img": image})
    assert decoded(run, items(run, local, "img")[0]).tolist() == [[0, 0, 255, 255]]


def test_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    chw = torch.rand(3, 10, 14, requires_grad=True)
    pixels, item = roundtrip_image(chw)
    np.testing.assert_array_equal(
        pixels, expected_from_float(chw.detach().numpy().transpose(1, 2, 0))
    )
    assert (item["height"], item["width"], item["channels"]) == (10, 14, 3)
    hwc = torch.from_numpy(random_uint8(5, 7, 4))
    pixels, _ = roundtrip_image(hwc)
    np.testing.assert_array_equal(pixels, hwc.numpy())
    half = torch.rand(8, 8, dtype=torch.bfloat16)
    pixels, _ = roundtrip_image(half)
    np.testing.assert_array_equal(pixels, expected_from_float(half.float().numpy()))


def test_torch_tensor_is_snapshotted() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.zeros(4, 4, dtype=torch.uint8)
    image = Image(tensor)
    tensor += 200  # the training loop reuses its buffer
    run, local = log_and_read({"img": image})
    assert decoded(run, items(run, local, "img")[0]).max() == 0


def test_tensorflow_tensor() -> None:
    tf = pytest.importorskip("tensorflow")
    array = random_uint8(6, 9, 3)
    pixels, _ = roundtrip_image(tf.constant(array))
    np.testing.assert_array_equal(pixels, array)
    floats = np.random.default_rng(3).random((5, 5)).astype(np.float32)
    pixels, _ = roundtrip_image(tf.Variable(floats))
    np.testing.assert_array_equal(pixels, expected_from_float(floats))


def test_array_is_snapshotted_at_construction() -> None:
    array = np.zeros((4, 4, 3), dtype=np.uint8)
    floats = np.zeros((4, 4))
    run = trackline.init(project="p")
    run.log({"img": Image(array), "f": Image(floats)})
    array[:] = 255
    floats[:] = 1.0
    run.finish()
    local = trackline.open_run(run.dir)
    assert decoded(run, local.media("img")[0].items[0]).max() == 0
    assert decoded(run, local.media("f")[0].items[0]).max() == 0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_pil_images_logged_directly_or_wrapped(mode: str) -> None:
    source = random_uint8(12, 9, len(mode)) if mode != "L" else random_uint8(12, 9)
    pil = PIL_Image.fromarray(source).convert(mode)
    run, local = log_and_read({"direct": pil, "wrapped": Image(pil, caption="c")})
    direct, wrapped = items(run, local, "direct")[0], items(run, local, "wrapped")[0]
    np.testing.assert_array_equal(decoded(run, direct), source)
    assert direct["sha256"] == wrapped["sha256"] and wrapped["caption"] == "c"
    assert local.media("direct")[0].kind == "image"


def test_pil_palette_and_bilevel_modes_are_converted() -> None:
    source = random_uint8(8, 8, 3)
    palette = PIL_Image.fromarray(source).convert("P")
    bilevel = PIL_Image.fromarray(random_uint8(8, 8)).convert("1")
    run, local = log_and_read({"p": Image(palette), "one": Image(bilevel)})
    np.testing.assert_array_equal(
        decoded(run, items(run, local, "p")[0]), np.asarray(palette.convert("RGB"))
    )
    np.testing.assert_array_equal(
        decoded(run, items(run, local, "one")[0]), np.asarray(bilevel.convert("L"))
    )


def test_matplotlib_figure_logged_directly_or_wrapped_leaves_pyplot_alone() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    other = plt.figure()
    before = (plt.get_fignums(), plt.gcf(), fig.dpi, fig.get_size_inches().tolist(), fig.canvas)
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        buffer.seek(0)
        expected = np.asarray(PIL_Image.open(buffer))
        run, local = log_and_read({"direct": fig, "wrapped": Image(fig, caption="curve")})
        after = (plt.get_fignums(), plt.gcf(), fig.dpi, fig.get_size_inches().tolist(), fig.canvas)
        assert after == before
        for key in ("direct", "wrapped"):
            item = items(run, local, key)[0]
            np.testing.assert_array_equal(decoded(run, item), expected)
            assert (item["width"], item["height"], item["channels"]) == (100, 75, 4)
    finally:
        plt.close(fig)
        plt.close(other)


def test_matplotlib_figure_without_pyplot() -> None:
    figure_module = pytest.importorskip("matplotlib.figure")
    figure = figure_module.Figure(figsize=(1, 1), dpi=40)
    figure.add_subplot().imshow(np.eye(3))
    _, item = roundtrip_image(figure)
    assert (item["width"], item["height"]) == (40, 40)


def test_image_files_are_stored_as_they_are_or_as_png(tmp_path: Path) -> None:
    array = random_uint8(10, 12, 3)
    png, jpg, bmp = tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "a.bmp"
    PIL_Image.fromarray(array).save(png)
    PIL_Image.fromarray(array).save(jpg, quality=90)
    PIL_Image.fromarray(array).save(bmp)
    run, local = log_and_read({"png": Image(png), "jpg": Image(str(jpg)), "bmp": Image(bmp)})
    png_item, jpg_item, bmp_item = (items(run, local, k)[0] for k in ("png", "jpg", "bmp"))
    assert (run.dir / png_item["path"]).read_bytes() == png.read_bytes()
    assert (run.dir / jpg_item["path"]).read_bytes() == jpg.read_bytes()
    assert jpg_item["format"] == "jpg" and jpg_item["path"].endswith(".jpg")
    assert bmp_item["format"] == "png" and bmp_item["path"].endswith(".png")
    np.testing.assert_array_equal(decoded(run, bmp_item), array)
    assert (bmp_item["width"], bmp_item["height"], bmp_item["channels"]) == (12, 10, 3)


def test_image_file_is_read_when_logged(tmp_path: Path) -> None:
    path = tmp_path / "sample.png"
    PIL_Image.fromarray(np.zeros((3, 3), np.uint8)).save(path)
    image = Image(path)
    PIL_Image.fromarray(np.full((3, 3), 9, np.uint8)).save(path)  # the script's next epoch
    run, local = log_and_read({"img": image})
    assert decoded(run, items(run, local, "img")[0]).max() == 0


def test_a_list_under_one_key_keeps_order_and_stores_duplicates_once() -> None:
    arrays = [random_uint8(8, 8, 3, seed=s) for s in (1, 2, 1)]
    run, local = log_and_read({"batch": [Image(a, caption=str(i)) for i, a in enumerate(arrays)]})
    batch = items(run, local, "batch")
    assert [item["caption"] for item in batch] == ["0", "1", "2"]
    for item, array in zip(batch, arrays, strict=True):
        np.testing.assert_array_equal(decoded(run, item), array)
    assert batch[0]["path"] == batch[2]["path"] != batch[1]["path"]
    files = sorted(p.name for p in (run.dir / "media").iterdir())
    assert files == sorted({Path(item["path"]).name for item in batch})  # no temporary files


def test_files_are_named_by_their_content_hash() -> None:
    run = trackline.init(project="p")
    array = random_uint8(5, 5, 3)
    for step in range(3):
        run.log({"img": Image(array), "a": Audio(np.zeros(10, np.int16), 100)}, step=step)
    run.finish()
    local = trackline.open_run(run.dir)
    assert [m.step for m in local.media("img")] == [0, 1, 2]
    assert len({m.items[0]["path"] for m in local.media("img")}) == 1
    for path in (run.dir / "media").iterdir():
        data = path.read_bytes()
        assert path.stem == hashlib.sha256(data).hexdigest()
        item = next(m.items[0] for m in local.media() if m.items[0]["path"].endswith(path.name))
        assert item["size"] == len(data)
    assert len(list((run.dir / "media").iterdir())) == 2


def test_media_with_commit_false_takes_the_pending_step() -> None:
    run = trackline.init(project="p")
    run.log({"loss": 1.0})
    run.log({"img": Image(random_uint8(4, 4))}, commit=False)
    run.log({"acc": 0.5})
    run.log({"img": Image(random_uint8(4, 4)), "loss": 0.5}, step=7, commit=False)
    run.finish()
    local = trackline.open_run(run.dir)
    assert [m.step for m in local.media("img")] == [1, 7]
    assert [(r["_step"], r.get("loss"), r.get("acc")) for r in local.history()] == [
        (0, 1.0, None),
        (1, None, 0.5),
        (7, 0.5, None),
    ]


def test_media_under_nested_keys_and_many_steps_while_logging() -> None:
    run = trackline.init(project="p")
    arrays = [random_uint8(16, 16, 3, seed=s) for s in range(40)]
    for step, array in enumerate(arrays):
        run.log({"eval": {"img": Image(array)}, "loss": float(step)})
    run.finish()
    local = trackline.open_run(run.dir)
    assert [row["loss"] for row in local.history()] == [float(s) for s in range(40)]
    media = local.media("eval/img")
    assert [m.step for m in media] == list(range(40))
    for record, array in zip(media, arrays, strict=True):
        np.testing.assert_array_equal(decoded(run, record.items[0]), array)


def test_another_image_copies_its_snapshot() -> None:
    base = Image(random_uint8(3, 3), caption="a")
    assert Image(base).caption == "a" and Image(base, caption="b").caption == "b"
    assert "3x3x1" in repr(base)


# -- images: bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.zeros((2, 4, 4, 3), np.uint8), ValueError, "list of images"),
        (np.zeros(5, np.uint8), ValueError, r"got shape \(5\)"),
        (np.zeros((5, 6, 7), np.uint8), ValueError, "no channel axis"),
        (np.zeros((0, 4), np.uint8), ValueError, "empty"),
        (np.zeros((4, 0, 3)), ValueError, "empty"),
        (np.zeros((4, 4), np.complex64), TypeError, "complex"),
        (np.array([["a", "b"]]), TypeError, "pixels must be"),
        (b"\x89PNG", TypeError, "cannot be made from"),
        (object(), TypeError, "cannot be made from"),
        (
            np.broadcast_to(np.uint8(0), (8193, 8192)),
            ValueError,
            "larger than the limit",
        ),
        ("/nonexistent/picture.png", FileNotFoundError, "no such file"),
    ],
)
def test_bad_images_raise_a_clear_error(data: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Image(data)


def test_size_limit_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_IMAGE_PIXELS == 8192 * 8192
    with pytest.raises(ValueError, match="larger than the limit"):
        Image(np.broadcast_to(np.uint8(0), (3, 8192, 8193)))  # refused before any copy
    monkeypatch.setattr(trackline.media, "MAX_IMAGE_PIXELS", 100)
    Image(np.zeros((10, 10), np.uint8))  # at the limit: accepted
    with pytest.raises(ValueError, match="larger than the limit"):
        Image(np.zeros((10, 11), np.uint8))
    with pytest.raises(ValueError, match="larger than the limit"):
        Image(PIL_Image.new("RGB", (11, 10)))


def test_not_an_image_file_or_a_directory(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an image file"):
        Image(text)
    with pytest.raises(ValueError, match="is not a file"):
        Image(tmp_path)


def test_bad_input_loses_nothing_else_logged() -> None:
    run = trackline.init(project="p")
    run.log({"loss": 1.0, "img": Image(random_uint8(4, 4))})
    for bad in (np.zeros((0, 3)), np.zeros((2, 2, 2, 2)), "/nope.png"):
        with pytest.raises((ValueError, FileNotFoundError)):
            run.log({"loss": 9.0, "img": Image(bad)})
    run.log({"loss": 2.0, "img": Image(random_uint8(4, 4, seed=1))})
    run.finish()
    local = trackline.open_run(run.dir)
    assert [(r["_step"], r["loss"]) for r in local.history()] == [(0, 1.0), (1, 2.0)]
    assert [m.step for m in local.media("img")] == [0, 1]
    assert local.state == "finished"


def test_a_write_failure_warns_once_and_keeps_the_metrics() -> None:
    run = trackline.init(project="p")
    (run.dir / "media").write_text("not a directory")  # every media write fails
    with pytest.warns(TracklineWarning, match="could not write 'img'"):
        run.log({"img": Image(random_uint8(4, 4)), "loss": 1.0})
        run.log({"img": Image(random_uint8(4, 4, seed=5)), "loss": 2.0})
        run.finish()
    local = trackline.open_run(run.dir)
    assert [r["loss"] for r in local.history()] == [1.0, 2.0]
    assert local.media("img") == [] and local.state == "finished"


# -- histograms ---------------------------------------------------------------------------------


def test_histogram_of_values_matches_numpy() -> None:
    values = np.random.default_rng(4).normal(size=(100, 10))
    run, local = log_and_read({"h": Histogram(values), "h16": Histogram(values.tolist(), bins=16)})
    for key, bins in (("h", 64), ("h16", 16)):
        (item,) = items(run, local, key)
        counts, edges = np.histogram(values, bins=bins)
        assert item["counts"] == counts.tolist() and item["edges"] == edges.tolist()
        assert "path" not in item
    assert local.media("h")[0].kind == "histogram"


def test_histogram_from_np_histogram_is_exact() -> None:
    counts, edges = np.histogram(np.arange(100), bins=7)
    weighted = (np.array([0.5, 1.25]), [0, 1, 3])
    run, local = log_and_read(
        {"h": Histogram(np_histogram=(counts, edges)), "w": Histogram(np_histogram=weighted)}
    )
    assert items(run, local, "h")[0] == {"counts": counts.tolist(), "edges": edges.tolist()}
    assert items(run, local, "w")[0] == {"counts": [0.5, 1.25], "edges": [0.0, 1.0, 3.0]}


def test_histogram_from_torch_and_ints_and_bools() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.randn(50, requires_grad=True)
    ints = np.arange(20)
    run, local = log_and_read(
        {
            "t": Histogram(tensor, bins=8),
            "i": Histogram(ints, bins=4),
            "b": Histogram([True, False, True], bins=2),
        }
    )
    counts, edges = np.histogram(tensor.detach().numpy(), bins=8)
    assert items(run, local, "t")[0] == {"counts": counts.tolist(), "edges": edges.tolist()}
    assert items(run, local, "i")[0]["counts"] == [5, 5, 5, 5]
    assert items(run, local, "b")[0]["counts"] == [1, 2]


def test_histogram_drops_non_finite_values_with_one_warning() -> None:
    values = np.array([1.0, np.nan, 2.0, np.inf, 3.0, -np.inf])
    with pytest.warns(TracklineWarning, match="NaN or inf") as record:
        first = Histogram(values, bins=4)
        only_nan = Histogram([np.nan, np.nan], bins=4)
    assert len(record) == 1
    counts, edges = np.histogram([1.0, 2.0, 3.0], bins=4)
    assert first.counts == counts.tolist() and first.edges == edges.tolist()
    assert only_nan.counts == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "either values or np_histogram"),
        ({"values": [1], "np_histogram": ([1], [0, 1])}, TypeError, "either"),
        ({"values": [1.0], "bins": 0}, ValueError, "1 to 512"),
        ({"values": [1.0], "bins": 513}, ValueError, "1 to 512"),
        ({"values": [1.0], "bins": 2.5}, TypeError, "bins must be an int"),
        ({"values": [1.0], "bins": True}, TypeError, "bins must be an int"),
        ({"values": []}, ValueError, "empty"),
        ({"values": np.zeros((3, 0))}, ValueError, "empty"),
        ({"values": ["a", "b"]}, TypeError, "numbers"),
        ({"np_histogram": ([1, 2], [0, 1])}, ValueError, "one more element"),
        ({"np_histogram": ([1, 2], [0, 2, 1])}, ValueError, "sorted"),
        ({"np_histogram": ([1, np.nan], [0, 1, 2])}, ValueError, "finite"),
        ({"np_histogram": ([], [0])}, ValueError, "empty"),
        ({"np_histogram": ([[1]], [[0, 1]])}, ValueError, "1-D"),
        ({"np_histogram": [1, 2, 3]}, TypeError, "pair"),
    ],
)
def test_bad_histograms_raise(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Histogram(**kwargs)


# -- tables -------------------------------------------------------------------------------------


def read_table(run: trackline.Run, item: dict[str, Any]) -> Any:
    pq = pytest.importorskip("pyarrow.parquet")
    return pq.read_table(run.dir / item["path"])


def test_table_of_rows_reads_back_exactly() -> None:
    pytest.importorskip("pyarrow")
    columns = ["id", "score", "label", "ok", "blank", "mixed"]
    data = [
        [1, 0.5, "cat", True, None, 1],
        [2, -1.25, "dog", False, None, 2.5],
        [3, None, None, None, None, None],
    ]
    run, local = log_and_read({"t": Table(columns=columns, data=data)})
    (item,) = items(run, local, "t")
    table = read_table(run, item)
    assert table.to_pydict() == {name: [row[j] for row in data] for j, name in enumerate(columns)}
    assert [str(t) for t in table.schema.types] == item["types"]
    assert item["types"] == ["int64", "double", "string", "bool", "null", "double"]
    assert item["columns"] == columns and item["rows"] == 3 and item["format"] == "parquet"
    assert item["path"] == f"media/{item['sha256']}.parquet"


def test_table_default_columns_numpy_cells_and_2d_arrays() -> None:
    pytest.importorskip("pyarrow")
    matrix = np.arange(6, dtype=np.int32).reshape(3, 2)
    cells = [[np.float64(0.25), np.int64(7), np.bool_(True)]]
    run, local = log_and_read({"m": Table(data=matrix), "c": Table(["x", "y", "z"], cells)})
    assert read_table(run, items(run, local, "m")[0]).to_pydict() == {
        "0": [0, 2, 4],
        "1": [1, 3, 5],
    }
    assert read_table(run, items(run, local, "c")[0]).to_pydict() == {
        "x": [0.25],
        "y": [7],
        "z": [True],
    }


def test_table_with_image_cells() -> None:
    pa = pytest.importorskip("pyarrow")
    arrays = [random_uint8(6, 6, 3, seed=s) for s in range(2)]
    rows = [[Image(arrays[0]), "a"], [None, "b"], [Image(arrays[1]), "c"]]
    run, local = log_and_read({"t": Table(["image", "name"], rows)})
    (item,) = items(run, local, "t")
    table = read_table(run, item)
    assert item["types"] == ["image", "string"]
    assert table.schema.field("image").type == pa.string()
    assert table.schema.field("image").metadata == {b"trackline.kind": b"image"}
    paths = table.column("image").to_pylist()
    assert paths[1] is None and table.column("name").to_pylist() == ["a", "b", "c"]
    for path, array in zip((paths[0], paths[2]), arrays, strict=True):
        np.testing.assert_array_equal(decoded(run, {"path": path}), array)


def test_table_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "step": np.arange(4, dtype=np.int64),
            "loss": [0.5, 0.25, np.nan, 0.125],
            "name": ["a", "b", None, "d"],
            "flag": [True, False, True, True],
            "when": pd.date_range("2024-01-01", periods=4, freq="h"),
        },
        index=[10, 11, 12, 13],
    )
    run, local = log_and_read({"df": Table(dataframe=frame), "as_data": Table(data=frame)})
    (item,) = items(run, local, "df")
    back = read_table(run, item).to_pandas()
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    assert back["step"].dtype == np.int64 and back["loss"].dtype == np.float64
    assert items(run, local, "as_data")[0]["sha256"] == item["sha256"]
    frame.loc[10, "loss"] = 99.0  # after logging: not in the file
    assert read_table(run, item).column("loss").to_pylist()[0] == 0.5


def test_dataframe_with_an_image_column_and_chosen_columns() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    array = random_uint8(4, 4)
    frame = pd.DataFrame({"img": [Image(array), None], "n": [1, 2], "drop": [0, 0]})
    run, local = log_and_read({"t": Table(columns=["img", "n"], dataframe=frame)})
    (item,) = items(run, local, "t")
    table = read_table(run, item).to_pydict()
    assert item["columns"] == ["img", "n"] and table["n"] == [1, 2]
    np.testing.assert_array_equal(decoded(run, {"path": table["img"][0]}), array)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"columns": ["a", "b"], "data": [[1, 2], [3]]}, ValueError, "row 1 has 1 cells"),
        ({"columns": ["a"], "data": [[1], ["x"]]}, TypeError, "column 'a' cannot be stored"),
        ({"columns": ["a"], "data": [[1], [2**70]]}, TypeError, "column 'a'"),
        (
            {"columns": ["a"], "data": [[Image(np.zeros((2, 2), np.uint8))], [3]]},
            TypeError,
            "mixes images",
        ),
        ({"columns": ["a"], "data": [[Histogram([1.0])]]}, TypeError, "only Image cells"),
        ({"columns": [], "data": []}, ValueError, "at least one column"),
        ({}, ValueError, "at least one column"),
        ({"columns": ["a", "a"], "data": [[1, 2]]}, ValueError, "unique"),
        ({"columns": "ab", "data": [[1, 2]]}, TypeError, "not a string"),
        ({"columns": ["a"], "data": "rows"}, TypeError, "list of rows"),
        ({"columns": ["a"], "data": [1, 2]}, TypeError, "row 0 is a int"),
        ({"columns": ["a"], "data": np.zeros(3)}, ValueError, "must be 2-D"),
        ({"dataframe": {"a": [1]}}, TypeError, "pandas DataFrame"),
    ],
)
def test_bad_tables_raise(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(error, match=match):
        Table(**kwargs)


def test_table_without_pyarrow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        Table(["a"], [[1]])


# -- audio -------------------------------------------------------------------------------------


def read_wav(run: trackline.Run, item: dict[str, Any]) -> tuple[int, np.ndarray]:
    wavfile = pytest.importorskip("scipy.io.wavfile")
    rate, samples = wavfile.read(run.dir / item["path"])
    return rate, samples


def test_float_audio_reads_back_as_float32_exactly() -> None:
    t = np.linspace(0, 1, 8000, endpoint=False)
    mono = np.sin(2 * np.pi * 440 * t)  # float64
    stereo = np.stack([mono, -mono], axis=1).astype(np.float32)
    run, local = log_and_read(
        {"mono": Audio(mono, 8000, caption="A4"), "stereo": Audio(stereo, 16000)}
    )
    item = items(run, local, "mono")[0]
    rate, samples = read_wav(run, item)
    assert rate == 8000 and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, mono.astype(np.float32))
    assert item["caption"] == "A4" and item["channels"] == 1 and item["samples"] == 8000
    assert item["duration"] == 1.0 and item["dtype"] == "float32" and item["format"] == "wav"
    rate, samples = read_wav(run, items(run, local, "stereo")[0])
    assert rate == 16000
    np.testing.assert_array_equal(samples, stereo)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_pcm_audio_reads_back_exactly(dtype: Any) -> None:
    info = np.iinfo(dtype)
    samples = np.random.default_rng(5).integers(info.min, info.max, (501, 2), dtype=dtype)
    run, local = log_and_read({"a": Audio(samples, 22050)})
    item = items(run, local, "a")[0]
    rate, back = read_wav(run, item)
    assert rate == 22050 and back.dtype == dtype
    np.testing.assert_array_equal(back, samples)
    assert item["dtype"] == np.dtype(dtype).name


def test_int16_wav_is_read_by_the_standard_library() -> None:
    samples = np.arange(-100, 100, dtype=np.int16)
    run, local = log_and_read({"a": Audio(samples, 1000)})
    with wave.open(str(run.dir / items(run, local, "a")[0]["path"])) as file:
        assert (file.getnchannels(), file.getsampwidth(), file.getframerate()) == (1, 2, 1000)
        back = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(back, samples)


def test_channels_first_audio_and_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    waveform = torch.rand(2, 300) * 2 - 1  # torchaudio's (channels, samples)
    run, local = log_and_read({"a": Audio(waveform, 8000)})
    item = items(run, local, "a")[0]
    _, back = read_wav(run, item)
    assert item["channels"] == 2 and item["samples"] == 300
    np.testing.assert_array_equal(back, waveform.numpy().T)


def test_audio_is_snapshotted_and_nan_becomes_zero_with_one_warning() -> None:
    samples = np.zeros(100, dtype=np.float32)
    samples[3] = np.nan
    with pytest.warns(TracklineWarning, match="NaN or inf") as record:
        clip = Audio(samples, 100)
        Audio(samples, 100)
    assert len(record) == 1
    samples[:] = 0.5
    run, local = log_and_read({"a": clip})
    _, back = read_wav(run, items(run, local, "a")[0])
    np.testing.assert_array_equal(back, np.zeros(100, np.float32))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.zeros(0), 100), ValueError, "empty"),
        ((np.zeros((2, 2, 2)), 100), ValueError, "expected"),
        ((np.zeros((100, 100)), 100), ValueError, "more than 64 channels"),
        ((np.zeros(10, np.int64), 100), TypeError, "int16"),
        ((np.zeros(10), 0), ValueError, "positive"),
        ((np.zeros(10), 44100.0), TypeError, "sample_rate must be an int"),
        (("clip.wav", 100), TypeError, "not a path"),
    ],
)
def test_bad_audio_raises(args: tuple[Any, ...], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Audio(*args)


# -- video -------------------------------------------------------------------------------------


def few_colour_video(frames: int = 5, height: int = 12, width: int = 16) -> np.ndarray:
    palette = np.array(
        [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8
    )
    rng = np.random.default_rng(6)
    return palette[rng.integers(0, len(palette), (frames, height, width))]


def gif_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    frames, durations = [], []
    with PIL_Image.open(path) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
            durations.append(gif.info["duration"])
    return frames, durations


@pytest.mark.parametrize("layout", ["THWC", "TCHW"])
def test_video_of_few_colours_reads_back_exactly(layout: str) -> None:
    video = few_colour_video()
    data = video if layout == "THWC" else video.transpose(0, 3, 1, 2)
    run, local = log_and_read({"v": Video(data, fps=10, caption="rollout")})
    item = items(run, local, "v")[0]
    frames, durations = gif_frames(run.dir / item["path"])
    assert len(frames) == 5 and durations == [100] * 5
    for frame, expected in zip(frames, video, strict=True):
        np.testing.assert_array_equal(frame, expected)
    assert item == {
        "path": item["path"],
        "sha256": item["sha256"],
        "size": item["size"],
        "format": "gif",
        "fps": 10,
        "frames": 5,
        "width": 16,
        "height": 12,
        "caption": "rollout",
    }


def test_video_from_floats_grayscale_rgba_and_torch() -> None:
    torch = pytest.importorskip("torch")
    levels = np.array([0.0, 0.5, 1.0])
    gray = levels[np.random.default_rng(7).integers(0, 3, (3, 8, 8))]
    rgba = np.concatenate([few_colour_video(2), np.full((2, 12, 16, 1), 7, np.uint8)], axis=3)
    tensor = torch.from_numpy(few_colour_video(3)).permute(0, 3, 1, 2)  # (T, C, H, W)
    run, local = log_and_read({"g": Video(gray), "rgba": Video(rgba), "t": Video(tensor, fps=2)})
    frames, durations = gif_frames(run.dir / items(run, local, "g")[0]["path"])
    assert durations == [250] * 3
    for frame, expected in zip(frames, expected_from_float(gray), strict=True):
        np.testing.assert_array_equal(frame[..., 0], expected)
    frames, _ = gif_frames(run.dir / items(run, local, "rgba")[0]["path"])
    np.testing.assert_array_equal(frames[1], rgba[1, ..., :3])
    frames, durations = gif_frames(run.dir / items(run, local, "t")[0]["path"])
    assert durations == [500] * 3
    np.testing.assert_array_equal(np.stack(frames), tensor.permute(0, 2, 3, 1).numpy())


def test_video_files_are_copied_as_they_are(tmp_path: Path) -> None:
    gif = tmp_path / "clip.gif"
    frames = [PIL_Image.fromarray(f) for f in few_colour_video(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50)
    mp4 = tmp_path / "clip.MP4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real movie")
    run, local = log_and_read({"gif": Video(gif), "mp4": Video(str(mp4), caption="c")})
    gif_item, mp4_item = items(run, local, "gif")[0], items(run, local, "mp4")[0]
    assert (run.dir / gif_item["path"]).read_bytes() == gif.read_bytes()
    assert (gif_item["frames"], gif_item["width"], gif_item["height"]) == (3, 16, 12)
    assert (run.dir / mp4_item["path"]).read_bytes() == mp4.read_bytes()
    assert mp4_item["path"].endswith(".mp4") and mp4_item["format"] == "mp4"
    assert mp4_item["frames"] is None and mp4_item["fps"] is None and mp4_item["caption"] == "c"


def test_video_is_snapshotted() -> None:
    video = few_colour_video(2)
    clip = Video(video)
    video[:] = 255
    run, local = log_and_read({"v": clip})
    frames, _ = gif_frames(run.dir / items(run, local, "v")[0]["path"])
    np.testing.assert_array_equal(frames[0], few_colour_video(2)[0])


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros((4, 4), np.uint8),), {}, ValueError, "expected"),
        ((np.zeros((0, 4, 4, 3), np.uint8),), {}, ValueError, "empty"),
        ((np.zeros((2, 5, 6, 7), np.uint8),), {}, ValueError, "no channel axis"),
        ((np.broadcast_to(np.uint8(0), (1025, 512, 512)),), {}, ValueError, "limit"),
        ((np.zeros((2, 4, 4), np.uint8),), {"fps": 0}, ValueError, "fps"),
        ((np.zeros((2, 4, 4), np.uint8),), {"fps": "4"}, TypeError, "fps"),
        (("/nonexistent/clip.gif",), {}, FileNotFoundError, "no such file"),
    ],
)
def test_bad_videos_raise(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Video(*args, **kwargs)


def test_video_file_of_an_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    path.write_bytes(b"RIFF")
    with pytest.raises(ValueError, match=r"\.gif, \.mp4 or \.webm"):
        Video(path)


# -- every type in a list under one key ---------------------------------------------------------


def test_lists_of_each_type_under_one_key() -> None:
    pytest.importorskip("pyarrow")
    values = {
        "images": [Image(random_uint8(3, 3, seed=s)) for s in range(2)],
        "hists": [Histogram([1.0, 2.0], bins=2), Histogram(np_histogram=([3], [0, 1]))],
        "tables": [Table(["a"], [[1]]), Table(["b"], [["x"]])],
        "audio": [Audio(np.zeros(8, np.int16), 8), Audio(np.ones(8, np.float32), 8)],
        "videos": [Video(few_colour_video(2)), Video(few_colour_video(3))],
    }
    run, local = log_and_read(values)
    kinds = {"images": "image", "hists": "histogram", "tables": "table", "audio": "audio"}
    for key, kind in (kinds | {"videos": "video"}).items():
        (record,) = local.media(key)
        assert record.kind == kind and len(record.items) == 2 and record.step == 0
    assert items(run, local, "hists")[1] == {"counts": [3], "edges": [0.0, 1.0]}
    assert [i["frames"] for i in items(run, local, "videos")] == [2, 3]


def test_table_cells_from_tensors() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("pyarrow")
    rows = [[torch.tensor(1.5), torch.tensor(3), np.float32(0.25)]]
    run, local = log_and_read({"t": Table(["loss", "n", "f"], rows)})
    assert read_table(run, items(run, local, "t")[0]).to_pydict() == {
        "loss": [1.5],
        "n": [3],
        "f": [0.25],
    }


# -- imports -----------------------------------------------------------------------------------


def test_media_imports_nothing_heavy_until_used() -> None:
    code = (
        "import sys, json, trackline, trackline.media\n"
        "run = trackline.init(project='p')\n"
        "run.log({'x': 1.0})\n"
        "run.finish()\n"
        "heavy = ['numpy', 'PIL', 'pyarrow', 'matplotlib', 'torch', 'pandas', 'scipy']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_images_from_arrays_do_not_import_pillow_on_the_calling_thread() -> None:
    code = (
        "import sys, numpy, trackline\n"
        "from trackline.media import Image\n"
        "Image(numpy.zeros((4, 4, 3), numpy.uint8))\n"
        "print('PIL' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
