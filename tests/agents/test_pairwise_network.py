"""The pairwise network's pooling: the segment maximum and its gradient, by a reference."""

from __future__ import annotations

import torch

from rldispatch.agents.pairwise.network import SegmentMax, segment_pool


def reference_max(rows: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    width = rows.shape[1]
    return torch.zeros(n_segments, width, dtype=rows.dtype).scatter_reduce(
        0, segment[:, None].expand(-1, width), rows, "amax", include_self=True
    )


def test_segment_max_matches_scatter_reduce_in_value_and_gradient() -> None:
    generator = torch.Generator().manual_seed(0)
    segment = torch.tensor([0, 0, 0, 2, 2, 3])  # segment 1 is empty
    rows = torch.rand(6, 5, generator=generator) + 0.1  # positive: no ties with the zero start
    weights = torch.rand(4, 5, generator=generator)
    ours = rows.clone().requires_grad_()
    theirs = rows.clone().requires_grad_()
    maximum = SegmentMax.apply(ours, segment, 4)
    expected = reference_max(theirs, segment, 4)
    assert torch.equal(maximum, expected)
    assert torch.equal(maximum[1], torch.zeros(5))
    (maximum * weights).sum().backward()
    (expected * weights).sum().backward()
    assert torch.allclose(ours.grad, theirs.grad)
    assert ours.grad.count_nonzero() == 3 * 5  # one row per non-empty segment and column


def test_segment_max_shares_the_gradient_between_tied_rows() -> None:
    rows = torch.tensor([[2.0], [2.0], [1.0]], requires_grad=True)
    SegmentMax.apply(rows, torch.tensor([0, 0, 0]), 1).sum().backward()
    assert rows.grad.flatten().tolist() == [0.5, 0.5, 0.0]


def test_segment_pool_is_mean_and_max_per_segment() -> None:
    rows = torch.tensor([[1.0, 4.0], [3.0, 0.0], [5.0, 6.0]])
    pooled = segment_pool(rows, torch.tensor([0, 0, 2]), 3)
    expected = torch.tensor([[2.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [5.0, 6.0, 5.0, 6.0]])
    assert torch.equal(pooled, expected)
