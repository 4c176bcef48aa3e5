"""How far cached φ features are from φ of the training crop, and what the cache saves per step.

For N training crops of a part folder (the training pipeline's own crops and flips), it compares
``φ(crop)`` at the loss resolution with the crop of the cached map of the whole letterboxed image
(:mod:`partdiscovery.data.feature_cache`): the mean per-pixel cosine similarity over the foreground,
the relative L2 error, and, for scale, the same cosine between φ of the crop and φ of the flipped crop
flipped back (how far φ itself is from flip-equivariant). It also times φ on a training batch against taking the batch's
features from the cache.

    python benchmarks/feature_cache.py --data ../shared/data/pascal_person --preset photos
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F

from partdiscovery.config import load_config
from partdiscovery.data import open_dataset
from partdiscovery.data.transforms import TrainingSet
from partdiscovery.training import create_method


def fg_cosine(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    cos = F.cosine_similarity(a, b, dim=0)
    return float((cos * mask).sum() / mask.sum().clamp_min(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="photos")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--n", type=int, default=64, help="training crops compared")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    cfg = load_config(args.preset, overrides=["loss.cache_features=true", *args.set])
    method = create_method(cfg).eval()
    dataset = open_dataset(args.data, "train", validate=False)
    size = cfg.data.input_size // cfg.loss.loss_stride
    cached = TrainingSet(dataset, cfg.data, features=method.feature_cache(), feature_size=size)

    cosines, errors, jitter = [], [], []
    phi_s, crop_s = 0.0, 0.0
    for i in range(args.n):
        index = i % len(dataset)
        item = cached[(index, 1000 + i)]
        t = time.perf_counter()
        direct = method.features(item["image"][None], (size, size))[0]
        phi_s += time.perf_counter() - t
        t = time.perf_counter()
        again = cached[(index, 1000 + i)]["features"]  # the map is cached now: this is the crop alone
        crop_s += time.perf_counter() - t
        mask = F.avg_pool2d(item["fg_mask"][None], cfg.loss.loss_stride)[0, 0]
        cosines.append(fg_cosine(again, direct, mask))
        errors.append(float((again - direct).norm() / direct.norm()))
        # For scale: φ is not exactly flip-equivariant either; φ of the flipped crop, flipped back.
        flipped = method.features(item["image"][None].flip(-1), (size, size))[0].flip(-1)
        jitter.append(fg_cosine(flipped, direct, mask))

    def mean(xs):
        return sum(xs) / len(xs)

    print(
        f"data {args.data}, preset {args.preset} {' '.join(args.set)}; φ {cfg.model.feature_extractor}, {args.n} crops"
    )
    print(
        f"cached vs direct φ of the crop: foreground cosine {mean(cosines):.3f}, relative L2 {mean(errors):.3f}"
    )
    print(
        f"for scale, φ of the flipped crop flipped back vs φ of the crop: foreground cosine {mean(jitter):.3f}"
    )
    print(
        f"per crop: φ {1000 * phi_s / args.n:.1f} ms, cached crop {1000 * crop_s / args.n:.2f} ms "
        f"({args.threads} threads)"
    )


if __name__ == "__main__":
    main()
