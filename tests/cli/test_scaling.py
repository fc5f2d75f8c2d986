"""tools/scaling.py's model: known allreduce costs for given parameters, and
the fit recovering the parameters that made a set of timings."""
import importlib.util
import os
import sys
import unittest

from common import SOURCE_DIR

sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))  # scaling.py uses bench.py's runners

spec = importlib.util.spec_from_file_location("scaling", os.path.join(SOURCE_DIR, "tools", "scaling.py"))
scaling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scaling)


class AllreduceCostTest(unittest.TestCase):
    def test_ring_costs_2_p_minus_1_latencies_and_2_p_minus_1_over_p_of_the_data(self):
        # Patarasuk and Yuan's bandwidth-optimal ring: reduce-scatter then allgather,
        # each p-1 steps of n/p bytes.
        alpha, beta = 5e-6, 1e-9  # 5 us per message, 1 GB/s
        self.assertAlmostEqual(scaling.allreduce_seconds("ring", 8, 8e6, alpha, beta), 14 * 5e-6 + 14 / 8 * 8e-3)
        self.assertAlmostEqual(scaling.allreduce_seconds("ring", 2, 1e6, alpha, beta), 2 * 5e-6 + 1e-3)
        # 1,024 ranks move at most twice the data: the ring's point
        self.assertAlmostEqual(scaling.allreduce_seconds("ring", 1024, 1e6, 0.0, beta), 2 * 1023 / 1024 * 1e-3)
        self.assertEqual(scaling.allreduce_seconds("ring", 1, 1e6, alpha, beta), 0.0)

    def test_recursive_doubling_costs_log_p_rounds_of_the_whole_buffer(self):
        alpha, beta = 5e-6, 1e-9
        self.assertAlmostEqual(scaling.allreduce_seconds("recursive_doubling", 8, 8e6, alpha, beta),
                               3 * (5e-6 + 8e-3))
        # 6 ranks: two fold into partners first and get the result after: 2 + 2 rounds
        self.assertEqual(scaling.doubling_rounds(6), 4)
        self.assertEqual(scaling.doubling_rounds(1024), 10)
        self.assertEqual(scaling.doubling_rounds(1), 0)

    def test_small_messages_favour_recursive_doubling_and_large_ones_the_ring(self):
        fits = {"tcp": {"ring": (20e-6, 1e-9), "recursive_doubling": (20e-6, 1e-9)}}
        self.assertEqual(scaling.best_allreduce(fits, "tcp", 64, 64)[1], "recursive_doubling")
        self.assertEqual(scaling.best_allreduce(fits, "tcp", 64, 64e6)[1], "ring")

    def test_the_fit_recovers_the_parameters_that_made_the_timings(self):
        sizes = [4 * 4 ** k for k in range(12)]
        for algorithm in scaling.ALGORITHMS:
            made = [scaling.allreduce_seconds(algorithm, 2, n, 3e-6, 0.2e-9) for n in sizes]
            alpha, beta = scaling.fit(algorithm, 2, sizes, made)
            self.assertAlmostEqual(alpha / 3e-6, 1.0, places=6)
            self.assertAlmostEqual(beta / 0.2e-9, 1.0, places=6)

    def test_a_step_adds_compute_update_and_allreduce_and_shares_oversubscribed_cores(self):
        fits = {"shm": {"ring": (1e-6, 1e-10), "recursive_doubling": (1e-6, 1e-10)}}
        compute = lambda rows: rows * 1e-5
        one_per_core = scaling.step_seconds(2, 64, 1e6, compute, 1e-4, fits, 2, 2, "shm")
        two_per_core = scaling.step_seconds(4, 32, 1e6, compute, 1e-4, fits, 2, 4, "shm")
        self.assertAlmostEqual(one_per_core[0], 64e-5 + 1e-4 + one_per_core[1])
        self.assertAlmostEqual(two_per_core[0], 2 * (32e-5 + 1e-4) + two_per_core[1])


if __name__ == "__main__":
    unittest.main()
