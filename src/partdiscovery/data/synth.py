"""Procedural synthetic dataset for unsupervised part discovery, written in the part folder format.

Why it is designed this way
---------------------------
The dataset exists to test part discovery on a problem whose answer is known, and to compare the
method with k-means on features. That comparison is only meaningful if **colour alone does not
solve it**, so the generator makes part identity a matter of *geometry*, never of colour:

* Every image shows the same articulated template (a four-legged "creature": body, head, legs,
  tail, ear, snout, fin, ...). Part ``k`` is always the same semantic part, at the same place on
  the object, with the same shape, so a method that learns object structure can find it.
* The pose changes per image (rotation, scale, translation, mirroring, joint articulation), so a
  fixed pixel position does not identify a part either.
* Colour is drawn independently of part identity: half of the objects are painted with a single
  random colour/texture, the others with random per-part colours from a small palette (parts of
  one image often share colours), and every part gets a random texture (stripes, dots, smooth
  noise, gradients). A part's colour in one image says nothing about its colour in the next.
* Backgrounds are cluttered (colour gradients or textures plus random distractor shapes, some in
  the object's own colours, some shaped like limbs), with uneven lighting, blur and noise, so the
  foreground itself is not trivially separable by colour.

Everything is deterministic: image ``i`` depends only on ``(seed, i)`` and the generator options
(not on ``n``), and the train/test split only on ``(seed, n, test_fraction)``.

Example:
    >>> from partdiscovery.data.synth import generate_synthetic_dataset
    >>> root = generate_synthetic_dataset("data/synth", n=300, num_parts=4, size=128, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import colorsys
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from partdiscovery.data.part_folder import PARTS_FILE
from partdiscovery.errors import InvalidArgumentError
from partdiscovery.utils.io import atomic_save_image, atomic_write, atomic_write_json, atomic_write_text
from partdiscovery.utils.outputs import OutputFolder

SOURCE = "partdiscovery synth"
SYNTH_KIND = "synthetic dataset"
FIXED_FILES = (PARTS_FILE, "train.txt", "test.txt", "README.md")
GENERATOR_VERSION = 1
MAX_PARTS = 12
JPEG_QUALITY = 90

SEMANTIC_NAMES = (
    "body",
    "head",
    "front legs",
    "hind legs",
    "tail",
    "ear",
    "snout",
    "dorsal fin",
    "horn",
    "tail tuft",
    "mane",
    "belly",
)
"""What part ``k`` (1-based) depicts; parts.json uses the neutral names ``part1..partK``."""


@dataclass(frozen=True)
class _Shape:
    """One polygon of the template, attached to a parent shape at a joint.

    ``attach`` is the joint in the parent's frame as (fraction of its length, fraction of its width,
    -0.5..0.5 = its two sides); for the root it is the absolute origin. ``angle`` is relative to the
    parent's axis in degrees (+90 points to the parent's belly side); ``swing`` is the random
    articulation range around the joint.
    """

    part: int
    kind: str
    parent: int | None
    attach: tuple[float, float]
    angle: float
    length: float
    width: float
    z: int
    swing: float = 0.0


# Object frame: the body is an ellipse centred at the origin, 2 units long, head towards +x, y down.
_TEMPLATE: tuple[_Shape, ...] = (
    _Shape(1, "ellipse", None, (-1.0, 0.0), 0, 2.0, 0.9, 10),  # 0 body
    _Shape(2, "ellipse", 0, (0.92, -0.28), -20, 0.8, 0.72, 12, 12),  # 1 head
    _Shape(3, "limb", 0, (0.75, 0.25), 90, 0.95, 0.24, 13, 22),  # 2 near front leg
    _Shape(3, "limb", 0, (0.86, 0.2), 80, 0.9, 0.22, 5, 22),  # 3 far front leg
    _Shape(4, "limb", 0, (0.2, 0.25), 90, 0.95, 0.28, 13, 22),  # 4 near hind leg
    _Shape(4, "limb", 0, (0.32, 0.2), 100, 0.9, 0.26, 5, 22),  # 5 far hind leg
    _Shape(5, "taper", 0, (0.04, -0.1), -160, 0.95, 0.26, 8, 25),  # 6 tail
    _Shape(6, "triangle", 1, (0.35, -0.42), -85, 0.45, 0.3, 11, 15),  # 7 ear
    _Shape(7, "ellipse", 1, (0.85, 0.12), 15, 0.5, 0.34, 11, 10),  # 8 snout
    _Shape(8, "triangle", 0, (0.42, -0.42), -90, 0.55, 0.6, 9, 12),  # 9 dorsal fin
    _Shape(9, "taper", 1, (0.7, -0.42), -45, 0.45, 0.16, 11, 12),  # 10 horn
    _Shape(10, "ellipse", 6, (0.9, 0.0), 0, 0.42, 0.34, 9, 20),  # 11 tail tuft
    _Shape(11, "ellipse", 0, (0.8, -0.42), -60, 0.55, 0.4, 9, 10),  # 12 mane
    _Shape(12, "ellipse", 0, (0.3, 0.16), 0, 0.8, 0.3, 11, 0),  # 13 belly
)


def _local_polygon(kind: str, length: float, width: float) -> np.ndarray:
    """The shape in its own frame: joint at the origin, axis along +x. Returns ``[P, 2]``."""
    if kind == "ellipse":
        t = np.linspace(0.0, 2 * np.pi, 28, endpoint=False)
        return np.stack([length / 2 * (1 + np.cos(t)), width / 2 * np.sin(t)], axis=1)
    if kind == "limb":  # a stadium (capsule) of radius width / 2
        r = width / 2
        a = np.linspace(-np.pi / 2, np.pi / 2, 9)
        end = np.stack([length - r + r * np.cos(a), r * np.sin(a)], axis=1)
        start = np.stack([r - r * np.cos(a), -r * np.sin(a)], axis=1)
        return np.concatenate([end, start])
    if kind == "taper":  # a curved-free horn/tail that narrows to a tip
        t = np.linspace(0.0, 1.0, 12)
        half = width / 2 * (1 - t) ** 0.8 + 0.01
        top = np.stack([t * length, -half], axis=1)
        return np.concatenate([top, top[::-1] * [1, -1]])
    if kind == "triangle":
        return np.array([[0.0, -width / 2], [length, 0.0], [0.0, width / 2]])
    raise ValueError(f"unknown shape kind {kind!r}")


def _rotation(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _pose_template(rng: np.random.Generator, num_parts: int) -> list[tuple[_Shape, np.ndarray]]:
    """Jitter the proportions, articulate the joints; return (shape, polygon) in object units."""
    length_f = rng.uniform(0.88, 1.12, MAX_PARTS + 1)
    width_f = rng.uniform(0.88, 1.15, MAX_PARTS + 1)
    frames: dict[int, tuple[np.ndarray, float, float, float]] = {}  # origin, angle, length, width
    out = []
    for idx, shape in enumerate(_TEMPLATE):
        swing = rng.uniform(-1.0, 1.0) * shape.swing  # drawn for every shape: keeps streams aligned
        if shape.part > num_parts:
            continue
        length, width = shape.length * length_f[shape.part], shape.width * width_f[shape.part]
        if shape.parent is None:
            origin, angle = np.array(shape.attach, dtype=np.float64), shape.angle
        else:
            p_origin, p_angle, p_len, p_wid = frames[shape.parent]
            joint = np.array([shape.attach[0] * p_len, shape.attach[1] * p_wid])
            origin = p_origin + _rotation(p_angle) @ joint
            angle = p_angle + shape.angle + swing
        frames[idx] = (origin, angle, length, width)
        poly = _local_polygon(shape.kind, length, width) @ _rotation(angle).T + origin
        out.append((shape, poly))
    return out


def _render_labels(polys: list[tuple[_Shape, np.ndarray]], size: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for shape, poly in sorted(polys, key=lambda sp: sp[0].z):  # stable: ties keep template order
        draw.polygon([(float(x), float(y)) for x, y in poly], fill=shape.part)
    return np.asarray(canvas, dtype=np.uint8)


def _sample_labels(rng: np.random.Generator, num_parts: int, size: int) -> np.ndarray:
    """Pose the object in the image; retry a few poses until every part has some visible pixels."""
    min_px = max(4, size * size // 2000)
    best: tuple[int, np.ndarray] | None = None
    for _ in range(12):
        polys = _pose_template(rng, num_parts)
        mirror = rng.random() < 0.5
        rot = _rotation(rng.uniform(-40.0, 40.0))
        posed = []
        for shape, poly in polys:
            p = poly * [-1.0, 1.0] if mirror else poly
            posed.append((shape, p @ rot.T))
        pts = np.concatenate([p for _, p in posed])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        scale = rng.uniform(0.35, 0.75) * size / float(np.max(hi - lo))
        lo, hi = lo * scale, hi * scale
        shift = np.array(
            [
                rng.uniform(-lo[i], size - hi[i]) if size - hi[i] > -lo[i] else (size - hi[i] - lo[i]) / 2
                for i in range(2)
            ]
        )
        labels = _render_labels([(s, p * scale + shift) for s, p in posed], size)
        counts = np.bincount(labels.ravel(), minlength=num_parts + 1)[1 : num_parts + 1]
        if counts.min() >= min_px:
            return labels
        if best is None or counts.min() > best[0]:
            best = (int(counts.min()), labels)
    assert best is not None
    return best[1]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(0.1, 1.0), rng.uniform(0.15, 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _jitter(rng: np.random.Generator, colour: np.ndarray, sigma: float = 20.0) -> np.ndarray:
    return np.clip(colour + rng.normal(0.0, sigma, 3), 0.0, 255.0)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    small = Image.fromarray(rng.random((cells, cells)).astype(np.float32))
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64).clip(0.0, 1.0)


def _texture(rng: np.random.Generator, size: int, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """A ``[size, size, 3]`` float texture mixing ``c1`` and ``c2``: solid, gradient, stripes, dots, noise."""
    kind = int(rng.choice(5, p=[0.2, 0.2, 0.22, 0.16, 0.22]))
    unit = size / 128.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    a = rng.uniform(0.0, 2 * np.pi)
    proj = xx * math.cos(a) + yy * math.sin(a)
    if kind == 0:
        t = np.zeros((size, size))
    elif kind == 1:
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    elif kind == 2:
        period = rng.uniform(3.0, 14.0) * unit
        t = 0.5 + 0.5 * np.sin(2 * np.pi * proj / period + rng.uniform(0.0, 2 * np.pi))
        if rng.random() < 0.5:
            t = (t > rng.uniform(0.3, 0.7)).astype(np.float64)
    elif kind == 3:
        spacing = rng.uniform(5.0, 14.0) * unit
        radius = rng.uniform(0.2, 0.45) * spacing
        dx = np.mod(xx + rng.uniform(0.0, spacing), spacing) - spacing / 2
        dy = np.mod(yy + rng.uniform(0.0, spacing), spacing) - spacing / 2
        t = (dx * dx + dy * dy < radius * radius).astype(np.float64)
    else:
        t = _smooth_noise(rng, size, int(rng.integers(3, 14)))
        if rng.random() < 0.35:
            t = (t > 0.5).astype(np.float64)
    return c1 * (1.0 - t[..., None]) + c2 * t[..., None]


def _distractor_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    kind = int(rng.integers(4))
    cx, cy = rng.uniform(-0.1, 1.1, 2) * size
    r = rng.uniform(0.04, 0.3) * size
    if kind == 0:
        rx, ry = r, r * rng.uniform(0.3, 1.0)
        poly = _local_polygon("ellipse", 2 * rx, 2 * ry) - [rx, 0.0]
    elif kind == 1:
        angles = np.sort(rng.uniform(0.0, 2 * np.pi, int(rng.integers(3, 8))))
        radii = r * rng.uniform(0.4, 1.0, angles.size)
        poly = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    elif kind == 2:  # limb- or horn-like shapes, so shape alone does not say "object"
        poly = _local_polygon(
            ("limb", "taper", "triangle")[int(rng.integers(3))], r * 1.5, r * rng.uniform(0.2, 0.5)
        )
    else:
        end = np.array([cx, cy]) + rng.normal(0.0, r, 2)
        draw.line(
            [(cx, cy), (float(end[0]), float(end[1]))],
            fill=255,
            width=int(rng.integers(1, max(2, size // 24))),
        )
        return np.asarray(canvas) > 0
    poly = poly @ _rotation(rng.uniform(0.0, 360.0)).T + [cx, cy]
    draw.polygon([(float(x), float(y)) for x, y in poly], fill=255)
    return np.asarray(canvas) > 0


def render_synthetic_image(
    index: int, num_parts: int = 4, size: int = 128, seed: int = 0
) -> tuple[Image.Image, np.ndarray]:
    """Render image ``index`` for ``seed``: (RGB image, ``uint8 [size, size]`` part labels)."""
    rng = np.random.default_rng([seed, index])
    labels = _sample_labels(rng, num_parts, size)

    # Object colours: independent of part identity.
    if rng.random() < 0.5:  # one colour / texture for the whole object
        c1 = _random_colour(rng)
        c2 = _random_colour(rng) if rng.random() < 0.5 else _jitter(rng, c1, 35.0)
        textures = [_texture(rng, size, c1, c2)] * num_parts
        palette = [c1, c2]
    else:  # random per-part colours from a small palette: parts often share colours
        palette = [_random_colour(rng) for _ in range(int(rng.integers(2, num_parts + 1)))]
        textures = []
        for _ in range(num_parts):
            c1 = palette[int(rng.integers(len(palette)))]
            c2 = palette[int(rng.integers(len(palette)))] if rng.random() < 0.5 else _jitter(rng, c1, 35.0)
            textures.append(_texture(rng, size, c1, c2))

    # Background: a gradient or texture, then distractors (some in the object's colours).
    image = _texture(rng, size, _random_colour(rng), _random_colour(rng))
    for _ in range(int(rng.integers(3, 11))):
        mask = _distractor_mask(rng, size)
        if rng.random() < 0.35:
            colour = _jitter(rng, palette[int(rng.integers(len(palette)))])
        else:
            colour = _random_colour(rng)
        if rng.random() < 0.3:
            image[mask] = _texture(rng, size, colour, _random_colour(rng))[mask]
        else:
            image[mask] = colour
    for k in range(1, num_parts + 1):
        sel = labels == k
        image[sel] = textures[k - 1][sel]

    # Uneven lighting, colour cast, blur, noise.
    yy, xx = np.mgrid[0:size, 0:size] / size
    a = rng.uniform(0.0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.45) * ((xx * math.cos(a) + yy * math.sin(a)) / 1.42)
    image = image * (light / light.mean())[..., None] * rng.uniform(0.9, 1.1, 3)
    pil = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    noisy = np.asarray(pil, dtype=np.float64) + rng.normal(0.0, rng.uniform(1.5, 5.0), (size, size, 3))
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8)), labels


def _validate(n: int, num_parts: int, size: int, seed: int, test_fraction: float) -> None:
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidArgumentError(f"n must be an integer >= 2 (a train and a test image), got {n!r}")
    if not isinstance(num_parts, (int, np.integer)) or not 2 <= num_parts <= MAX_PARTS:
        raise InvalidArgumentError(f"num_parts must be an integer in 2..{MAX_PARTS}, got {num_parts!r}")
    if not isinstance(size, (int, np.integer)) or size < 32:
        raise InvalidArgumentError(f"size must be an integer >= 32 pixels, got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.number)):
        raise InvalidArgumentError(f"test_fraction must be a number, got {test_fraction!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise InvalidArgumentError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")


def _is_synth_output(out: Path) -> bool:
    try:
        meta = json.loads((out / PARTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("source") == SOURCE


def _output_folder(out: Path) -> OutputFolder:
    """The dataset folder, ours when marked (or, from before markers, when parts.json names us)."""
    return OutputFolder(out, SYNTH_KIND, legacy=_is_synth_output)


def _params_text(n: int, num_parts: int, size: int, seed: int, test_fraction: float) -> str:
    return (
        f"n={n} num_parts={num_parts} size={size} seed={seed} test_fraction={test_fraction} "
        f"generator_version={GENERATOR_VERSION}"
    )


def _readme(
    n: int, num_parts: int, size: int, seed: int, test_fraction: float, n_train: int, n_test: int
) -> str:
    parts = "\n".join(f"- {k}: part{k} ({SEMANTIC_NAMES[k - 1]})" for k in range(1, num_parts + 1))
    return f"""# Synthetic part discovery dataset

Generated by `partdiscovery.data.synth.generate_synthetic_dataset` ({SOURCE}, generator version
{GENERATOR_VERSION}). License: CC0.

Every image shows one procedurally posed articulated "creature" (rotation, scale, translation,
mirroring, joint articulation) on a cluttered background. Part ids are defined by geometry and
position on the object, not by colour: colours and textures are drawn at random per image (and often
shared between parts), and distractors in the background may use the object's colours.

Counts: {n} images ({n_train} train, {n_test} test), {size}x{size} pixels, {num_parts} parts.

Parameters: `{_params_text(n, num_parts, size, seed, test_fraction)}`

Files: `images/<id>.jpg` (RGB, JPEG quality {JPEG_QUALITY}), `masks/<id>.png` (0/255),
`parts/<id>.png` (0 = background, 1..{num_parts}), `parts.json`, `train.txt`, `test.txt`.

Parts:
{parts}
"""


def generate_synthetic_dataset(
    out: str | Path,
    n: int = 300,
    num_parts: int = 4,
    size: int = 128,
    seed: int = 0,
    test_fraction: float = 0.2,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` synthetic images, masks and part labels to ``out`` (part folder format); return it.

    Deterministic given the arguments. ``out`` must be new or empty; a previous synthetic dataset is
    replaced only with ``overwrite``, and then only the files this function wrote (listed in the folder's
    :data:`~partdiscovery.utils.outputs.MARKER`) are replaced or removed, never a file the user added.
    Anything else is refused with :class:`~partdiscovery.errors.OutputPathError`.
    """
    _validate(n, num_parts, size, seed, test_fraction)
    n, num_parts, size, seed, test_fraction = (
        int(n),
        int(num_parts),
        int(size),
        int(seed),
        float(test_fraction),
    )
    out = Path(out)
    folder = _output_folder(out)
    folder.check(overwrite)
    width = max(5, len(str(n - 1)))
    ids = [f"{i:0{width}d}" for i in range(n)]
    files = [*FIXED_FILES]
    for image_id in ids:
        files += [f"images/{image_id}.jpg", f"masks/{image_id}.png", f"parts/{image_id}.png"]
    folder.refuse_foreign_files(files)
    # The marker first, listing every file about to be written: an interrupted run is still ours.
    folder.claim(files)
    atomic_write_json(
        out / PARTS_FILE,
        {
            "names": {str(k): f"part{k}" for k in range(1, num_parts + 1)},
            "source": SOURCE,
            "license": "CC0",
            "notes": "procedural articulated template, parts "
            + ", ".join(f"{k}={SEMANTIC_NAMES[k - 1]}" for k in range(1, num_parts + 1))
            + "; "
            + _params_text(n, num_parts, size, seed, test_fraction),
        },
    )
    for i, image_id in enumerate(ids):
        image, labels = render_synthetic_image(i, num_parts=num_parts, size=size, seed=seed)
        atomic_write(
            out / "images" / f"{image_id}.jpg",
            lambda fh, im=image: im.save(fh, format="JPEG", quality=JPEG_QUALITY),
        )
        atomic_save_image(
            out / "masks" / f"{image_id}.png", Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8))
        )
        atomic_save_image(out / "parts" / f"{image_id}.png", Image.fromarray(labels))

    n_test = min(n - 1, max(1, round(n * test_fraction)))
    order = np.random.default_rng(seed).permutation(n)
    test_ids = sorted(ids[i] for i in order[:n_test])
    train_ids = sorted(ids[i] for i in order[n_test:])
    atomic_write_text(out / "train.txt", "\n".join(train_ids) + "\n")
    atomic_write_text(out / "test.txt", "\n".join(test_ids) + "\n")
    atomic_write_text(
        out / "README.md", _readme(n, num_parts, size, seed, test_fraction, len(train_ids), n_test)
    )
    folder.finish(files)  # removes images of an earlier, larger set (ours), nothing else
    return out
