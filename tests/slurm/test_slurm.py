"""The job scripts in jobs/, submitted with sbatch to a real one-node Slurm
cluster that these tests start (tools/slurm/start-local-slurm.sh) and stop.
Only the variables the scripts document are changed. Needs root."""
import contextlib
import glob
import os
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from common import (DEADLINE, SOURCE_DIR, TempDirTest, ranks_among, run, same_params, synthetic_mnist,  # noqa: E402
                    wait_for, write_data_h5)

SLURM_TOOLS = os.path.join(SOURCE_DIR, "tools", "slurm")
PAUSE = "DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE"
# About 10 s of training on 2 ranks. The tests that act on a running job hold
# it in a checkpoint write (DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE) while they
# do, so that it cannot end first, however fast the machine.
CONFIG = """layers = 784,256,256,10
activation = relu
output = softmax
loss = cross-entropy
lr = 0.05
momentum = 0.9
lr-schedule = cosine
batch-size = 10
epochs = 250
"""


def sh(*command, check=True, timeout=120, env=None):
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout, env=env)


@contextlib.contextmanager
def releasing(pause):
    """While in the block, every checkpoint write held at `pause` is let through."""
    done = threading.Event()

    def release():
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                os.remove(pause)
            done.wait(0.01)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class SlurmCluster(TempDirTest):
    """A one-node cluster started for the class, its settings CLUSTER_ENV
    (start-local-slurm.sh's variables), and the scenarios its tests run."""
    CLUSTER_ENV = {}

    @classmethod
    def setUpClass(cls):
        sh("bash", os.path.join(SLURM_TOOLS, "start-local-slurm.sh"), timeout=600,
           env=dict(os.environ, **cls.CLUSTER_ENV))

    @classmethod
    def tearDownClass(cls):
        sh("bash", os.path.join(SLURM_TOOLS, "stop-local-slurm.sh"), check=False)

    def setUp(self):
        super().setUp()
        os.chmod(self.dir, 0o755)
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(400, 50))
        with open(self.path("small.ini"), "w") as f:
            f.write(CONFIG)
        self.env = dict(os.environ, DPTRAIN=os.environ["DPTRAIN"], CONFIG=self.path("small.ini"), DATA=self.data,
                        OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    def submit(self, script, env_extra=None, *sbatch_args):
        env = dict(self.env, **(env_extra or {}))
        result = subprocess.run(["sbatch", "--parsable", f"--output={self.dir}/%x-%j.out", *sbatch_args,
                                 os.path.join(SOURCE_DIR, "jobs", script)],
                                capture_output=True, text=True, env=env, cwd=SOURCE_DIR, check=True)
        return result.stdout.strip().split(";")[0]

    def wait(self, job, timeout=DEADLINE):
        result = sh("bash", os.path.join(SLURM_TOOLS, "wait-job.sh"), job, str(timeout), check=False,
                    timeout=timeout + 30)
        return result.returncode, result.stdout

    def log(self, job):
        text = ""
        for path in glob.glob(self.path(f"*-{job}.out")):
            with open(path) as f:
                text += f.read()
        return text

    def train_straight(self):
        """The job's training run on 2 ranks, never stopped: its last checkpoint."""
        straight = run(["train", "--config", self.path("small.ini"), "--data", self.data,
                        "--run-dir", self.path("straight"), "-q"], ranks=2, timeout=600)
        self.assertEqual(straight.code, 0, straight)
        return self.path("straight/checkpoints/latest.h5")

    def hold_in_second_checkpoint(self, pause):
        """Waits until the job's rank 0 is held writing epoch 2's checkpoint
        (epoch 1's is complete); returns that rank's process id."""
        wait_for(lambda: os.path.exists(pause), DEADLINE, "the writer to pause in epoch 1's checkpoint")
        os.remove(pause)
        wait_for(lambda: os.path.exists(pause), DEADLINE, "the writer to pause in epoch 2's checkpoint")
        with open(pause) as f:
            return int(f.read())

    def in_the_jobs_cgroup(self, job, pid):
        """Whether process `pid` is tracked in job `job`'s cgroup (proctrack/cgroup)."""
        with open(f"/proc/{pid}/cgroup") as f:
            return f"/job_{job}/" in f.read()

    def scancel_then_resubmit(self, tracked_in_cgroup, script="train.sbatch", run_dir="run", env=None,
                              sbatch_args=()):
        # scancel and preemption send SIGTERM to every process of the job,
        # the ranks included, and SIGKILL KillWait seconds later. The ranks
        # stop at the next step with a checkpoint; the job ends CANCELLED,
        # its progress kept. (How long mpirun lets them write it,
        # STOP_GRACE_SECONDS, is measured by tools/mpirun-sigterm-grace.sh,
        # not here: a test waits for events, never for time.)
        straight = self.train_straight()
        pause = self.path("paused")
        env = env or {"RUN_DIR": self.path(run_dir)}
        job = self.submit(script, dict(env, **{PAUSE: pause}), *sbatch_args)
        writer = self.hold_in_second_checkpoint(pause)
        self.assertEqual(self.in_the_jobs_cgroup(job, writer), tracked_in_cgroup)
        sh("scancel", job)
        # Slurm signals the ranks asynchronously: the writer, held in the
        # pause, is signalled directly too, so that the stop is certain at
        # the first step after epoch 2 whenever Slurm's signal lands.
        os.kill(writer, signal.SIGTERM)
        with releasing(pause):
            code, state = self.wait(job, DEADLINE)
        self.assertIn("CANCELLED", state, self.log(job))
        checkpoints = self.path(run_dir, "checkpoints")
        steps = glob.glob(os.path.join(checkpoints, "step-*.h5"))
        self.assertEqual(len(steps), 1, state + self.log(job))
        self.assertEqual(os.readlink(os.path.join(checkpoints, "latest.h5")), os.path.basename(steps[0]))
        # A run that started afresh instead of resuming would end with the
        # same parameters, but would have rewritten epoch 1's checkpoint.
        first_epoch = os.stat(os.path.join(checkpoints, "epoch-0001.h5")).st_ino
        again = self.submit(script, env, *sbatch_args)
        code, state = self.wait(again)
        self.assertEqual(code, 0, state + self.log(again))
        self.assertEqual(os.stat(os.path.join(checkpoints, "epoch-0001.h5")).st_ino, first_epoch, "resumed")
        self.assertTrue(same_params(straight, os.path.join(checkpoints, "latest.h5")))

    def kill_a_rank_then_resubmit(self, tracked_in_cgroup):
        pause = self.path("paused")
        job = self.submit("train.sbatch", {"RUN_DIR": self.path("run"), PAUSE: pause})
        self.hold_in_second_checkpoint(pause)
        # This job's ranks (their command lines start with the binary), not mpirun's,
        # told apart by their MPI rank: process ids say nothing about it.
        pids = sh("pgrep", "-f", "^[^ ]*/dptrain train .*--run-dir " + self.path("run")).stdout.split()
        ranks = ranks_among(pids)
        self.assertEqual(sorted(ranks), [0, 1], pids)
        self.assertEqual(self.in_the_jobs_cgroup(job, ranks[1]), tracked_in_cgroup)
        os.kill(ranks[1], signal.SIGKILL)
        # The job must end by itself rather than hang; how fast is not asserted.
        with releasing(pause):
            code, state = self.wait(job, DEADLINE)
        self.assertNotEqual(code, 0, state)
        self.assertIn("signal 9", self.log(job))
        again = self.submit("train.sbatch", {"RUN_DIR": self.path("run"), "EXTRA": "--epochs 260"})
        code, state = self.wait(again)
        self.assertEqual(code, 0, state + self.log(again))
        self.assertIn("resuming after epoch", self.log(again))


@unittest.skipUnless(os.geteuid() == 0, "starting a Slurm cluster needs root")
class SlurmTest(SlurmCluster):
    """The test cluster's default: processes tracked through /proc, as
    Slurm's own default (proctrack/linuxproc) does."""

    def test_a_training_job_runs_to_completion(self):
        job = self.submit("train.sbatch", {"RUN_DIR": self.path("run"), "EXTRA": "--epochs 3"})
        code, state = self.wait(job)
        self.assertEqual(code, 0, state + self.log(job))
        self.assertIn("epoch   3/3", self.log(job))
        # mpirun's output goes to a file: plain progress lines, no live line.
        self.assertIn("  epoch   1/3", self.log(job))
        self.assertNotIn("\r", self.log(job))
        self.assertNotIn("\x1b", self.log(job))
        self.assertEqual(os.readlink(self.path("run/checkpoints/latest.h5")), "epoch-0003.h5")

    def test_a_warned_job_checkpoints_requeues_itself_and_ends_as_if_never_stopped(self):
        straight = self.train_straight()
        pause = self.path("paused")
        job = self.submit("train.sbatch", {"RUN_DIR": self.path("run"), PAUSE: pause})
        writer = self.hold_in_second_checkpoint(pause)
        # What --signal=B:USR1@120 delivers before a time limit, sent now.
        sh("scancel", "--signal=USR1", "--batch", job)
        wait_for(lambda: "signal received" in self.log(job), DEADLINE, "the batch script to forward the signal")
        # mpirun forwards it to the ranks asynchronously: the writer, held in
        # the pause, is signalled directly too, so the stop is certain to be
        # seen at the first step after epoch 2.
        os.kill(writer, signal.SIGUSR1)
        with releasing(pause):
            code, state = self.wait(job, DEADLINE)
        log = self.log(job)
        self.assertEqual(code, 0, state + log)
        self.assertIn("requeueing job", log)
        self.assertIn("(restart 1)", log)
        self.assertTrue(glob.glob(self.path("run/checkpoints/step-*.h5")), "a mid-epoch checkpoint")
        self.assertTrue(same_params(straight, self.path("run/checkpoints/latest.h5")))

    def test_a_sweep_gives_one_table(self):
        job = self.submit("sweep.sbatch", {"SWEEP_DIR": self.path("sweep"), "LRS": "0.05 0.1", "WIDTHS": "16 32",
                                           "EXTRA": "--epochs 2"})
        code, state = self.wait(job)
        self.assertEqual(code, 0, state)
        self.assertEqual(state.count("COMPLETED"), 4, state)
        csv_path = self.path("table.csv")
        table = sh(sys.executable, os.path.join(SOURCE_DIR, "tools", "gather-runs.py"), self.path("sweep"),
                   "--csv", csv_path)
        lines = table.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1 + 4, table.stdout)
        for name in ("lr0.05-width16", "lr0.05-width32", "lr0.1-width16", "lr0.1-width32"):
            self.assertIn(name, table.stdout)
        with open(csv_path) as f:
            self.assertEqual(len(f.read().strip().splitlines()), 1 + 4)

    def test_scancel_checkpoints_at_the_next_step_and_a_resubmitted_job_ends_as_if_never_stopped(self):
        self.scancel_then_resubmit(tracked_in_cgroup=False)

    def test_a_killed_rank_ends_the_job_and_it_resumes(self):
        self.kill_a_rank_then_resubmit(tracked_in_cgroup=False)


@unittest.skipUnless(os.geteuid() == 0, "starting a Slurm cluster needs root")
@unittest.skipUnless(os.path.isdir("/sys/fs/cgroup/freezer"), "no cgroup v1 freezer hierarchy for proctrack/cgroup")
class SlurmCgroupTest(SlurmCluster):
    """What most production clusters run: every job step in its own cgroup,
    confined to its cores (proctrack/cgroup, task/cgroup + task/affinity).
    Slurm then signals and kills the job through its cgroup: the stops that
    depend on how the ranks are signalled run here again."""
    CLUSTER_ENV = {"LOCAL_SLURM_CGROUP": "1"}

    def test_scancel_checkpoints_at_the_next_step_and_a_resubmitted_job_ends_as_if_never_stopped(self):
        self.scancel_then_resubmit(tracked_in_cgroup=True)

    def test_a_killed_rank_ends_the_job_and_it_resumes(self):
        self.kill_a_rank_then_resubmit(tracked_in_cgroup=True)

    def test_scancel_of_a_sweep_task_checkpoints_and_the_resubmitted_task_ends_as_if_never_stopped(self):
        # One task whose grid point is the straight run's own (small.ini: lr
        # 0.05, 256 wide).
        self.scancel_then_resubmit(tracked_in_cgroup=True, script="sweep.sbatch", run_dir="sweep/lr0.05-width256",
                                   env={"SWEEP_DIR": self.path("sweep"), "LRS": "0.05", "WIDTHS": "256"},
                                   sbatch_args=("--array=0",))


if __name__ == "__main__":
    unittest.main()
