"""Multi-scale deformable attention (Zhu et al. 2021) in pure PyTorch, with the CUDA op's semantics.

Each query reads, per head, `n_points` bilinearly interpolated values from each of `n_levels`
feature maps and sums them with softmaxed weights. Sampling locations are normalised (x, y) with
(0, 0) the top-left corner of the map and (1, 1) the bottom-right one; pixel centres sit at +0.5;
corners outside the map read zero. That is `grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False)` on the grid 2 * location - 1 (the official pure-PyTorch path).

Two equivalent cores compute it:
- `sample_by_embedding_bag` (CPU default from 32 channels per head): turns the 4 bilinear
  corners of every point into rows of the projected value tensor, read in its natural
  [N, S, heads, head_dim] layout, and lets one `embedding_bag` sum them with the attention x
  bilinear weights; its backward is custom (see `_WeightedRowSum`). No per-level transposed copy
  of the values and no [N*heads, head_dim, queries, points] intermediate as in the grid_sample
  path; 1.4-2x faster forward + backward on CPU than the grid_sample core at 32 channels per head.
- `sample_by_grid_sample` (CUDA, and CPU below 32 channels per head): one grid_sample per level
  over all heads at once.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn
from torch.nn import functional as F

SpatialShapes = list[tuple[int, int]]  # (height, width) per level, in flattening order


def sample_by_grid_sample(
    value: Tensor, spatial_shapes: SpatialShapes, locations: Tensor, weights: Tensor
) -> Tensor:
    """value [N, S, M, D], locations [N, Lq, M, L, P, 2], weights [N, Lq, M, L, P]
    -> [N, Lq, M*D]."""
    n, _, m, d = value.shape
    lq = locations.shape[1]
    grids = (2 * locations - 1).transpose(1, 2).flatten(0, 1)  # [N*M, Lq, L, P, 2]
    weights = weights.transpose(1, 2).flatten(0, 1)  # [N*M, Lq, L, P]
    output = None
    start = 0
    for level, (h, w) in enumerate(spatial_shapes):
        # [N, h*w, M, D] -> [N*M, D, h, w]
        value_l = value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        start += h * w
        sampled = F.grid_sample(
            value_l, grids[:, :, level], mode="bilinear", padding_mode="zeros", align_corners=False
        )  # [N*M, D, Lq, P]
        term = (sampled * weights[:, None, :, level]).sum(-1)  # [N*M, D, Lq]
        output = term if output is None else output + term
    assert output is not None, "spatial_shapes is empty"
    return output.view(n, m * d, lq).transpose(1, 2)


class _WeightedRowSum(torch.autograd.Function):
    """out[b] = sum_k weights[b, k] * table[rows[b, k]] for table [R, D], rows/weights [B, K].

    The forward is `embedding_bag`. The backward replaces torch's generic embedding_bag backward,
    which dominated the training step on CPU: the table gradient is the transposed sum, computed
    as another embedding_bag over the samples sorted by row; the weight gradient (one dot product
    per sample) is a sampled dense-dense matmul.
    """

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(table, rows, weights)
        return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            flat_rows = rows.flatten()
            # Stable: a deterministic summation order (and faster on int32 keys).
            order = torch.argsort(flat_rows, stable=True)
            counts = torch.bincount(flat_rows, minlength=table.shape[0])
            grad_table = F.embedding_bag(
                _floor_divide(order, rows.shape[1]),  # the output row of each sorted sample
                grad_out,
                offsets=torch.cumsum(counts, 0) - counts,
                per_sample_weights=weights.flatten().index_select(0, order),
                mode="sum",
            )
        if ctx.needs_input_grad[2]:
            grad_weights = _sampled_dots(grad_out, table, rows)
        return grad_table, None, grad_weights


def _floor_divide(values: Tensor, divisor: int) -> Tensor:
    """values // divisor for non-negative integers; a shift when divisor is a power of two (the
    usual levels x points x 4 corners), as integer division is slow on CPU."""
    if divisor & (divisor - 1) == 0:
        return values >> (divisor.bit_length() - 1)
    return torch.div(values, divisor, rounding_mode="floor")


def _sampled_dots(grad_out: Tensor, table: Tensor, rows: Tensor) -> Tensor:
    """dots[b, k] = <grad_out[b], table[rows[b, k]]> -> [B, K], as a sampled dense-dense matmul
    (4x faster on CPU than gathering [B, D] rows per column and reducing them)."""
    bags, per_bag = rows.shape
    if grad_out.dtype in (torch.float16, torch.bfloat16):
        # sampled_addmm has no half-precision kernels (CUDA says "not implemented for
        # 'BFloat16'" under autocast): take the dots in float32, return them in the input's.
        return _sampled_dots(grad_out.float(), table.float(), rows).to(grad_out.dtype)
    crow = torch.arange(0, bags * per_bag + 1, per_bag, dtype=rows.dtype, device=rows.device)
    zeros = grad_out.new_zeros(bags * per_bag)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": it is used as documented
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            crow, rows.flatten(), zeros, size=(bags, table.shape[0]), check_invariants=False
        )
        dots = torch.sparse.sampled_addmm(pattern, grad_out, table.t(), beta=0.0)
    return dots.values().view(bags, per_bag)


def _axis_neighbours(coord: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinate [...] (centres on integers) -> the two neighbouring indices [..., 2],
    clamped into the map, and their linear weights [..., 2], zero for a neighbour outside.

    `size` is an integer tensor broadcastable to [..., 1]; indices take its dtype."""
    low = coord.floor()
    frac = coord - low
    index = torch.stack((low, low + 1), -1).to(size.dtype)
    size = size[..., None]
    inside = (index >= 0) & (index < size)
    weight = torch.stack((1 - frac, frac), -1) * inside
    return torch.clamp(index, min=torch.zeros_like(size), max=size - 1), weight


def sample_by_embedding_bag(
    value: Tensor, spatial_shapes: SpatialShapes, locations: Tensor, weights: Tensor
) -> Tensor:
    """Same contract and result as `sample_by_grid_sample`; see the module docstring."""
    n, s, m, d = value.shape
    lq = locations.shape[1]
    # int32 rows halve the index memory and traffic, and make the backward's sort ~2x faster.
    row_dtype = torch.int32 if n * s * m < 2**31 else torch.int64
    shapes = torch.tensor(spatial_shapes, dtype=row_dtype, device=value.device)  # [L, 2] (h, w)
    heights, widths = shapes[:, 0, None], shapes[:, 1, None]  # [L, 1]: broadcast over points
    sizes = heights * widths
    starts = torch.cumsum(sizes, 0) - sizes
    # Neighbours and weights along x and y: [N, Lq, M, L, P, 2].
    xs, wx = _axis_neighbours(locations[..., 0] * widths - 0.5, widths)
    ys, wy = _axis_neighbours(locations[..., 1] * heights - 0.5, heights)
    # Row of value.view(N*S*M, D) holding (image, level start + y * W + x, head).
    batch = torch.arange(n, dtype=row_dtype, device=value.device).view(n, 1, 1, 1, 1)
    head = torch.arange(m, dtype=row_dtype, device=value.device).view(1, 1, m, 1, 1)
    base = (batch * s + starts) * m + head  # [N, 1, M, L, 1]
    row_y = base[..., None] + ys * (widths * m)[..., None]
    rows = row_y[..., :, None] + (xs * m)[..., None, :]  # [N, Lq, M, L, P, 2 (y), 2 (x)]
    bag_weights = (weights[..., None] * wy)[..., :, None] * wx[..., None, :]
    output = _WeightedRowSum.apply(
        value.reshape(n * s * m, d),
        rows.view(n * lq * m, -1),
        bag_weights.reshape(n * lq * m, -1).to(value.dtype),
    )  # [N*Lq*M, D]
    return output.view(n, lq, m * d)


# On CPU the embedding_bag core's cost is mostly per sample (indices, the backward's sort), the
# grid_sample core's grows with the channels per head. Measured forward + backward, 2 threads,
# 4 levels x 4 points x 8 heads (benchmarks/bench_vs_official.py, and per core): 32 channels per
# head (the 256-wide presets) embedding_bag 0.5-0.7x grid_sample's time at 128-512 px; 16 (the
# 128-wide tiny preset) grid_sample 0.73-1.0x embedding_bag's, and the whole tiny step 4-10% faster.
EMBEDDING_BAG_MIN_HEAD_DIM = 32


def multi_scale_deformable_attention(
    value: Tensor, spatial_shapes: SpatialShapes, locations: Tensor, weights: Tensor
) -> Tensor:
    """Dispatch to the faster core for the device and head width; both compute the same
    function. value [N, S, heads, head_dim]."""
    if value.is_cuda or value.shape[-1] < EMBEDDING_BAG_MIN_HEAD_DIM:
        return sample_by_grid_sample(value, spatial_shapes, locations, weights)
    return sample_by_embedding_bag(value, spatial_shapes, locations, weights)


class MSDeformAttn(nn.Module):
    """Deformable attention module; parameter names match the official checkpoints.

    forward(query [N, Lq, C], reference_points [N, Lq, L, 2] (x, y) or [N, Lq, L, 4] (cx, cy, w, h),
    value_input [N, S, C], spatial_shapes, padding_mask bool [N, S] or None (True = padding))
    -> [N, Lq, C]. With boxes, offsets are scaled by half the box size per point count.
    """

    def __init__(self, d_model: int, n_levels: int, n_heads: int, n_points: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Offsets start on a per-head direction grid at distances 1..n_points; weights uniform."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values  # onto the unit square's border
        grid = grid.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid *= torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value_input: Tensor,
        spatial_shapes: SpatialShapes,
        padding_mask: Tensor | None = None,
    ) -> Tensor:
        n, lq, _ = query.shape
        m, lv, p = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(value_input)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(n, value.shape[1], m, -1)
        offsets = self.sampling_offsets(query).view(n, lq, m, lv, p, 2)
        weights = self.attention_weights(query).view(n, lq, m, lv * p).softmax(-1)
        weights = weights.view(n, lq, m, lv, p)
        if reference_points.shape[-1] == 2:
            # Offsets are in pixels of each level: divide by (width, height).
            wh = torch.tensor([[w, h] for h, w in spatial_shapes], device=query.device)
            locations = reference_points[:, :, None, :, None, :] + offsets / wh[:, None, :]
        else:
            centre = reference_points[:, :, None, :, None, :2]
            size = reference_points[:, :, None, :, None, 2:]
            locations = centre + offsets / p * size * 0.5
        output = multi_scale_deformable_attention(value, spatial_shapes, locations, weights)
        return self.output_proj(output)
