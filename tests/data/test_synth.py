"""Tests for the procedural synthetic part dataset (partdiscovery.data.synth)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from partdiscovery.data.synth import MAX_PARTS, SOURCE, generate_synthetic_dataset, render_synthetic_image
from partdiscovery.errors import PartDiscoveryError
from partdiscovery.utils.outputs import MARKER

K = 4


def _read_split(root: Path, split: str) -> list[str]:
    return (root / f"{split}.txt").read_text(encoding="utf-8").split()


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_synthetic_dataset(
        tmp_path_factory.mktemp("synth") / "ds", n=12, num_parts=K, size=64, seed=0
    )


@pytest.fixture(scope="module")
def colour_stats(tmp_path_factory) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lab colours and part labels of the foreground pixels of 40 images (read back from disk)."""
    from skimage.color import rgb2lab

    root = generate_synthetic_dataset(
        tmp_path_factory.mktemp("synth40") / "ds", n=40, num_parts=K, size=64, seed=3
    )
    colours, labels = [], []
    for image_id in _read_split(root, "train") + _read_split(root, "test"):
        lab = rgb2lab(np.asarray(Image.open(root / "images" / f"{image_id}.jpg").convert("RGB")))
        parts = np.asarray(Image.open(root / "parts" / f"{image_id}.png"))
        colours.append(lab[parts > 0])
        labels.append(parts[parts > 0].astype(np.int64))
    return colours, labels


def test_format(small: Path) -> None:
    train, test = _read_split(small, "train"), _read_split(small, "test")
    ids = sorted(train + test)
    assert ids == [f"{i:05d}" for i in range(12)]
    assert not set(train) & set(test)
    assert len(test) == round(12 * 0.2) and len(train) == 12 - len(test)
    meta = json.loads((small / "parts.json").read_text(encoding="utf-8"))
    assert meta["names"] == {str(k): f"part{k}" for k in range(1, K + 1)}
    assert meta["source"] == SOURCE and meta["license"] == "CC0" and "seed=0" in meta["notes"]
    readme = (small / "README.md").read_text(encoding="utf-8")
    assert "n=12 num_parts=4 size=64 seed=0 test_fraction=0.2" in readme
    assert "12 images (10 train, 2 test)" in readme  # the counts, each the size of its split
    seen_parts: set[int] = set()
    for image_id in ids:
        image = Image.open(small / "images" / f"{image_id}.jpg")
        mask_img = Image.open(small / "masks" / f"{image_id}.png")
        parts_img = Image.open(small / "parts" / f"{image_id}.png")
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)
        assert mask_img.mode == "L" and mask_img.size == (64, 64)
        assert parts_img.mode == "L" and parts_img.size == (64, 64)
        mask, parts = np.asarray(mask_img), np.asarray(parts_img)
        assert set(np.unique(mask)) <= {0, 255}
        assert mask.any()
        assert parts.max() <= K
        np.testing.assert_array_equal(parts == 0, mask == 0)
        seen_parts |= set(np.unique(parts).tolist())
    assert seen_parts == set(range(K + 1))


@pytest.mark.parametrize("test_fraction", [0.2, 0.9])
def test_the_smallest_set_has_one_train_and_one_test_image(tmp_path: Path, test_fraction: float) -> None:
    """n=2 with a share that rounds to 0 or to 2 test images: still one of each (the reason n >= 2)."""
    out = generate_synthetic_dataset(tmp_path / "ds", n=2, num_parts=2, size=32, test_fraction=test_fraction)
    assert len(_read_split(out, "train")) == len(_read_split(out, "test")) == 1


def test_every_part_is_visible_in_every_image() -> None:
    """All 12 parts at 64 pixels, where the first pose often hides one: a pose is redrawn until every part has
    at least 4 pixels (the 4-part fixtures show every part on the first draw)."""
    for i in range(20):
        _, labels = render_synthetic_image(i, num_parts=MAX_PARTS, size=64, seed=0)
        assert np.bincount(labels.ravel(), minlength=MAX_PARTS + 1)[1:].min() >= 4, i


def test_opens_as_part_folder(small: Path) -> None:
    from partdiscovery.data.part_folder import PartFolderDataset

    ds = PartFolderDataset(small, "test", require_parts=True)
    sample = ds.load(0)
    assert sample.part_labels is not None and sample.part_labels.max() <= K


def test_deterministic(tmp_path: Path, small: Path) -> None:
    again = generate_synthetic_dataset(tmp_path / "again", n=12, num_parts=K, size=64, seed=0)
    assert _all_files(again) == _all_files(small)
    other = generate_synthetic_dataset(tmp_path / "other", n=12, num_parts=K, size=64, seed=1)
    assert (other / "images" / "00000.jpg").read_bytes() != (small / "images" / "00000.jpg").read_bytes()
    assert (other / "parts" / "00000.png").read_bytes() != (small / "parts" / "00000.png").read_bytes()


def test_images_do_not_depend_on_n(tmp_path: Path, small: Path) -> None:
    few = generate_synthetic_dataset(tmp_path / "few", n=3, num_parts=K, size=64, seed=0)
    for sub, ext in (("images", "jpg"), ("masks", "png"), ("parts", "png")):
        assert (few / sub / f"00002.{ext}").read_bytes() == (small / sub / f"00002.{ext}").read_bytes()


def test_rerun_over_previous_output_needs_overwrite_and_removes_only_our_stale_files(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path / "ds", n=6, num_parts=3, size=32, seed=0)
    # A user's own files in the set, one with a numeric name like ours: never deleted or replaced.
    (out / "images" / "12345.jpg").write_bytes(b"user's picture")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(PartDiscoveryError, match="--overwrite"):
        generate_synthetic_dataset(out, n=3, num_parts=3, size=32, seed=0)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    generate_synthetic_dataset(out, n=3, num_parts=3, size=32, seed=0, overwrite=True)
    for sub in ("masks", "parts"):
        assert sorted(p.stem for p in (out / sub).iterdir()) == ["00000", "00001", "00002"]
    assert sorted(p.stem for p in (out / "images").iterdir()) == ["00000", "00001", "00002", "12345"]
    assert (out / "images" / "12345.jpg").read_bytes() == b"user's picture"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(_read_split(out, "train") + _read_split(out, "test")) == ["00000", "00001", "00002"]


def test_overwrite_never_replaces_a_user_file_at_one_of_our_names(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path / "ds", n=2, num_parts=3, size=32, seed=0)
    (out / "images" / "00002.jpg").write_bytes(b"user's picture")  # not written by us: n was 2
    with pytest.raises(PartDiscoveryError, match="00002.jpg"):
        generate_synthetic_dataset(out, n=3, num_parts=3, size=32, seed=0, overwrite=True)
    assert (out / "images" / "00002.jpg").read_bytes() == b"user's picture"


def test_a_set_from_before_markers_is_still_recognised(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path / "ds", n=2, num_parts=3, size=32, seed=0)
    (out / MARKER).unlink()  # as written by an older version: parts.json names the generator
    with pytest.raises(PartDiscoveryError, match="--overwrite"):
        generate_synthetic_dataset(out, n=2, num_parts=3, size=32, seed=0)
    generate_synthetic_dataset(out, n=2, num_parts=3, size=32, seed=0, overwrite=True)
    assert (out / MARKER).is_file()


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious", encoding="utf-8")
    for overwrite in (False, True):
        with pytest.raises(PartDiscoveryError, match="mine"):
            generate_synthetic_dataset(foreign, n=4, size=32, overwrite=overwrite)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    (foreign / "parts.json").write_text('{"source": "someone else"}', encoding="utf-8")
    with pytest.raises(PartDiscoveryError, match="mine"):
        generate_synthetic_dataset(foreign, n=4, size=32, overwrite=True)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(PartDiscoveryError, match="file.txt"):
        generate_synthetic_dataset(a_file, n=4, size=32)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_synthetic_dataset(empty, n=2, size=32) == empty


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 1}, "n must be"),
        ({"num_parts": 1}, "num_parts"),
        ({"num_parts": 13}, "num_parts"),
        ({"size": 31}, "size"),
        ({"seed": -1}, "seed"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_argument_validation(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_synthetic_dataset(tmp_path / "ds", **kwargs)
    assert not (tmp_path / "ds").exists()


def test_colour_kmeans_does_not_solve_it(colour_stats) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    colours, labels = colour_stats
    x, y = np.concatenate(colours), np.concatenate(labels)
    pred = KMeans(n_clusters=K, n_init=3, random_state=0).fit_predict(x)
    nmi = normalized_mutual_info_score(y, pred)
    print(f"colour k-means NMI on {len(y)} foreground pixels: {nmi:.4f}")
    assert nmi < 0.25


def test_colour_is_not_part_identifying(colour_stats) -> None:
    colours, labels = colour_stats
    means = np.full((len(colours), K, 3), np.nan)
    for i, (c, y) in enumerate(zip(colours, labels, strict=True)):
        for k in range(1, K + 1):
            if (y == k).sum() >= 4:
                means[i, k - 1] = c[y == k].mean(axis=0)
    visible = ~np.isnan(means[..., 0])
    assert visible.mean() > 0.9  # every part is usually visible
    # The same part has very different colours in different images (Lab distance to its mean colour).
    for k in range(K):
        part = means[visible[:, k], k]
        assert np.linalg.norm(part - part.mean(axis=0), axis=1).mean() > 20.0
    # Parts of one image often share a colour.
    shared = []
    for i in range(len(means)):
        m = means[i][visible[i]]
        dists = np.linalg.norm(m[:, None] - m[None], axis=2)[np.triu_indices(len(m), 1)]
        shared.append(dists.size > 0 and dists.min() < 10.0)
    assert np.mean(shared) > 0.3
    # A part's mean colour does not predict its id: leave-one-image-out nearest centroid is near chance.
    correct = total = 0
    for i in range(len(means)):
        centroids = np.nanmean(np.delete(means, i, axis=0), axis=0)
        for k in np.flatnonzero(visible[i]):
            correct += int(np.argmin(np.linalg.norm(centroids - means[i, k], axis=1)) == k)
            total += 1
    assert correct / total < 1.0 / K + 0.15
