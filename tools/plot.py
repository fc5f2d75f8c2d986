#!/usr/bin/env python3
"""Pictures of a training run, as PNG files (matplotlib, headless).

  tools/plot.py curves RUN_DIR_OR_METRICS... --out curves.png
      loss and test accuracy against epoch; several runs overlaid and labelled
  tools/plot.py confusion EVAL.json --out confusion.png
      the confusion matrix from `dptrain eval --json` as a heat map
  tools/plot.py weights CHECKPOINT.h5 --out weights.png
      each first-layer neuron's weights as a 28x28 image: what it responds to
  tools/plot.py misclassified CHECKPOINT.h5 DATA.h5 --out wrong.png [--count 36]
      test digits the network gets wrong, with true and predicted labels

Run with Debian's python3 (/usr/bin/python3) and python3-matplotlib,
python3-h5py, python3-numpy: DPTRAIN_EXTRA_PACKAGES="python3-matplotlib
python3-h5py python3-numpy" tools/install-deps.sh
"""
import argparse
import json
import math
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import h5py
    import numpy as np
except ImportError as missing:
    sys.exit(f"plot.py: {missing}; run it with /usr/bin/python3 and install python3-matplotlib, python3-h5py "
             "and python3-numpy (see --help)")

ACTIVATIONS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "softmax": lambda z: np.exp(z - z.max(axis=1, keepdims=True)) / np.exp(z - z.max(axis=1, keepdims=True)).sum(
        axis=1, keepdims=True),
}


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def load_checkpoint(path):
    with h5py.File(path, "r") as f:
        model = f["model"]
        count = len(model.attrs["layers"]) - 1
        layers = [(model[f"layer_{i}/weight"][()], model[f"layer_{i}/bias"][()]) for i in range(count)]
        return layers, text(model.attrs["activation"]), text(model.attrs["output"])


def predict(layers, hidden, output, images):
    a = images.reshape(len(images), -1).astype(np.float64) / 255.0
    for i, (w, b) in enumerate(layers):
        a = ACTIVATIONS[output if i == len(layers) - 1 else hidden](a @ w.T + b)
    return a.argmax(axis=1)


def curves(args):
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for source in args.inputs:
        path = os.path.join(source, "metrics.jsonl") if os.path.isdir(source) else source
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        epochs = [r["epoch"] for r in rows]
        line, = loss_ax.plot(epochs, [r["train_loss"] for r in rows], label=f"{label} train")
        loss_ax.plot(epochs, [r["test_loss"] for r in rows], "--", color=line.get_color(), label=f"{label} test")
        acc_ax.plot(epochs, [100 * r["test_accuracy"] for r in rows], color=line.get_color(), label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss", yscale="log")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def confusion(args):
    with open(args.inputs[0]) as f:
        report = json.load(f)
    matrix = np.array(report["confusion"])
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(np.log1p(matrix), cmap="viridis")
    for t in range(matrix.shape[0]):
        for p in range(matrix.shape[1]):
            ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[t, p] < matrix.max() / 3 else "black")
    ax.set(xlabel="predicted", ylabel="true label", xticks=range(matrix.shape[1]), yticks=range(matrix.shape[0]),
           title=f"confusion matrix, accuracy {100 * report['accuracy']:.2f}%")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return fig


def weights(args):
    layers, _, _ = load_checkpoint(args.inputs[0])
    w = layers[0][0]
    side = int(round(math.sqrt(w.shape[1])))
    if side * side != w.shape[1]:
        sys.exit(f"plot.py: the first layer takes {w.shape[1]} inputs, not a square image")
    columns = math.ceil(math.sqrt(w.shape[0]))
    rows = math.ceil(w.shape[0] / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < w.shape[0]:
            limit = np.abs(w[i]).max()
            ax.imshow(w[i].reshape(side, side), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(i), fontsize=7)
    fig.suptitle("first-layer weights (red +, blue -)")
    return fig


def misclassified(args):
    if len(args.inputs) != 2:
        sys.exit("plot.py misclassified: give CHECKPOINT.h5 DATA.h5")
    layers, hidden, output = load_checkpoint(args.inputs[0])
    with h5py.File(args.inputs[1], "r") as f:
        images, labels = f["test/images"][()], f["test/labels"][()]
    predicted = predict(layers, hidden, output, images)
    wrong = np.flatnonzero(predicted != labels)[: args.count]
    columns = max(1, math.ceil(math.sqrt(max(len(wrong), 1))))
    rows = max(1, math.ceil(len(wrong) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.5 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i], cmap="gray")
        ax.set_title(f"#{i}: {labels[i]} as {predicted[i]}", fontsize=7)
    fig.suptitle(f"misclassified test digits ({int((predicted != labels).sum())} in all): true as predicted")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["curves", "confusion", "weights", "misclassified"])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--count", type=int, default=36, help="misclassified: how many digits")
    args = parser.parse_args()
    figure = globals()[args.kind](args)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
