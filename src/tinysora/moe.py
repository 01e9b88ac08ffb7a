"""Chapter 08: mixture of experts (MoE), a drop-in replacement for the GPT block's FFN.

Read top to bottom: the experts (chapter 01's FFN, up-project -> activate -> down-project), the
gate (one linear layer that scores every expert for every token, keeps the top k and turns their
scores into weights that sum to one), the Switch-Transformer load-balancing loss, the MoE layer
that routes each token to its k experts and adds their outputs weighted by the gate, and the
helpers that build an MoE GPT and measure how evenly it uses its experts.

Only k of the E experts run for a token, so the model holds E experts' parameters but spends the
compute (and "active parameters") of about k of them.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from tinysora.gpt import GPT, GPTConfig, lm_examples
from tinysora.mlp import FFN


def _check_int(name: str, value, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


class TopKGate(nn.Module):
    """A linear router: scores (N, E) = x W_g; keep each token's top k; softmax over the kept k.

    forward(x (N, D)) -> (weights (N, k), indices (N, k), probs (N, E)):
    ``weights`` sum to one per token; ``probs`` is the softmax over all E scores (what the
    load-balancing loss needs). With ``noise_std > 0`` Gaussian noise is added to the scores
    while training (Shazeer et al., 2017, learn its scale per expert; we fix it), so near-ties
    are broken at random and every expert keeps receiving some tokens and gradient.
    """

    def __init__(self, d_model: int, n_experts: int, top_k: int = 2, noise_std: float = 0.0):
        super().__init__()
        _check_int("d_model", d_model)
        _check_int("n_experts", n_experts)
        _check_int("top_k", top_k)
        if top_k > n_experts:
            raise ValueError(f"top_k={top_k} is larger than the number of experts {n_experts}")
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.top_k, self.noise_std = top_k, float(noise_std)
        self.proj = nn.Linear(d_model, n_experts, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.ndim != 2:
            raise ValueError(f"the gate expects tokens (N, D), got shape {tuple(x.shape)}")
        scores = self.proj(x)                                          # (N, E)
        if self.training and self.noise_std > 0:
            scores = scores + self.noise_std * torch.randn_like(scores)
        top_scores, indices = scores.topk(self.top_k, dim=-1)          # (N, k)
        weights = top_scores.softmax(dim=-1)                           # (N, k), rows sum to 1
        return weights, indices, scores.softmax(dim=-1)


def load_balancing_loss(probs: torch.Tensor, indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """The Switch Transformer's auxiliary loss, E * sum_i f_i P_i (Fedus et al., 2021, eq. 4).

    probs: (N, E) router probabilities; indices: (N, k) chosen experts.
    f_i = share of the N*k routing slots sent to expert i (counts, no gradient);
    P_i = mean router probability of expert i (differentiable). It equals 1 when both are
    uniform (1/E) and grows when the router piles tokens onto the experts it already favours.
    """
    if probs.ndim != 2 or probs.shape[1] != n_experts:
        raise ValueError(f"probs must be (N, {n_experts}), got {tuple(probs.shape)}")
    if indices.ndim != 2 or indices.shape[0] != probs.shape[0]:
        raise ValueError(f"indices must be (N, k) with N={probs.shape[0]}, got {tuple(indices.shape)}")
    f = torch.bincount(indices.flatten(), minlength=n_experts).to(probs.dtype) / indices.numel()   # (E,)
    p = probs.mean(dim=0)                                                                           # (E,)
    return n_experts * (f * p).sum()


class MoE(nn.Module):
    """A mixture-of-experts FFN: (B, T, D) -> (B, T, D), each token through its top-k experts.

    out(x) = sum over the k chosen experts e of weight_e(x) * expert_e(x). After each forward,
    ``aux_loss`` holds the load-balancing loss and ``counts`` (E,) how many routing slots each
    expert received.
    """

    def __init__(self, d_model: int, d_hidden: int, n_experts: int, top_k: int = 2, noise_std: float = 0.0,
                 activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.n_experts = n_experts
        self.gate = TopKGate(d_model, n_experts, top_k, noise_std)
        self.experts = nn.ModuleList(FFN(d_model, d_hidden, activation, dropout) for _ in range(n_experts))
        self.aux_loss = torch.zeros(())
        self.counts = torch.zeros(n_experts, dtype=torch.long)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"MoE expects (B, T, D), got shape {tuple(x.shape)}")
        b = x.shape[0]
        tokens = rearrange(x, "b t d -> (b t) d")                      # (N, D)
        weights, indices, probs = self.gate(tokens)                    # (N, k), (N, k), (N, E)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token_ids, slot = torch.where(indices == e)                # the tokens that chose e
            if token_ids.numel():
                contribution = weights[token_ids, slot, None] * expert(tokens[token_ids])   # (n_e, D)
                out = out.index_add(0, token_ids, contribution)
        self.aux_loss = load_balancing_loss(probs, indices, self.n_experts)
        self.counts = torch.bincount(indices.flatten(), minlength=self.n_experts).detach().cpu()
        return rearrange(out, "(b t) d -> b t d", b=b)


# =============================================================================== an MoE GPT


def moe_gpt(config: GPTConfig, n_experts: int, top_k: int = 2, d_hidden: int | None = None,
            noise_std: float = 0.0) -> GPT:
    """chapter 07's GPT with every block's FFN replaced by an :class:`MoE`.

    ``d_hidden`` (default ``4 * d_model // top_k``) is each expert's width: with the default,
    the k active experts together are as wide as the dense model's 4D FFN.
    """
    _check_int("n_experts", n_experts)
    _check_int("top_k", top_k)
    d_hidden = 4 * config.d_model // top_k if d_hidden is None else d_hidden
    _check_int("d_hidden", d_hidden)
    return GPT(config, make_ffn=lambda _: MoE(config.d_model, d_hidden, n_experts, top_k, noise_std,
                                               dropout=config.dropout))


def moe_layers(model: nn.Module) -> list[MoE]:
    """Every :class:`MoE` module of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, MoE)]


def balancing_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the load-balancing losses of every MoE layer, from the last forward pass."""
    layers = moe_layers(model)
    if not layers:
        raise ValueError("this model has no MoE layers")
    return sum(layer.aux_loss for layer in layers)


def active_parameters(model: nn.Module) -> int:
    """Parameters that one token uses: all of them, minus the E - k experts it skips in each MoE layer."""
    total = sum(p.numel() for p in model.parameters())
    for layer in moe_layers(model):
        per_expert = sum(p.numel() for p in layer.experts[0].parameters())
        total -= (layer.n_experts - layer.gate.top_k) * per_expert
    return total


@torch.no_grad()
def expert_use(model: nn.Module, tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Share of routing slots each expert receives, per MoE layer, on ``tokens`` (N, T+1): (layers, E).

    Only positions with a real next token count (padding is routed too, but it is not text).
    Rows sum to one; a perfectly balanced layer has every entry 1/E.
    """
    layers = moe_layers(model)
    if not layers:
        raise ValueError("this model has no MoE layers")
    inputs, targets = lm_examples(tokens, pad_id)
    keep = rearrange(targets != -1, "b t -> (b t)")
    was_training = model.training
    model.eval()
    shares = []
    hooks = []
    for layer in layers:
        def record(module, args, output, store=shares):
            x = rearrange(args[0], "b t d -> (b t) d")[keep.to(args[0].device)]
            _, indices, _ = module.gate(x)
            store.append(torch.bincount(indices.flatten(), minlength=module.n_experts).float().cpu())
        hooks.append(layer.register_forward_hook(record))
    try:
        model(inputs.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    counts = torch.stack(shares)                                       # (layers, E)
    return counts / counts.sum(dim=1, keepdim=True)


def imbalance(shares: torch.Tensor) -> float:
    """Coefficient of variation of expert shares (std / mean), averaged over layers: 0 = perfectly even."""
    if shares.ndim != 2:
        raise ValueError(f"shares must be (layers, E), got shape {tuple(shares.shape)}")
    return (shares.std(dim=1, unbiased=False) / shares.mean(dim=1)).mean().item()


def dense_equivalent(config: GPTConfig, top_k: int = 2, d_hidden: int | None = None) -> GPT:
    """The dense GPT whose FFN is as wide as an MoE's k active experts together (k * d_hidden)."""
    d_hidden = 4 * config.d_model // top_k if d_hidden is None else d_hidden
    return GPT(config, make_ffn=lambda _: FFN(config.d_model, top_k * d_hidden, "gelu", config.dropout))

