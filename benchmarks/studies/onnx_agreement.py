"""ONNX against PyTorch on a whole held-out set: a trained, exported network's logits and
predictions from onnxruntime and from PyTorch on every CIFAR-10 test image.

    tgsage export RUNS_DIR/cifar_final-s0 --out RUNS_DIR/export-s0
    python benchmarks/studies/onnx_agreement.py RUNS_DIR/export-s0 --cifar-root RUNS_DIR/data

``--cifar-root`` is a folder holding ``cifar-10-batches-py`` (e.g. the one
``final_training.py`` extracted). Prints the largest absolute logit difference, how many
predictions agree, and both accuracies; one thread each.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from tgsage.data.cifar import load_cifar
from tgsage.data.pipeline import prepare_images
from tgsage.export import ONNX_FILE, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=Path, help="folder with model.safetensors and model.onnx")
    ap.add_argument("--cifar-root", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a subset archive lacks some training batches
        test = load_cifar("cifar10", args.cifar_root).test
    assert test is not None
    model = load_model(args.model_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(args.model_dir / ONNX_FILE), opts, providers=["CPUExecutionProvider"]
    )
    worst, agree, right_torch, right_onnx = 0.0, 0, 0, 0
    for i in range(0, len(test), args.batch):
        x = prepare_images(test.images[i : i + args.batch], "cpu", model.card.normalize)
        y = test.labels[i : i + args.batch]
        with torch.no_grad():
            want = model(x)
        got = torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
        worst = max(worst, float((got - want).abs().max()))
        agree += int((got.argmax(1) == want.argmax(1)).sum())
        right_torch += int((want.argmax(1) == y).sum())
        right_onnx += int((got.argmax(1) == y).sum())
    n = len(test)
    print(
        f"{n} test images: max |onnx - torch| logit {worst:.3g}; predictions agree on "
        f"{agree}/{n}; accuracy torch {right_torch / n:.4f}, onnx {right_onnx / n:.4f}"
    )


if __name__ == "__main__":
    main()
