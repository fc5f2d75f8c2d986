"""dptrain on an emulated cluster of 3 nodes (tools/cluster/: network and UTS
namespaces on a bridge, a slurmd per node), started and stopped here: mpirun
with a hostfile over TCP between the nodes, an sbatch job of 3 nodes, two
nodes of two ranks against one node of four and one rank (the two-level
reduction), threads following each node's cores, and a node lost mid-run (its link taken down):
the watchdog ends the job, the job script requeues it without that node, and
it resumes and ends with the parameters of a run never interrupted. Needs root."""
import glob
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from common import (DEADLINE, DPTRAIN, SOURCE_DIR, TempDirTest, max_param_difference, run, same_params,  # noqa
                    synthetic_mnist, wait_for, write_data_h5)

CLUSTER_TOOLS = os.path.join(SOURCE_DIR, "tools", "cluster")
NODES = ["dpnode1", "dpnode2", "dpnode3"]
# dpnode1 has 2 cores, the others one each (the machine has 2).
NODE_CPUS = "0-1 1 0"
# No shuffling, a batch every rank count divides: the same batches on 1, 2 and 3 ranks.
CONFIG = """layers = 784,128,10
activation = relu
output = softmax
loss = cross-entropy
lr = 0.05
momentum = 0.9
batch-size = 30
shuffle = false
"""


def sh(*command, check=True, timeout=120, env=None):
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout, env=env)


def cluster_env():
    """The environment after `source tools/cluster/env.sh`."""
    out = sh("bash", "-c", f"source {CLUSTER_TOOLS}/env.sh && env -0").stdout
    return dict(line.split("=", 1) for line in out.split("\0") if "=" in line)


# With exact sums (README: Shards, batch order and exact sums) runs on any number of ranks and
# nodes end with the same bits: the tests that compare with one rank use them.
EXACT = "--exact"


@unittest.skipUnless(os.geteuid() == 0, "network namespaces and Slurm daemons need root")
class MultiNodeTest(TempDirTest):
    @classmethod
    def setUpClass(cls):
        started = time.monotonic()
        env = dict(os.environ, CLUSTER_NODES="3", CLUSTER_NODE_CPUS=NODE_CPUS)
        result = sh("bash", os.path.join(CLUSTER_TOOLS, "start-cluster.sh"), check=False, timeout=600, env=env)
        if result.returncode != 0:
            sh("bash", os.path.join(CLUSTER_TOOLS, "stop-cluster.sh"), check=False)
            raise AssertionError("start-cluster.sh failed:\n" + result.stdout + result.stderr)
        print(f"cluster up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        cls.cluster = cluster_env()

    @classmethod
    def tearDownClass(cls):
        sh("bash", os.path.join(CLUSTER_TOOLS, "stop-cluster.sh"), check=False, timeout=300)

    def setUp(self):
        super().setUp()
        os.chmod(self.dir, 0o755)
        self.data = write_data_h5(self.path("data.h5"), *synthetic_mnist(600, 60))
        with open(self.path("net.ini"), "w") as f:
            f.write(CONFIG)

    def train_args(self, run_dir, *extra):
        return ["train", "--config", self.path("net.ini"), "--data", self.data, "--run-dir", self.path(run_dir),
                *extra]

    def one_rank(self, run_dir, epochs, *extra):
        result = run(self.train_args(run_dir, "--epochs", str(epochs), "-q", *extra))
        self.assertEqual(result.code, 0, result)
        return self.path(run_dir, "checkpoints", "latest.h5")

    def mpirun(self, hosts, args, blas_threads="1"):
        env = dict(os.environ, **self.cluster)
        env.pop("OPENBLAS_NUM_THREADS", None)
        if blas_threads:
            env["OPENBLAS_NUM_THREADS"] = blas_threads
        # One rank per node, not bound to a core: each rank may use its node's cores.
        command = ["mpirun", "-np", str(len(hosts)), "--host", ",".join(hosts), "--bind-to", "none", DPTRAIN, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE, env=env)

    def rank_hosts(self, run_dir):
        with open(self.path(run_dir, "rank-hosts.txt")) as f:
            return f.read().split()

    def test_a_mpirun_on_three_nodes_trains_what_one_rank_trains(self):
        reference = self.one_rank("one", 3, EXACT)
        done = self.mpirun(NODES, self.train_args("three", "--epochs", "3", EXACT))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("3 ranks", done.stdout)
        self.assertEqual(self.rank_hosts("three"), NODES)
        self.assertTrue(same_params(reference, self.path("three/checkpoints/latest.h5")), "bit for bit")

    def test_b_an_sbatch_job_on_three_nodes(self):
        reference = self.one_rank("one", 3, EXACT)
        job = self.submit({"RUN_DIR": self.path("run"), "EXTRA": f"--epochs 3 {EXACT}"}, "--nodes=3",
                          "--ntasks-per-node=1")
        code, state = self.wait(job)
        log = self.log(job)
        self.assertEqual(code, 0, state + log)
        self.assertIn("on dpnode[1-3]: 3 ranks", log)
        self.assertEqual(self.rank_hosts("run"), NODES)
        self.assertIn("epoch   3/3", log)
        self.assertNotIn("\r", log)  # plain progress lines in a Slurm log
        self.assertNotIn("\x1b", log)
        self.assertTrue(same_params(reference, self.path("run/checkpoints/latest.h5")), "bit for bit")

    def test_c_blas_threads_follow_the_cores_of_each_node(self):
        # Rank 0 reports its own thread count: on dpnode1 (2 cores) 2, on dpnode2 (1 core) 1,
        # though the machine has 2 cores and each node runs one rank.
        for hosts, expected in ((NODES, "3 ranks x 2 BLAS threads"),
                                (["dpnode2", "dpnode1", "dpnode3"], "3 ranks x 1 BLAS thread ")):
            done = self.mpirun(hosts, self.train_args("t-" + hosts[0], "--epochs", "1"), blas_threads=None)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.assertIn(expected, done.stdout)

    def test_d_a_lost_node_ends_the_job_which_resumes_without_it_and_ends_as_if_never_interrupted(self):
        # The timeouts are generous for a loaded machine (a live node must not
        # look silent); how fast the job ends is not asserted, only that it does.
        epochs, timeout = 150, 20
        reference = self.one_rank("one", epochs, EXACT)
        job = self.submit({"RUN_DIR": self.path("run"), "MAX_WATCHDOG_REQUEUES": "1", "HOST_PROBE_SECONDS": "30",
                           "EXTRA": f"--epochs {epochs} --watchdog-seconds {timeout} --keep-checkpoints 2 {EXACT}"},
                          "--nodes=3", "--ntasks-per-node=1")
        try:
            wait_for(lambda: os.path.exists(self.path("run/checkpoints/epoch-0003.h5")), DEADLINE, "epoch 3")
            self.assertEqual(self.rank_hosts("run"), NODES)
            sh("ip", "link", "set", "dptrainv3", "down")  # dpnode3's cable pulled
            wait_for(lambda: "the watchdog ended the ranks" in self.log(job), DEADLINE, "the job to end")
            wait_for(lambda: "requeueing job" in self.log(job), DEADLINE, "the job to requeue itself")
            code, state = self.wait(job, DEADLINE)
        finally:
            sh("ip", "link", "set", "dptrainv3", "up", check=False)
        log = self.log(job)
        self.assertEqual(code, 0, state + log)
        self.assertIn("silent hosts: dpnode3\n", log)
        self.assertIn("(restart 1) on dpnode[1-2]: 2 ranks", log)
        self.assertIn("resuming after epoch", log)
        self.assertEqual(self.rank_hosts("run"), NODES[:2])
        # 3 ranks, then 2 after the resume: the same bits as 1 rank all along.
        self.assertTrue(same_params(reference, self.path("run/checkpoints/latest.h5")), "bit for bit")

    def test_e_two_nodes_of_two_ranks_train_what_one_node_of_four_and_one_rank_train(self):
        # The two-level reduction: shared memory inside each node (which also holds the node's one
        # copy of the parameters), MPI between the node leaders. With exact sums: the same bits.
        # The default float sums group the ranks node by node, and the GEMMs see other row
        # counts: the same training to round-off (9e-8 here, with fake nodes of DPTRAIN_FAKE_NODE_RANKS).
        layouts = {"2x2": ["dpnode1", "dpnode1", "dpnode3", "dpnode3"], "1x4": ["dpnode1"] * 4}
        for mode, extra in (("exact", [EXACT]), ("fast", [])):
            reference = self.one_rank(f"one-{mode}", 2, *extra)
            for layout, hosts in layouts.items():
                run_dir = f"{layout}-{mode}"
                done = self.mpirun(hosts, self.train_args(run_dir, "--epochs", "2", "-q", *extra))
                self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                self.assertEqual(self.rank_hosts(run_dir), hosts)
                checkpoint = self.path(run_dir, "checkpoints", "latest.h5")
                if mode == "exact":
                    self.assertTrue(same_params(reference, checkpoint), f"{layout}: bit for bit")
                else:
                    difference = max_param_difference(reference, checkpoint)
                    self.assertLess(difference, 1e-5, f"{layout}: largest parameter difference from 1 rank")

    # Slurm helpers: the cluster's own slurm.conf, logs in the test's folder.
    def submit(self, variables, *sbatch_args):
        env = dict(os.environ, **self.cluster)
        env.update(DPTRAIN=DPTRAIN, CONFIG=self.path("net.ini"), DATA=self.data, OMPI_ALLOW_RUN_AS_ROOT="1",
                   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", **variables)
        for name in ("OMPI_MCA_rmaps_base_oversubscribe", "OMPI_MCA_plm_rsh_agent"):
            env.pop(name, None)  # Slurm places the ranks: one per node
        result = subprocess.run(["sbatch", "--parsable", f"--output={self.dir}/%x-%j.out", *sbatch_args,
                                 os.path.join(SOURCE_DIR, "jobs", "train.sbatch")],
                                capture_output=True, text=True, env=env, cwd=SOURCE_DIR)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip().split(";")[0]

    def wait(self, job, timeout=DEADLINE):
        env = dict(os.environ, **self.cluster)
        result = sh("bash", os.path.join(SOURCE_DIR, "tools", "slurm", "wait-job.sh"), job, str(timeout),
                    check=False, timeout=timeout + 30, env=env)
        return result.returncode, result.stdout

    def log(self, job):
        text = ""
        for path in glob.glob(self.path(f"*-{job}.out")):
            with open(path, errors="replace") as f:
                text += f.read()
        return text


if __name__ == "__main__":
    unittest.main()
