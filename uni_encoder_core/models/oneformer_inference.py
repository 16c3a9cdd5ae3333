"""Inference pass of the OneFormer segmentation head: the same computation as transformers' modules, less the
work that only training needs, and free of host synchronisation so that it can be captured in a CUDA graph.

It runs the head's own transformers modules (weights, layer norms, projections) in their eval-mode order,
with these changes, each exact up to float rounding:

- Deformable attention (pixel decoder) samples the value maps with one weighted gather per query
  (``embedding_bag`` with the bilinear corner weights times the attention weights) instead of ``grid_sample``
  per level followed by a stack and a weighted sum: the same bilinear interpolation with zero padding
  (``align_corners=False``). ONNX export keeps transformers' ``grid_sample`` form.
- The masked-attention masks of the transformer decoder's intermediate layers are computed from the mask
  features resized to each attention level (the resize is linear, so resizing the features and then taking
  the query dot products equals resizing the mask logits); only the last layer predicts full-resolution masks
  and classes. The auxiliary predictions of the earlier layers, which only the training loss reads, are not
  made.
- Attention runs without returning its weights (``need_weights=False``), which lets PyTorch use its fused
  kernel.
- Position embeddings, level shapes and reference points depend only on the feature sizes: built once per
  size, device and dtype and reused (no host-to-device copy per call; transformers builds ``spatial_shapes``
  from a Python list on every call). A fully masked attention row is unmasked with tensor operations (no
  ``torch.where`` index list).

Source: the reference OneFormer (Jain et al., CVPR 2023) as implemented by transformers 5.x
(``modeling_oneformer``), which ``test/test_segmentation.py`` compares this pass against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.models.oneformer.modeling_oneformer import (
    OneFormerPixelDecoder,
    OneFormerTransformerModule,
    multi_scale_deformable_attention,
)


class Constants:
    """Tensors that depend only on feature sizes (position embeddings, level geometry), built on first use.

    Entries are kept for one device and dtype at a time; asking for another clears them (the model moved). While
    tracing (ONNX export) nothing is cached: the entries must be traced from the sizes to follow a dynamic width.
    """

    def __init__(self):
        self.store: dict = {}
        self.where: tuple | None = None

    def get(self, key: tuple, device: torch.device, dtype: torch.dtype, build) -> object:
        """The entry ``key`` for ``device``/``dtype``, made by ``build()`` when missing."""
        if torch.jit.is_tracing():
            return build()
        if self.where != (device, dtype):
            self.store, self.where = {}, (device, dtype)
        if key not in self.store:
            self.store[key] = build()
        return self.store[key]


def _flat_positions(embedder: nn.Module, shape: torch.Size, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Sine position embedding of a ``BxCxHxW`` map, flattened to ``HW x B x C``."""
    return embedder(shape, device, dtype).flatten(2).permute(2, 0, 1)


def _level_geometry(shapes: list[tuple[int, int]], batch: int, device: torch.device, dtype: torch.dtype) -> tuple:
    """(sizes L x 2 as (W, H) in ``dtype``, padded-level geometry for :func:`sample_values`, reference points
    B x S x L x 2)."""
    sizes = torch.tensor([[w, h] for h, w in shapes], device=device, dtype=torch.float32)
    padded = [(h + 2) * (w + 2) for h, w in shapes]
    starts = torch.tensor([0] + padded[:-1], device=device, dtype=torch.float32).cumsum(0)
    points = []
    for h, w in shapes:  # pixel centres, normalised to [0, 1] (no padding: every valid ratio is 1)
        y, x = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=dtype, device=device) / h,
                              torch.linspace(0.5, w - 0.5, w, dtype=dtype, device=device) / w, indexing="ij")
        points.append(torch.stack((x.reshape(-1), y.reshape(-1)), -1))
    reference = torch.cat(points)[None, :, None, :].expand(batch, -1, len(shapes), 2)
    return sizes.to(dtype), (sizes, starts, sum(padded)), reference


def sample_values(value: Tensor, shapes: list[tuple[int, int]], padded: tuple, locations: Tensor,
                  weights: Tensor) -> Tensor:
    """Multi-scale deformable sampling as one weighted gather.

    ``value`` B x S x heads x d (the levels' maps flattened and concatenated), ``locations`` B x N x heads x L x P x 2
    (x, y in [0, 1] of each level), ``weights`` B x N x heads x L x P -> B x N x (heads*d):
    ``sum_{l,p} w * bilinear(value_l, location)`` with zero padding outside a map (``grid_sample`` with
    ``align_corners=False``). Each map gets a border of zeros one pixel wide; corner coordinates are clamped
    into the bordered map, so a corner outside the map reads a zero, as ``grid_sample``'s zero padding does.
    """
    sizes, starts, total = padded
    B, S, heads, d = value.shape
    N, L = locations.shape[1], locations.shape[3]
    maps = value.permute(0, 2, 3, 1).split([h * w for h, w in shapes], dim=-1)  # B x heads x d x hw per level
    table = torch.cat([F.pad(m.reshape(B, heads, d, h, w), (1, 1, 1, 1)).flatten(3)
                       for m, (h, w) in zip(maps, shapes)], dim=-1)  # B x heads x d x total
    table = table.permute(0, 1, 3, 2).reshape(B * heads * total, d)
    pixel = locations.float() * sizes[:, None, :] + 0.5  # bordered-map coordinates, B x N x heads x L x P x 2
    corner = pixel.floor()
    frac = pixel - corner
    limit = (sizes + 1)[:, None, :]  # L x 1 x 2: the last border column / row
    near, far = corner.clamp(min=0).minimum(limit), (corner + 1).clamp(min=0).minimum(limit)
    row = (sizes[:, 0] + 2)[:, None]  # L x 1: bordered row length
    base = starts[:, None] + (torch.arange(B, device=value.device)[:, None, None, None, None] * heads
                              + torch.arange(heads, device=value.device)[:, None, None]) * total
    index, weight = [], []
    for y, wy in ((near[..., 1], 1 - frac[..., 1]), (far[..., 1], frac[..., 1])):
        for x, wx in ((near[..., 0], 1 - frac[..., 0]), (far[..., 0], frac[..., 0])):
            index.append(base + y * row + x)
            weight.append(wx * wy * weights)
    index = torch.stack(index, -1).reshape(B * N * heads, L * locations.shape[4] * 4).long()
    weight = torch.stack(weight, -1).reshape(index.shape).to(value.dtype)
    return F.embedding_bag(index, table, per_sample_weights=weight, mode="sum").view(B, N, heads * d)


def _deformable_attention(attn: nn.Module, hidden: Tensor, pos: Tensor, geometry: tuple,
                          shapes: list[tuple[int, int]]) -> Tensor:
    """One pixel-decoder self-attention (``OneFormerPixelDecoderEncoderMultiscaleDeformableAttention``), no mask."""
    sizes, padded, reference = geometry
    B, S, _ = hidden.shape
    heads, levels, points = attn.n_heads, attn.n_levels, attn.n_points
    query = hidden + pos
    value = attn.value_proj(hidden).view(B, S, heads, attn.d_model // heads)
    offsets = attn.sampling_offsets(query).view(B, S, heads, levels, points, 2)
    weights = attn.attention_weights(query).view(B, S, heads, levels * points).softmax(-1)
    weights = weights.view(B, S, heads, levels, points)
    locations = reference[:, :, None, :, None, :] + offsets / sizes[None, None, None, :, None, :]
    if torch.onnx.is_in_onnx_export():
        out = multi_scale_deformable_attention(value, shapes, locations, weights)
    else:
        out = sample_values(value, shapes, padded, locations, weights)
    return attn.output_proj(out)


def pixel_decode(decoder: OneFormerPixelDecoder, features: list[Tensor], constants: Constants) -> tuple:
    """``OneFormerPixelDecoder`` in eval mode: 4 maps (strides 4..32) -> (3 multi-scale maps coarsest first,
    mask features at stride 4)."""
    levels = decoder.num_feature_levels
    coarse = features[::-1][:levels]
    sources = [decoder.input_projections[i](f) for i, f in enumerate(coarse)]
    shapes = [tuple(s.shape[-2:]) for s in sources]
    device, dtype, batch = sources[0].device, sources[0].dtype, sources[0].shape[0]

    def build_positions() -> Tensor:
        pos = [decoder.position_embedding(s.shape, device, dtype).flatten(2).transpose(1, 2)
               + decoder.level_embed[i].view(1, 1, -1) for i, s in enumerate(sources)]
        return torch.cat(pos, 1)

    key = ("pixel", tuple(s.shape for s in sources))
    positions = constants.get(key + ("pos",), device, dtype, build_positions)
    geometry = constants.get(key + ("geometry",), device, dtype,
                             lambda: _level_geometry(shapes, batch, device, dtype))
    hidden = torch.cat([s.flatten(2).transpose(1, 2) for s in sources], 1)
    for layer in decoder.encoder.layers:
        hidden = layer.self_attn_layer_norm(hidden + _deformable_attention(layer.self_attn, hidden, positions,
                                                                           geometry, shapes))
        hidden = layer.final_layer_norm(hidden + layer.fc2(layer.activation_fn(layer.fc1(hidden))))
    maps = [z.transpose(1, 2).reshape(batch, -1, h, w)
            for z, (h, w) in zip(hidden.split([h * w for h, w in shapes], dim=1), shapes)]
    for lateral, output, f in zip(decoder.lateral_convs, decoder.output_convs,
                                  features[: decoder.num_fpn_levels][::-1]):
        fpn = lateral(f)
        maps.append(output(fpn + F.interpolate(maps[-1], size=fpn.shape[-2:], mode="bilinear", align_corners=False)))
    return maps[:levels], decoder.mask_projection(maps[-1])


def _attention(mha: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor,
               mask: Tensor | None = None) -> Tensor:
    return mha(query, key, value, attn_mask=mask, need_weights=False)[0]


def _query_transformer(module: nn.Module, queries: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor) -> Tensor:
    """transformers' ``OneFormerTransformerDecoderQueryTransformer`` decoder stack (post-norm), eval mode."""
    decoder = module.decoder
    for layer in decoder.layers:
        q = queries + query_pos
        queries = layer.norm1(queries + _attention(layer.self_attn, q, q, queries))
        queries = layer.norm2(queries + _attention(layer.multihead_attn, queries + query_pos, memory + pos, memory))
        queries = layer.norm3(queries + layer.linear2(layer.activation(layer.linear1(queries))))
    return decoder.norm(queries)


def _attention_mask(decoder: nn.Module, queries: Tensor, features: Tensor) -> Tensor:
    """Masked-attention mask from ``features`` already at the attention level's size: (B*heads) x Q x hw, True =
    blocked (mask probability < 0.5); a row that would block everything is opened."""
    embed = decoder.mask_embed(decoder.decoder_norm(queries).transpose(0, 1))
    blocked = torch.einsum("bqc,bchw->bqhw", embed, features).sigmoid().flatten(2) < 0.5
    blocked = blocked & ~blocked.all(-1, keepdim=True)
    return blocked.repeat_interleave(decoder.num_heads, dim=0)


def transformer_decode(module: OneFormerTransformerModule, multi_scale: list[Tensor], mask_features: Tensor,
                       task_tokens: Tensor, constants: Constants) -> tuple[Tensor, Tensor, Tensor]:
    """``OneFormerTransformerModule`` in eval mode -> (class logits BxQx(C+1), mask logits BxQxHxW at the mask
    features' size, contrastive queries BxQxD) of the last decoder layer.

    ``multi_scale``: the pixel decoder's 3 maps (coarsest first), ``mask_features`` BxDxHxW, ``task_tokens`` BxD.
    """
    decoder = module.decoder
    device, dtype, batch = mask_features.device, mask_features.dtype, mask_features.shape[0]
    levels = module.num_feature_levels
    sizes = [tuple(f.shape[-2:]) for f in multi_scale]
    key = ("transformer", tuple(f.shape for f in multi_scale), mask_features.shape)
    positions = constants.get(key + ("pos",), device, dtype, lambda: [
        _flat_positions(module.position_embedder, f.shape, device, dtype) for f in multi_scale])
    query_features = constants.get(key + ("query",), device, dtype, lambda: _flat_positions(
        module.position_embedder, mask_features.shape, device, dtype))
    memory = [(module.input_projections[i](f).flatten(2) + module.level_embed.weight[i][None, :, None]).permute(2, 0, 1)
              for i, f in enumerate(multi_scale)]
    query_embeddings = module.queries_embedder.weight[:, None].expand(-1, batch, -1)
    task = task_tokens[None]
    if decoder.use_task_norm:
        task = decoder.decoder_norm(task)
    object_queries = _query_transformer(
        decoder.query_transformer, task.expand(query_embeddings.shape[0] - 1, -1, -1), query_features,
        decoder.query_input_projection(mask_features).flatten(2).permute(2, 0, 1), query_embeddings[:-1])
    queries = torch.cat([object_queries, task], dim=0)
    # intermediate masks only feed the next layer's masked attention: the mask features at each attention size
    resized = [F.interpolate(mask_features, size=s, mode="bilinear", align_corners=False) for s in sizes]
    output = queries
    mask = _attention_mask(decoder, output, resized[0])
    for index, layer in enumerate(decoder.layers):
        level = index % levels
        cross = layer.cross_attn
        output = cross.norm(output + _attention(cross.multihead_attn, output + query_embeddings,
                                                memory[level] + positions[level], memory[level], mask))
        output = layer.self_attn(output, query_pos=query_embeddings)[0]
        output = layer.ffn(output)
        if index + 1 < len(decoder.layers):
            mask = _attention_mask(decoder, output, resized[(index + 1) % levels])
    normed = decoder.decoder_norm(output).transpose(0, 1)
    mask_logits = torch.einsum("bqc,bchw->bqhw", decoder.mask_embed(normed), mask_features)
    return decoder.class_embed(normed), mask_logits, queries.transpose(0, 1)
