"""Deformable attention against a plain float64 reference of what the official CUDA op computes."""

from __future__ import annotations

import math

import pytest
import torch

from tbx_train.model.deformable_attention import (
    MSDeformAttn,
    multi_scale_deformable_attention,
    sample_by_embedding_bag,
    sample_by_grid_sample,
)

CORES = [sample_by_grid_sample, sample_by_embedding_bag]


def reference_attention(value, spatial_shapes, locations, weights):
    """Loop over every query, head, level and point; bilinear read with zeros outside the map,
    pixel centres at (i + 0.5) / size. value [N, S, M, D] -> [N, Lq, M*D]."""
    n, _, m, d = value.shape
    lq, levels, points = locations.shape[1], locations.shape[3], locations.shape[4]
    starts = [0]
    for h, w in spatial_shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, lq, m, d, dtype=torch.float64)
    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for lvl in range(levels):
                    h, w = spatial_shapes[lvl]
                    for p in range(points):
                        x = locations[b, q, head, lvl, p, 0].item() * w - 0.5
                        y = locations[b, q, head, lvl, p, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        for cx, cy in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                            if 0 <= cx < w and 0 <= cy < h:
                                bilinear = (1 - abs(x - cx)) * (1 - abs(y - cy))
                                pixel = value[b, starts[lvl] + cy * w + cx, head].double()
                                a = weights[b, q, head, lvl, p].item()
                                out[b, q, head] += a * bilinear * pixel
    return out.view(n, lq, m * d)


def random_case(seed: int, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    n, lq, m, d, points = 2, 3, 2, 3, 2
    shapes = [(4, 5), (2, 3), (1, 2)][: 1 + seed % 3]
    size = sum(h * w for h, w in shapes)
    value = torch.randn(n, size, m, d, generator=generator, dtype=dtype)
    # Locations reach well outside [0, 1] to exercise the zero padding on every side.
    locations = torch.rand(n, lq, m, len(shapes), points, 2, generator=generator, dtype=dtype)
    locations = locations * 1.6 - 0.3
    weights = torch.rand(n, lq, m, len(shapes), points, generator=generator, dtype=dtype)
    return value, shapes, locations, weights


@pytest.mark.parametrize("core", CORES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", range(4))
def test_core_matches_reference(core, seed):
    value, shapes, locations, weights = random_case(seed)
    expected = reference_attention(value, shapes, locations, weights)
    torch.testing.assert_close(core(value, shapes, locations, weights), expected)


@pytest.mark.parametrize("core", CORES, ids=lambda f: f.__name__)
def test_core_float32_matches_reference(core):
    value, shapes, locations, weights = random_case(5, dtype=torch.float32)
    expected = reference_attention(value, shapes, locations, weights).float()
    torch.testing.assert_close(core(value, shapes, locations, weights), expected)


@pytest.mark.parametrize("core", CORES, ids=lambda f: f.__name__)
def test_core_gradients_pass_gradcheck(core):
    value, shapes, locations, weights = random_case(1)
    inputs = tuple(t.requires_grad_() for t in (value, locations, weights))
    assert torch.autograd.gradcheck(
        lambda v, loc, w: core(v, shapes, loc, w), inputs, eps=1e-6, atol=1e-5
    )


def _module_reference(module: MSDeformAttn, query, reference_points, value_input, shapes, mask):
    """The module's maths written out: projections, softmax over levels x points, locations."""
    n, lq, _ = query.shape
    m, levels, points = module.n_heads, module.n_levels, module.n_points
    value = module.value_proj(value_input).masked_fill(mask[..., None], 0.0)
    value = value.view(n, -1, m, value.shape[-1] // m)
    offsets = module.sampling_offsets(query).view(n, lq, m, levels, points, 2)
    logits = module.attention_weights(query).view(n, lq, m, levels * points)
    weights = torch.softmax(logits, -1).view(n, lq, m, levels, points)
    ref = reference_points[:, :, None, :, None, :]
    if reference_points.shape[-1] == 2:
        size = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype)[:, None, :]
        locations = ref + offsets / size
    else:
        locations = ref[..., :2] + offsets / points * ref[..., 2:] * 0.5
    sampled = reference_attention(value, shapes, locations, weights)
    return module.output_proj(sampled)


@pytest.mark.parametrize("ref_dim", [2, 4])
def test_module_matches_reference_and_ignores_padding(ref_dim):
    torch.manual_seed(0)
    shapes = [(4, 4), (2, 2)]
    module = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=3).double()
    with torch.no_grad():  # non-trivial offsets and weights (the init zeroes the weights)
        module.sampling_offsets.weight.normal_(std=0.5)
        module.attention_weights.weight.normal_()
    query = torch.randn(2, 5, 8, dtype=torch.float64)
    value_input = torch.randn(2, 20, 8, dtype=torch.float64)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[1, [3, 7, 11, 15, 17, 19]] = True  # last column of each level of image 1 is padding
    reference_points = torch.rand(2, 5, 2, ref_dim, dtype=torch.float64)
    out = module(query, reference_points, value_input, shapes, mask)
    expected = _module_reference(module, query, reference_points, value_input, shapes, mask)
    torch.testing.assert_close(out, expected)
    changed = value_input.clone()
    changed[mask] = 1e3  # padded tokens must not influence anything
    torch.testing.assert_close(module(query, reference_points, changed, shapes, mask), out)


def test_initial_offsets_point_along_head_directions():
    module = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=2)
    bias = module.sampling_offsets.bias.view(4, 2, 2, 2)  # heads, levels, points, (x, y)
    # Head 0 looks right, head 1 down, at distances 1 and 2 (points), the same on every level.
    torch.testing.assert_close(bias[0, 1], torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    torch.testing.assert_close(bias[1, 0, 1], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    assert module.attention_weights.weight.abs().sum() == 0


def test_cores_agree_on_gradients_at_a_realistic_size():
    # The embedding_bag core has its own backward; grid_sample's is torch's native one.
    generator = torch.Generator().manual_seed(3)
    shapes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    size = sum(h * w for h, w in shapes)
    value = torch.randn(2, size, 8, 4, generator=generator)
    centre = torch.rand(2, 50, 1, 4, 1, 2, generator=generator)
    locations = centre + 0.1 * torch.randn(2, 50, 8, 4, 4, 2, generator=generator)
    weights = torch.rand(2, 50, 8, 4, 4, generator=generator)
    grad_out = torch.randn(2, 50, 32, generator=generator)
    grads = []
    for core in CORES:
        inputs = [t.clone().requires_grad_() for t in (value, locations, weights)]
        core(inputs[0], shapes, inputs[1], inputs[2]).backward(grad_out)
        grads.append([t.grad for t in inputs])
    for by_grid_sample, by_embedding_bag in zip(*grads, strict=True):
        torch.testing.assert_close(by_embedding_bag, by_grid_sample, atol=1e-4, rtol=1e-4)


def _graph_names(tensor: torch.Tensor) -> set[str]:
    names, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


@pytest.mark.parametrize(("head_dim", "core"), [(16, "GridSampler"), (32, "_WeightedRowSum")])
def test_cpu_core_is_chosen_by_head_width(head_dim, core):
    """Measured: grid_sample is faster at 16 channels per head, embedding_bag from 32."""
    shapes = [(4, 4), (2, 2)]
    value = torch.randn(1, 20, 2, head_dim, requires_grad=True)
    locations = torch.rand(1, 3, 2, 2, 2, 2)
    weights = torch.rand(1, 3, 2, 2, 2)
    out = multi_scale_deformable_attention(value, shapes, locations, weights)
    assert any(name.startswith(core) for name in _graph_names(out))


@pytest.mark.parametrize("core", CORES, ids=lambda f: f.__name__)
def test_core_backward_in_bfloat16(core):
    """Under autocast the values arrive in bfloat16; the backward must run and stay close to
    the float32 one (sampled_addmm, used by embedding_bag's backward, has no bf16 kernel)."""
    value, shapes, locations, weights = random_case(0, dtype=torch.float32)
    grads = []
    for dtype in (torch.float32, torch.bfloat16):
        inputs = [t.detach().to(dtype).requires_grad_() for t in (value, locations, weights)]
        core(inputs[0], shapes, inputs[1], inputs[2]).float().square().sum().backward()
        grads.append([t.grad.float() for t in inputs])
    (value_32, locations_32, weights_32), (value_16, locations_16, weights_16) = grads
    torch.testing.assert_close(value_16, value_32, atol=0.1, rtol=0.05)
    torch.testing.assert_close(weights_16, weights_32, atol=0.1, rtol=0.05)
    # A bf16 location can land on the other side of a pixel centre (the bilinear gradient
    # jumps there): only finiteness and shape are comparable.
    assert locations_16.isfinite().all() and locations_16.shape == locations_32.shape
