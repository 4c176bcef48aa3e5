"""PartSegmenter: loading a trained model and predicting parts at the image's own resolution."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from partdiscovery import PartSegmenter
from partdiscovery.data import open_dataset
from partdiscovery.errors import CheckpointError, ConfigError, InvalidArgumentError
from partdiscovery.runs.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint

K = 3


@pytest.fixture(scope="module")
def segmenter(tiny_run) -> PartSegmenter:
    return PartSegmenter.load(tiny_run, device="cpu")


@pytest.fixture(scope="module")
def sample(tiny_dataset):
    return open_dataset(tiny_dataset, "test").load(0)


def test_load_from_run_folder_and_from_checkpoint_file(tiny_run, segmenter, sample):
    assert segmenter.num_parts == K and segmenter.input_size == 48 and not segmenter.has_learned_background
    assert segmenter.device == torch.device("cpu") and not segmenter.net.training
    newest = list_checkpoints(tiny_run)[0]
    from_file = PartSegmenter.load(newest, device="cpu")
    for (name, a), b in zip(
        segmenter.net.state_dict().items(), from_file.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # The run folder gives its newest checkpoint: the trained weights, not a fresh init.
    stored = load_checkpoint(newest)["model"]
    key = "backbone.model.conv_stem.weight"
    assert torch.equal(segmenter.net.state_dict()[key], stored["net." + key])
    assert np.array_equal(
        segmenter.predict(sample.image, sample.fg_mask), from_file.predict(sample.image, sample.fg_mask)
    )


def test_predict_pil_with_mask(segmenter, sample):
    parts = segmenter.predict(sample.image, sample.fg_mask)
    assert parts.shape == (sample.image.height, sample.image.width) and parts.dtype == np.int64
    assert (parts[~sample.fg_mask] == 0).all()
    assert (parts[sample.fg_mask] >= 1).all() and parts.max() <= K
    as_pil_mask = segmenter.predict(sample.image, Image.fromarray(sample.fg_mask.astype(np.uint8) * 255))
    assert np.array_equal(parts, as_pil_mask)
    # The same image as an array or a tensor gives the same labels.
    arr = np.asarray(sample.image)
    assert np.array_equal(segmenter.predict(arr, sample.fg_mask), parts)
    tensor = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    assert np.array_equal(segmenter.predict(tensor, sample.fg_mask), parts)


def test_every_form_of_an_image_and_a_mask_gives_the_same_labels(segmenter, sample, tmp_path):
    """uint8 and [0, 1] floats alike (a uint8 batch was once read as 0..255 floats: wrong parts, no error)."""
    arr = np.asarray(sample.image)
    parts = segmenter.predict(sample.image, sample.fg_mask)
    sample.image.save(tmp_path / "photo.png")
    tensor = torch.from_numpy(arr.copy()).permute(2, 0, 1)
    for image in (arr / 255.0, tensor, tmp_path / "photo.png", str(tmp_path / "photo.png")):
        assert np.array_equal(segmenter.predict(image, sample.fg_mask), parts)
    for mask in (
        sample.fg_mask.astype(np.uint8),
        sample.fg_mask.astype(np.float32),
        np.dstack([sample.fg_mask] * 3),
        np.where(sample.fg_mask, 0.5, 0.49),  # a soft mask: object where >= 0.5 (a 0/1 mask cannot tell)
    ):
        assert np.array_equal(segmenter.predict(sample.image, mask), parts)
    assert torch.equal(
        segmenter.predict_proba(tensor[None]), segmenter.predict_proba(tensor[None].float() / 255)
    )
    grey = np.asarray(sample.image.convert("L"))
    assert np.array_equal(segmenter.predict(grey), segmenter.predict(sample.image.convert("L")))
    assert np.array_equal(segmenter.predict(grey[..., None]), segmenter.predict(grey))  # [H, W, 1]
    assert np.array_equal(segmenter.predict(sample.image, sample.fg_mask[None]), parts)  # [1, H, W]
    Image.fromarray(sample.fg_mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    for mask in (  # a mask file; tensors in dtypes numpy lacks or that require grad
        tmp_path / "mask.png",
        torch.from_numpy(sample.fg_mask.astype(np.float32)).bfloat16(),
        torch.from_numpy(sample.fg_mask.astype(np.float32)).requires_grad_(),
        torch.from_numpy(sample.fg_mask.astype(np.int32)).to(torch.uint16),
    ):
        assert np.array_equal(segmenter.predict(sample.image, mask), parts)


def test_pil_images_are_converted_as_files_are_read(segmenter, sample, tmp_path):
    """A 16-bit or transparent PIL image (``Image.open`` of such a file) was converted by PIL's ``convert("RGB")``:
    16-bit clipped to white, the hidden colour of transparent pixels kept, unlike the same file's path."""
    grey = np.asarray(sample.image.convert("L")).astype(np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "deep.png")
    rgba = np.dstack([np.asarray(sample.image), np.where(sample.fg_mask, 255, 0).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    for name in ("deep.png", "clear.png"):
        with Image.open(tmp_path / name) as opened:
            assert np.array_equal(segmenter.predict(opened), segmenter.predict(tmp_path / name)), name
    # An [H, W, 4] array is composited on black as its file is (its hidden colours would change the labels).
    assert np.array_equal(segmenter.predict(rgba), segmenter.predict(tmp_path / "clear.png"))


def test_an_opened_photo_is_turned_by_its_exif_orientation_as_its_path_is(segmenter, sample, tmp_path):
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    stored = sample.image.crop((0, 0, sample.image.width, sample.image.height * 3 // 4))  # not square
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "turned.jpg") as opened:
        parts = segmenter.predict(opened)
        assert parts.shape == (stored.width, stored.height)  # as shown, not as stored
        assert np.array_equal(parts, segmenter.predict(tmp_path / "turned.jpg"))
        # already turned by the user (exif_transpose drops the tag) or changed in memory: taken as it is
        assert np.array_equal(segmenter.predict(ImageOps.exif_transpose(opened)), parts)
        assert segmenter.predict(opened.convert("RGB")).shape == (stored.height, stored.width)


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        ("float255", None, r"image: float values must lie in \[0, 1\]"),
        ("chw_array", None, r"image: expected an array \[H, W, 3\]"),
        ("empty", None, "image: is empty"),
        ("list", None, "image: expected a PIL image, a file path"),
        ("ok", "small", r"mask: size \[.*\] differs from the image's"),
        ("ok", "nan", r"mask: float masks must lie in \[0, 1\]"),
    ],
)
def test_images_and_masks_that_cannot_be_read_right_are_one_clear_error(
    segmenter, sample, image, mask, match
):
    arr = np.asarray(sample.image)
    images = {
        "ok": sample.image,
        "float255": arr.astype(np.float32),
        "chw_array": arr.transpose(2, 0, 1),
        "empty": np.zeros((0, 0, 3), np.uint8),
        "list": [1, 2, 3],
    }
    masks = {
        None: None,
        "small": sample.fg_mask[:-2, :-1],
        "nan": np.full(sample.fg_mask.shape, np.nan),
    }
    with pytest.raises(InvalidArgumentError, match=match):
        segmenter.predict(images[image], masks[mask])


def test_predict_proba_refuses_what_it_would_misread(segmenter, sample):
    tensor = torch.from_numpy(np.asarray(sample.image).copy()).permute(2, 0, 1)[None]
    with pytest.raises(InvalidArgumentError, match=r"images: float values must lie in \[0, 1\]"):
        segmenter.predict_proba(tensor.float())
    with pytest.raises(InvalidArgumentError, match=r"images: expected RGB \[B, 3, H, W\]"):
        segmenter.predict_proba(tensor.permute(0, 2, 3, 1))
    with pytest.raises(InvalidArgumentError, match="expected a torch tensor"):
        segmenter.predict_proba(np.asarray(sample.image))
    with pytest.raises(InvalidArgumentError, match=r"B, H, W >= 1, got \[0, 3, 8, 8\]"):
        segmenter.predict_proba(torch.zeros(0, 3, 8, 8))
    for size in ((0, 20), (-5, 20), (10.5, 20), ("10", 20)):
        with pytest.raises(InvalidArgumentError, match="size=.*: must be a whole number"):
            segmenter.predict_proba(tensor, size=size)
    with pytest.raises(InvalidArgumentError, match=r"size: expected \(height, width\)"):
        segmenter.predict_proba(tensor, size=10)
    assert segmenter.predict_proba(tensor, size=(np.int64(5), 7)).shape[-2:] == (5, 7)


def test_predict_proba_reads_every_kind_of_mask_and_refuses_what_it_would_misread(segmenter):
    images = torch.rand(2, 3, 40, 30, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 40, 30, dtype=torch.bool)
    mask[:, :, 10:30, 5:25] = True
    expected = segmenter.predict_proba(images, mask)
    assert torch.equal(expected[:, 0], 1 - mask[:, 0].float())
    as_array = mask.numpy()
    for same in (
        mask.to(torch.uint8) * 255,
        mask.long(),
        mask.float(),
        mask[:, 0],
        as_array,
        as_array.astype(np.uint16) * 65535,  # a 16-bit PNG's values: torch has no > for uint16
        np.flip(
            np.flip(as_array, 2).copy(), 2
        ),  # the mask as a view with negative strides (torch refuses one)
    ):
        torch.testing.assert_close(segmenter.predict_proba(images, same), expected)
    # One [3, H, W] image and its [H, W] mask, as predict takes them.
    one = segmenter.predict_proba(images[0], mask[0, 0])
    torch.testing.assert_close(one, expected[:1])
    for bad, match in (
        (mask.float() * 255, r"float masks must lie in \[0, 1\]"),  # a 0/255 mask as floats: background -254
        (torch.full((2, 1, 40, 30), float("nan")), r"float masks must lie in \[0, 1\]"),
        (mask[:, :, :7, :5], r"expected \[2, 1, 40, 30\]"),  # another size: it was resized silently
        (mask[:1], r"expected \[2, 1, 40, 30\]"),
        (mask[:, :, :, :, None], r"expected \[2, 1, 40, 30\]"),
        ([[1]], "expected a tensor"),
        (np.empty((2, 1, 40, 30), dtype=object), "expected bool, integer or float values"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            segmenter.predict_proba(images, bad)


def test_predict_without_mask_labels_every_pixel(segmenter, sample, tiny_dataset):
    parts = segmenter.predict(sample.image)
    assert (parts >= 1).all() and (parts <= K).all()
    # use_masks=False: the dataset's masks are not used (the run has no learned background: no pixel is background).
    test = open_dataset(tiny_dataset, "test")
    pred = next(segmenter.predict_dataset(test, use_masks=False, progress=False))
    assert (~test.load(0).fg_mask).any() and np.array_equal(pred.parts, parts)


def test_predict_proba_is_a_distribution_with_background_first(segmenter):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 40, 40, generator=g)
    masks = (torch.rand(2, 1, 40, 40, generator=g) > 0.5).float()
    probs = segmenter.predict_proba(images, masks)
    assert probs.shape == (2, K + 1, 40, 40) and probs.device.type == "cpu"
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 40, 40))
    assert torch.equal(probs[:, 0], 1 - masks[:, 0])
    no_mask = segmenter.predict_proba(images)
    assert float(no_mask[:, 0].abs().max()) == 0.0
    torch.testing.assert_close(no_mask.sum(1), torch.ones(2, 40, 40))
    # Where the mask is 1 the part channels equal the unmasked ones.
    fg = masks[:, 0].bool()
    torch.testing.assert_close(
        probs[:, 1:].permute(1, 0, 2, 3)[:, fg], no_mask[:, 1:].permute(1, 0, 2, 3)[:, fg]
    )
    soft = segmenter.predict_proba(images, torch.full((2, 1, 40, 40), 0.25))  # a soft mask is used as it is
    torch.testing.assert_close(soft[:, 0], torch.full((2, 40, 40), 0.75))
    small = segmenter.predict_proba(images, masks, size=(20, 20))  # maps, mask and guide at a smaller size
    assert small.shape == (2, K + 1, 20, 20) and torch.equal(small[:, 0], 1 - masks[:, 0, 1::2, 1::2])
    # Another size per axis (45 x 30 -> 15 x 30): the maps are the full-size ones at every third row, the pixel
    # centres they share; on a square a box scaled with the height's factor horizontally went unnoticed.
    tall = torch.rand(2, 3, 45, 30, generator=g)
    tall_masks = (torch.rand(2, 1, 45, 30, generator=g) > 0.5).float()
    shrunk = segmenter.predict_proba(tall, tall_masks, size=(15, 30))
    assert torch.equal(shrunk[:, 0], 1 - tall_masks[:, 0, 1::3])
    torch.testing.assert_close(shrunk, segmenter.predict_proba(tall, tall_masks)[:, :, 1::3])


@pytest.mark.parametrize("width, height", [(70, 30), (25, 61)])
def test_non_square_images_keep_their_size(segmenter, width, height):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4 : -height // 4, width // 4 : -width // 4] = True
    parts = segmenter.predict(image, mask)
    assert parts.shape == (height, width)
    assert (parts[~mask] == 0).all() and (parts[mask] > 0).all()
    assert segmenter.predict_proba(torch.rand(1, 3, height, width)).shape == (1, K + 1, height, width)
    # Letterboxed: f sees the photo centred in a black square, so that square gives the same maps on the photo's
    # pixels (with the letterbox's width and height swapped f saw another crop, and the sizes above still held).
    photo = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = torch.zeros(1, 3, side, side)
    square[:, :, top : top + height, left : left + width] = photo
    torch.testing.assert_close(
        segmenter.predict_proba(photo),
        segmenter.predict_proba(square)[:, :, top : top + height, left : left + width],
    )


def test_predict_dataset_matches_predict(segmenter, tiny_dataset):
    test = open_dataset(tiny_dataset, "test")
    preds = list(segmenter.predict_dataset(test, batch_size=2, progress=False, keep_probs=True))
    assert [p.id for p in preds] == test.ids
    for pred, index in zip(preds, range(len(test)), strict=True):
        raw = test.load(index)
        assert np.array_equal(pred.parts, segmenter.predict(raw.image, raw.fg_mask))
        assert pred.probs.shape == (K + 1, 48, 48)
        assert np.array_equal(pred.part_labels, raw.part_labels)


@pytest.mark.parametrize("refine", ["none", "guided"])
def test_photos_above_max_side_are_segmented_smaller_and_labelled_at_full_size(
    tiny_run, tiny_dataset, refine
):
    full = PartSegmenter.load(tiny_run, device="cpu", refine=refine)
    small = PartSegmenter.load(tiny_run, device="cpu", refine=refine)
    small.cfg = dataclasses.replace(small.cfg, predict=dataclasses.replace(small.cfg.predict, max_side=24))
    test = open_dataset(tiny_dataset, "test")
    kw = dict(batch_size=2, progress=False)
    agree = []
    pairs = zip(full.predict_dataset(test, **kw), small.predict_dataset(test, **kw), strict=True)
    for (a, b), index in zip(pairs, range(len(test)), strict=True):
        raw = test.load(index)
        assert b.parts.shape == a.parts.shape == (48, 48)
        assert np.array_equal(b.parts == 0, ~raw.fg_mask)  # the given mask, to the pixel
        agree.append((a.parts == b.parts)[raw.fg_mask].mean())
        one = small.predict(raw.image, raw.fg_mask)  # the single-image API shrinks alike
        # Equal without a refiner; the guided filter's guide is shrunk from uint8 here, from float there.
        assert (one == b.parts).mean() >= (1.0 if refine == "none" else 0.98)
    assert np.mean(agree) > 0.8  # the same parts, their outlines a pixel or two apart
    # The keypoint protocols need the maps at the image's size: with keep_probs nothing is shrunk.
    kept = next(small.predict_dataset(test, progress=False, keep_probs=True))
    assert kept.probs.shape == (K + 1, 48, 48)
    assert np.array_equal(kept.parts, next(full.predict_dataset(test, progress=False)).parts)


def test_a_one_pixel_max_side_and_arguments_that_are_no_sizes(tiny_run, tiny_dataset):
    """``max_side=1`` shrinks the uint8 guide to 1 x 1, where torch's antialiased kernel failed an internal assert."""
    tiny = PartSegmenter.load(tiny_run, device="cpu", max_side=1)
    pred = next(tiny.predict_dataset(open_dataset(tiny_dataset, "test"), progress=False))
    assert pred.parts.shape == (48, 48) and len(np.unique(pred.parts[pred.fg_mask])) == 1
    for bad in ("100", 1.5, -1, True):
        with pytest.raises(InvalidArgumentError, match="max_side=.*: must be a whole number"):
            PartSegmenter.load(tiny_run, device="cpu", max_side=bad)
    with pytest.raises(InvalidArgumentError, match="batch_size=0: must be a whole number"):
        next(tiny.predict_dataset(open_dataset(tiny_dataset, "test"), batch_size=0, progress=False))


def test_full_size_labels_enlarge_the_parts_and_the_learned_background():
    from partdiscovery.segmenter import full_size_labels, prediction_size, resize_nearest

    small = np.arange(6).reshape(2, 3)
    # The pixels PyTorch's nearest-exact takes, without its float copy.
    big = torch.nn.functional.interpolate(
        torch.from_numpy(small)[None, None].float(), (5, 7), mode="nearest-exact"
    )
    np.testing.assert_array_equal(resize_nearest(small, 5, 7), big[0, 0].long().numpy())

    assert prediction_size(3000, 4000, 2048) == (1536, 2048)
    assert prediction_size(300, 400, 2048) == prediction_size(300, 400, 0) == (300, 400)
    probs = torch.zeros(3, 2, 2)  # background, part 1, part 2
    probs[0, 0, 0] = 0.9  # top left: background
    probs[1, 0, 1] = probs[2, 1, :] = 1.0  # top right: part 1; bottom row: part 2
    expected = np.kron(np.array([[0, 1], [2, 2]]), np.ones((3, 3), np.int64))
    np.testing.assert_array_equal(full_size_labels(probs, 6, 6, None), expected)
    mask = np.ones((6, 6), bool)
    mask[0, 0] = False
    given = full_size_labels(probs, 6, 6, mask)
    assert given[0, 0] == 0 and (given[1:3, 0] == 1).all() and given[0, 5] == 1


def test_refine_overrides_the_configs_and_both_prediction_paths_apply_it(tiny_run, segmenter, tiny_dataset):
    assert segmenter.cfg.predict.refine == "none"  # the cpu preset's default
    guided = PartSegmenter.load(tiny_run, device="cpu", refine="guided")
    assert guided.cfg.predict.refine == "guided" and segmenter.cfg.predict.refine == "none"
    test = open_dataset(tiny_dataset, "test")
    changed = 0
    for pred, index in zip(guided.predict_dataset(test, progress=False), range(len(test)), strict=True):
        raw = test.load(index)
        assert np.array_equal(pred.parts, guided.predict(raw.image, raw.fg_mask))
        assert (pred.parts[~raw.fg_mask] == 0).all()
        changed += int((pred.parts != segmenter.predict(raw.image, raw.fg_mask)).sum())
    assert changed > 0
    probs = guided.predict_proba(torch.rand(2, 3, 40, 40), torch.ones(2, 1, 40, 40))
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 40, 40))
    with pytest.raises(ConfigError, match="predict.refine"):
        PartSegmenter.load(tiny_run, device="cpu", refine="crf")


def test_checkpoint_of_another_num_parts_is_a_clear_error(tiny_run, tmp_path, segmenter):
    payload = load_checkpoint(list_checkpoints(tiny_run)[0])
    other = dataclasses.replace(
        segmenter.cfg, model=dataclasses.replace(segmenter.cfg.model, num_parts=K + 2)
    )
    with pytest.raises(CheckpointError, match="do not match"):
        PartSegmenter.from_state(other, payload["model"], "x.pt", device="cpu")
    # A checkpoint file whose stored config says K+2 but whose weights have K parts.
    payload["config"] = other.to_dict()
    save_checkpoint(tmp_path / "mismatch.pt", payload)
    with pytest.raises(CheckpointError, match="mismatch.pt"):
        PartSegmenter.load(tmp_path / "mismatch.pt", device="cpu")


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        PartSegmenter.load(tmp_path / "nothing", device="cpu")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="empty_run: is not a run folder"):
        PartSegmenter.load(tmp_path / "empty_run", device="cpu")
    (tmp_path / "empty_run" / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints found in"):
        PartSegmenter.load(tmp_path / "empty_run", device="cpu")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        PartSegmenter.load(tmp_path / "bad.pt", device="cpu")


@pytest.mark.parametrize("device", ["banana", "cpu:1", "meta", "", "cuda:99"])
def test_unknown_or_absent_devices_are_one_clear_error(device):
    from partdiscovery.errors import InvalidArgumentError
    from partdiscovery.segmenter import resolve_device

    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(InvalidArgumentError, match="device"):
        resolve_device(device)


def test_cuda_without_cuda_says_so():
    from partdiscovery.errors import InvalidArgumentError
    from partdiscovery.segmenter import resolve_device

    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(InvalidArgumentError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("CPU") == torch.device("cpu") == resolve_device(torch.device("cpu"))
