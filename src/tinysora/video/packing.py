"""Chapter 16: many clips of different sizes and lengths in one sequence (NaViT's "Patch n' Pack").

Sora trains on clips at their native size and length. Two ways to batch them:

* **buckets** (Open-Sora): group clips of the same (frames, height, width), one shape per batch
  (:func:`tinysora.video.packing.bucket_by_shape`); no waste, but as many batch shapes as buckets;
* **packing** (NaViT): concatenate the clips' token sequences into one and forbid attention
  between clips with a block-diagonal mask (:func:`tinysora.video.packing.block_diagonal_mask`).
  Factorised attention is a mask too: spatial attention may only look at tokens of the same clip *and frame*, temporal
  attention at the same clip *and position* (:func:`tinysora.video.packing.packed_masks`).

Masks follow :mod:`tinysora.transformer`: ``True`` where a query may attend to a key.

* :func:`tinysora.video.packing.pack` / :func:`tinysora.video.packing.unpack` -- a list of (N_i, D) token
  tensors <-> (1, sum N_i, D);
* :func:`tinysora.video.packing.token_coordinates` -- per token of a packed sequence: its clip, frame,
  row and column;
* :func:`tinysora.video.packing.greedy_pack` -- first-fit-decreasing assignment of clips to sequences of a
  fixed capacity;
* :func:`tinysora.video.packing.batching_waste` -- the share of computed tokens (and attention scores)
  that are padding or cross-clip, for padding, buckets and packing.
"""

from __future__ import annotations

from collections import defaultdict

import torch

__all__ = ["batching_waste", "block_diagonal_mask", "bucket_by_shape", "greedy_pack", "pack",
           "packed_masks", "token_coordinates", "unpack"]


def _check_grids(grids) -> list[tuple[int, int, int]]:
    grids = [tuple(g) for g in grids]
    if not grids:
        raise ValueError("need at least one clip grid")
    for g in grids:
        if len(g) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in g):
            raise ValueError(f"each grid must be (frames, rows, columns) of positive ints, got {g!r}")
    return grids


def _check_lengths(lengths) -> list[int]:
    lengths = [int(n) if isinstance(n, int) and not isinstance(n, bool) else n for n in lengths]
    if not lengths or not all(isinstance(n, int) and n >= 1 for n in lengths):
        raise ValueError(f"lengths must be a non-empty list of positive ints, got {lengths!r}")
    return lengths


def pack(tokens: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """[(N_i, D), ...] -> (1, sum N_i, D) and the lengths [N_i, ...]."""
    if not tokens or any(not isinstance(t, torch.Tensor) or t.ndim != 2 for t in tokens):
        raise ValueError("pack takes a non-empty list of (N_i, D) tensors")
    if len({t.shape[1] for t in tokens}) != 1:
        raise ValueError(f"every clip's tokens must have the same width D, got {[t.shape[1] for t in tokens]}")
    return torch.cat(tokens)[None], [t.shape[0] for t in tokens]


def unpack(packed: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    """(1, sum N_i, D) -> [(N_i, D), ...], the inverse of :func:`tinysora.video.packing.pack`."""
    lengths = _check_lengths(lengths)
    if packed.ndim != 3 or packed.shape[0] != 1 or packed.shape[1] != sum(lengths):
        raise ValueError(f"packed must be (1, {sum(lengths)}, D), got {tuple(packed.shape)}")
    return list(packed[0].split(lengths))


def block_diagonal_mask(lengths: list[int], device=None) -> torch.Tensor:
    """bool (N, N), N = sum of ``lengths``: True where query and key belong to the same clip."""
    lengths = _check_lengths(lengths)
    clip = torch.repeat_interleave(torch.arange(len(lengths), device=device), torch.tensor(lengths, device=device))
    return clip[:, None] == clip[None, :]


def token_coordinates(grids, device=None) -> dict[str, torch.Tensor]:
    """For the packed tokens of clips with token grids ``grids`` [(T_i, H_i, W_i), ...] (time-major,
    as :func:`tinysora.video.patches.patchify` orders them): int (N,) tensors ``clip``, ``frame``,
    ``row`` and ``col``."""
    parts = defaultdict(list)
    for i, (t, h, w) in enumerate(_check_grids(grids)):
        ft, fh, fw = torch.meshgrid(torch.arange(t, device=device), torch.arange(h, device=device),
                                    torch.arange(w, device=device), indexing="ij")
        parts["clip"].append(torch.full((t * h * w,), i, device=device))
        parts["frame"].append(ft.flatten())
        parts["row"].append(fh.flatten())
        parts["col"].append(fw.flatten())
    return {k: torch.cat(v) for k, v in parts.items()}


def packed_masks(grids, device=None) -> dict[str, torch.Tensor]:
    """The three attention patterns of a packed sequence, bool (N, N) each:

    * ``"full"``: same clip (block-diagonal);
    * ``"spatial"``: same clip and same frame;
    * ``"temporal"``: same clip and same (row, column).
    """
    c = token_coordinates(grids, device)
    same_clip = c["clip"][:, None] == c["clip"][None, :]
    same_frame = c["frame"][:, None] == c["frame"][None, :]
    same_place = (c["row"][:, None] == c["row"][None, :]) & (c["col"][:, None] == c["col"][None, :])
    return {"full": same_clip, "spatial": same_clip & same_frame, "temporal": same_clip & same_place}


def bucket_by_shape(shapes) -> dict[tuple, list[int]]:
    """Open-Sora's buckets: the indices of the clips of each shape, in order of first appearance."""
    buckets: dict[tuple, list[int]] = {}
    for i, shape in enumerate(shapes):
        buckets.setdefault(tuple(shape), []).append(i)
    return buckets


def greedy_pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: clip indices grouped into sequences of at most ``capacity`` tokens."""
    lengths = _check_lengths(lengths)
    if not isinstance(capacity, int) or capacity < max(lengths):
        raise ValueError(f"capacity {capacity!r} is smaller than the longest clip ({max(lengths)} tokens)")
    packs: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for k, free in enumerate(room):
            if lengths[i] <= free:
                packs[k].append(i)
                room[k] -= lengths[i]
                break
        else:
            packs.append([i])
            room.append(capacity - lengths[i])
    return packs


def batching_waste(lengths: list[int], capacity: int) -> dict[str, dict[str, float]]:
    """What each way of batching clips of ``lengths`` tokens computes for nothing.

    For padding every clip to the longest, for one bucket per length, and for packing into
    sequences of ``capacity`` tokens (:func:`tinysora.video.packing.greedy_pack`; a pack's unused tail is padding):
    ``batches`` (how many sequences or batch shapes), ``token_waste`` (share of token slots that
    are padding) and ``score_waste`` (share of dense attention scores that are masked out: padding
    or another clip; a variable-length kernel would skip them).
    """
    lengths = _check_lengths(lengths)
    useful = sum(n * n for n in lengths)
    longest = max(lengths)
    padded_scores = len(lengths) * longest**2
    packs = greedy_pack(lengths, capacity)
    return {
        "padding": dict(batches=1, token_waste=1 - sum(lengths) / (len(lengths) * longest),
                        score_waste=1 - useful / padded_scores),
        "buckets": dict(batches=len(set(lengths)), token_waste=0.0, score_waste=0.0),
        "packing": dict(batches=len(packs), token_waste=1 - sum(lengths) / (len(packs) * capacity),
                        score_waste=1 - useful / (len(packs) * capacity**2)),
    }
