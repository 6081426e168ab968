"""The compiled loops of the pairwise features against plain definitions."""

from __future__ import annotations

import numpy as np

from rldispatch.agents.pairwise.feature_kernels import candidate_kernel


def test_each_booking_keeps_its_k_cheapest_feasible_drivers_ties_by_id_rank() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n_drivers, m, k = int(rng.integers(1, 12)), int(rng.integers(0, 6)), int(rng.integers(1, 5))
        feasible = rng.random((n_drivers, m)) < 0.7
        cost = np.where(feasible, rng.integers(0, 4, size=(n_drivers, m)).astype(float), np.inf)
        id_rank = rng.permutation(n_drivers)
        driver, slot, rank, n_feasible, best, second = candidate_kernel(cost, feasible, id_rank, k)
        expected = []
        for j in range(m):
            kept = sorted(np.flatnonzero(feasible[:, j]), key=lambda d: (cost[d, j], id_rank[d]))
            expected += [(j, int(d), r) for r, d in enumerate(kept[:k])]
        assert list(zip(slot.tolist(), driver.tolist(), rank.tolist(), strict=True)) == expected
        np.testing.assert_array_equal(n_feasible, feasible.sum(axis=0))
        column_sorted = np.sort(cost, axis=0)
        np.testing.assert_array_equal(best, column_sorted[0] if m else np.zeros(0))
        if n_drivers > 1:
            np.testing.assert_array_equal(second, column_sorted[1])
        else:
            assert np.all(np.isinf(second))
