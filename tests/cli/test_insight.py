"""Watching and looking inside: progress output, eval's per-class statistics
and noise experiment on 1 and 3 ranks, predict on image files, inspect, and
the pictures of tools/plot.py."""
import json
import os
import struct
import subprocess
import sys
import unittest
import zlib

import h5py
import numpy as np

from common import DEADLINE, SOURCE_DIR, TempDirTest, independent_accuracy, run, synthetic_mnist, write_data_h5

NETWORK = ["--layers", "784,32,10", "--activation", "relu", "--output", "softmax", "--loss", "cross-entropy",
           "--lr", "0.1", "--momentum", "0.9", "--batch-size", "20", "--epochs", "3"]


def write_png(path, pixels):
    """A PNG from uint8 pixels [H, W] (grayscale) or [H, W, 3] (colour), with the standard library."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    colour_type = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, colour_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_pgm(path, pixels, binary=True):
    pixels = np.asarray(pixels, dtype=np.uint8)
    with open(path, "wb") as f:
        if binary:
            f.write(b"P5\n# a digit\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]) + pixels.tobytes())
        else:
            f.write(b"P2\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]))
            f.write("\n".join(" ".join(str(v) for v in row) for row in pixels).encode() + b"\n")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


class InsightTest(TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.shared = __import__("tempfile").mkdtemp(prefix="dptrain-insight-")
        cls.data = write_data_h5(os.path.join(cls.shared, "data.h5"), *synthetic_mnist(400, 150))
        cls.run_dir = os.path.join(cls.shared, "run")
        cls.training = run(["train", "--data", cls.data, "--run-dir", cls.run_dir, "--log-every", "5",
                            "--profile", "4"] + NETWORK, ranks=2)
        cls.checkpoint = os.path.join(cls.run_dir, "checkpoints", "latest.h5")

    @classmethod
    def tearDownClass(cls):
        __import__("shutil").rmtree(cls.shared, ignore_errors=True)

    def test_progress_in_a_pipe_is_plain_lines_one_per_interval(self):
        self.assertEqual(self.training.code, 0, self.training)
        self.assertNotIn("\r", self.training.out)
        progress = [line for line in self.training.out.splitlines() if line.startswith("  epoch")]
        # 20 steps an epoch, a line after steps 5, 10 and 15 (the 20th is the epoch's own line).
        self.assertEqual(len(progress), 3 * 3, self.training.out)
        self.assertIn("samples/s", progress[0])
        self.assertIn("s left", progress[0])
        quiet = run(["train", "--data", self.data, "--run-dir", self.path("q"), "-q"] + NETWORK, ranks=2)
        self.assertEqual(quiet.code, 0, quiet)
        self.assertEqual(quiet.out.strip().splitlines(), [quiet.out.strip()], quiet.out)
        self.assertTrue(quiet.out.startswith("dptrain: done after epoch 3: test accuracy"), quiet.out)

    def test_eval_statistics_are_the_same_on_1_and_3_ranks_and_add_up(self):
        reports = []
        for ranks in (1, 3):
            result = run(["eval", "--checkpoint", self.checkpoint, "--noise", "500", "--json"], ranks=ranks)
            self.assertEqual(result.code, 0, result)
            reports.append(json.loads(result.out))
        one, three = reports
        self.assertEqual(one["confusion"], three["confusion"])
        self.assertEqual(one["noise"]["predicted"], three["noise"]["predicted"])
        self.assertEqual((one["correct"], one["total"]), (three["correct"], three["total"]))
        matrix = np.array(one["confusion"])
        self.assertEqual(matrix.sum(), one["total"])
        self.assertEqual(np.trace(matrix), one["correct"])
        self.assertEqual(one["correct"], independent_accuracy(self.checkpoint, self.data)[0])
        with h5py.File(self.data, "r") as f:
            labels = f["test/labels"][()]
        for row in one["per_class"]:
            c = row["class"]
            self.assertEqual(row["support"], int((labels == c).sum()))
            self.assertAlmostEqual(row["recall"], matrix[c, c] / max(1, matrix[c].sum()))
            self.assertAlmostEqual(row["precision"], matrix[c, c] / max(1, matrix[:, c].sum()))
        self.assertEqual(sum(one["noise"]["predicted"]), 500)
        self.assertTrue(0 < one["noise"]["mean_top_probability"] <= 1)
        text = run(["eval", "--checkpoint", self.checkpoint, "--noise", "100"], ranks=2)
        self.assertIn("confusion matrix (rows: true label, columns: predicted)", text.out)
        self.assertIn("noise experiment: 100 images of uniform random pixels", text.out)
        too_many = run(["eval", "--checkpoint", self.checkpoint, "--noise", "10000000000"], ranks=2)
        self.assertOneClearError(too_many, "--noise 10000000000 is invalid: expected 0 to 1000000000 images")

    def test_predict_gives_the_networks_label_for_image_files(self):
        with h5py.File(self.data, "r") as f:
            images, labels = f["test/images"][:12], f["test/labels"][:12]
        layers = __import__("common").read_params(self.checkpoint)
        a = images.reshape(12, -1) / 255.0
        for i, (w, b) in enumerate(layers):
            z = a @ w.T + b
            a = np.maximum(z, 0) if i < len(layers) - 1 else z
        expected = a.argmax(axis=1)
        files = []
        for i, image in enumerate(images):
            kind = ("png", "p5", "p2")[i % 3]
            path = self.path(f"digit{i}.{'png' if kind == 'png' else 'pgm'}")
            write_png(path, image) if kind == "png" else write_pgm(path, image, binary=kind == "p5")
            files.append(path)
        drawn = self.path("drawn.png")
        write_png(drawn, 255 - images[0])  # dark on light, as people draw
        result = run(["predict", "--checkpoint", self.checkpoint, "--json"] + files + [drawn])
        self.assertEqual(result.code, 0, result)
        answers = [json.loads(line) for line in result.out.splitlines()]
        self.assertEqual([a["digit"] for a in answers[:12]], list(expected))
        self.assertEqual(answers[12]["digit"], expected[0])
        self.assertTrue(answers[12]["inverted"])
        self.assertFalse(any(a["inverted"] for a in answers[:12]))
        for answer in answers:
            self.assertEqual(len(answer["probabilities"]), 10)
            self.assertAlmostEqual(sum(answer["probabilities"]), 1.0, places=4)
        forced = run(["predict", "--checkpoint", self.checkpoint, "--no-invert", drawn])
        self.assertNotIn("inverted", forced.out)

    def test_predict_refuses_what_it_cannot_read(self):
        write_png(self.path("colour.png"), np.zeros((28, 28, 3)))
        write_pgm(self.path("small.pgm"), np.zeros((27, 27)))
        with open(self.path("notes.txt"), "w") as f:
            f.write("a digit\n")
        write_png(self.path("cut.png"), np.full((28, 28), 7))
        with open(self.path("cut.png"), "r+b") as f:
            f.truncate(40)
        cases = [("colour.png", "a colour PNG; expected 8-bit grayscale"),
                 ("small.pgm", "a 27x27 image, but the network takes 784 pixels"),
                 ("notes.txt", "not a PGM (P2/P5) or PNG image"),
                 ("cut.png", "cut.png:"),
                 ("missing.png", "missing.png: cannot open")]
        for name, fragment in cases:
            with self.subTest(name):
                self.assertOneClearError(run(["predict", "--checkpoint", self.checkpoint, self.path(name)]), fragment)

    def test_inspect_summarises_a_checkpoint(self):
        result = run(["inspect", self.checkpoint])
        self.assertEqual(result.code, 0, result)
        for fragment in ("784,32,10, 25450 parameters; hidden relu, output softmax, loss cross-entropy",
                         "layer_0    weight [32 x 784], bias [32]", "momentum 0.9", "3 epochs done",
                         "2 ranks, global batch 20", "SHA-256 ", '"epoch": 3'):
            self.assertIn(fragment, result.out)

    def test_step_phases_add_up_and_every_rank_writes_a_trace(self):
        with open(os.path.join(self.run_dir, "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f]
        self.assertEqual([m["epoch"] for m in metrics], [1, 2, 3])
        for m in metrics:
            # Structure only: how much of an epoch the steps take depends on the
            # machine's load (a "more than 80%" check failed at 79%).
            phases = m["phase_ms"]
            self.assertEqual(sorted(phases), ["allreduce", "backward", "data", "forward", "update"])
            self.assertTrue(all(ms >= 0 for ms in phases.values()), phases)
            self.assertGreater(m["step_ms"], 0)
            # metrics.jsonl holds 9 significant digits (%.9g): a relative
            # tolerance, as an absolute one fails once a step takes 10 ms or more.
            self.assertAlmostEqual(sum(phases.values()), m["step_ms"], delta=1e-7 * m["step_ms"])
            # The steps are timed inside the epoch with the same clock, so they
            # cannot take longer than it (the slack is for that rounding only).
            steps_ms = m["step_ms"] * 20  # 20 steps an epoch
            self.assertLessEqual(steps_ms, 1000 * m["epoch_seconds"] * (1 + 1e-7))
            self.assertGreater(m["gflops"], 0)
        self.assertIn("ms/step: data", self.training.out)
        for rank in (0, 1):
            with open(os.path.join(self.run_dir, "profile", f"rank-{rank}.json")) as f:
                events = json.load(f)["traceEvents"]
            self.assertEqual([e["name"] for e in events[:5]], ["data", "forward", "backward", "allreduce", "update"])
            self.assertEqual(len(events), 4 * 5)
            self.assertTrue(all(e["pid"] == rank and e["dur"] >= 0 and e["ph"] == "X" for e in events))
            for before, after in zip(events, events[1:5]):  # one step's phases follow each other
                self.assertAlmostEqual(before["ts"] + before["dur"], after["ts"], delta=0.01)

    def test_the_profile_summary_reads_the_traces_back_and_splits_the_reduction_into_work_and_wait(self):
        summary = os.path.join(SOURCE_DIR, "tools", "profile-summary.py")
        # The real traces of the 2-rank run: every profiled step, each phase's median one of its values.
        result = subprocess.run([sys.executable, summary, self.run_dir, "--json"], capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual((report["ranks"], report["steps"]), (2, 4))
        for rank in (0, 1):
            with open(os.path.join(self.run_dir, "profile", f"rank-{rank}.json")) as f:
                forward = [e["dur"] for e in json.load(f)["traceEvents"] if e["name"] == "forward"]
            self.assertIn(report["per_rank"][rank]["phases_us"]["forward"]["median"], forward)
        # Hand-made traces: rank 1 arrives last at the reduction of steps 1 and 2, rank 0 at step 3.
        folder = self.path("made")
        os.makedirs(os.path.join(folder, "profile"))
        durations = {0: [(10, 100, 200, 50, 1), (10, 100, 200, 70, 1), (10, 100, 260, 20, 1)],
                     1: [(10, 120, 220, 30, 1), (10, 120, 230, 40, 1), (10, 100, 200, 80, 1)]}
        for rank, steps in durations.items():
            events, t = [], 0.0
            for step in steps:
                for name, dur in zip(["data", "forward", "backward", "allreduce", "update"], step):
                    events.append({"name": name, "ph": "X", "ts": t, "dur": dur, "pid": rank, "tid": 0})
                    t += dur
            with open(os.path.join(folder, "profile", f"rank-{rank}.json"), "w") as f:
                json.dump({"traceEvents": events}, f)
        result = subprocess.run([sys.executable, summary, folder, "--json", "--skip", "1"], capture_output=True,
                                text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        made = json.loads(result.stdout)
        self.assertEqual(made["steps"], 2)  # steps 2 and 3
        # Work: the last to arrive's allreduce + update, 41 (rank 1, step 2) and 21 (rank 0, step 3).
        self.assertEqual(made["reduction_work_us"], {"p10": 21, "median": 41, "p90": 41})
        self.assertEqual(made["per_rank"][0]["reduction_wait_us"], {"p10": 0, "median": 30, "p90": 30})
        self.assertEqual(made["per_rank"][1]["reduction_wait_us"], {"p10": 0, "median": 60, "p90": 60})
        self.assertEqual(made["per_rank"][1]["phases_us"]["backward"], {"p10": 200, "median": 230, "p90": 230})
        text = subprocess.run([sys.executable, summary, folder, "--skip", "1"], capture_output=True, text=True,
                              timeout=DEADLINE)
        self.assertIn("reduction work (the last rank to arrive): 21 / 41 / 41", text.stdout)

    def test_every_picture_is_a_png_of_the_expected_size_and_not_blank(self):
        try:
            import matplotlib.image
        except ImportError:
            self.skipTest("python3-matplotlib is not installed")
        eval_json = self.path("eval.json")
        with open(eval_json, "w") as f:
            f.write(run(["eval", "--checkpoint", self.checkpoint, "--json"]).out)
        plot = os.path.join(SOURCE_DIR, "tools", "plot.py")
        pictures = {"curves": ([self.run_dir, os.path.join(self.run_dir, "metrics.jsonl")], (1100, 420)),
                    "confusion": ([eval_json], (640, 560)),
                    "weights": ([self.checkpoint], (780, 820)),
                    "misclassified": ([self.checkpoint, self.data], None)}
        for kind, (inputs, size) in pictures.items():
            with self.subTest(kind):
                out = self.path(kind + ".png")
                subprocess.run([sys.executable, plot, kind] + inputs + ["--out", out], check=True,
                               capture_output=True, timeout=DEADLINE)
                if size:
                    self.assertEqual(png_size(out), size)
                pixels = matplotlib.image.imread(out)
                self.assertGreater(pixels[..., :3].std(), 0.01)


if __name__ == "__main__":
    unittest.main()
