"""DeepSeek-V2 (MLA + DeepSeekMoE) at demo size, in plain PyTorch, with the Hugging Face
DeepSeek-V2 semantics the engine implements (tests/fixtures/golden/README.md): no
q LoRA, interleaved RoPE pairs, RMSNorm on the latent, softmax gate over the routed
experts with greedy top-k and no renormalisation, shared experts as one wide MLP,
tied embeddings. Parameter names are the Hugging Face tensor names, so export is a
straight copy.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096
    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    kv_lora_rank: int = 64
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    intermediate_size: int = 768
    moe_intermediate_size: int = 128
    n_routed_experts: int = 16
    n_shared_experts: int = 2
    num_experts_per_tok: int = 2
    first_k_dense_replace: int = 1
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    aux_loss_alpha: float = 0.01
    bos_token_id: int = 0
    eos_token_id: int = 1

    def hf_config(self):
        return {
            "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_act": "silu",
            "attention_bias": False, "attention_dropout": 0.0, "aux_loss_alpha": self.aux_loss_alpha,
            "seq_aux": False, "ep_size": 1, "moe_layer_freq": 1, "scoring_func": "softmax",
            "norm_topk_prob": False, "initializer_range": 0.02, "rms_norm_eps": self.rms_norm_eps,
            "use_cache": True, "pad_token_id": None, "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id, "pretraining_tp": 1, "rope_theta": self.rope_theta,
            "rope_scaling": None, "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size, "moe_intermediate_size": self.moe_intermediate_size,
            "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_attention_heads, "q_lora_rank": None,
            "kv_lora_rank": self.kv_lora_rank, "qk_nope_head_dim": self.qk_nope_head_dim,
            "qk_rope_head_dim": self.qk_rope_head_dim, "v_head_dim": self.v_head_dim,
            "n_routed_experts": self.n_routed_experts, "n_shared_experts": self.n_shared_experts,
            "num_experts_per_tok": self.num_experts_per_tok, "first_k_dense_replace": self.first_k_dense_replace,
            "topk_method": "greedy", "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0,
            "max_position_embeddings": self.max_position_embeddings, "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
        }


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps))).to(x.dtype)


def rope_tables(cfg, length):
    dr = cfg.qk_rope_head_dim
    inv_freq = cfg.rope_theta ** (-torch.arange(0, dr, 2, dtype=torch.float64) / dr)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def rope(x, cos, sin):
    """Rotates interleaved pairs (x[2i], x[2i+1]); x [..., T, dr], cos/sin [T, dr/2]."""
    pairs = x.float().unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, dn, dr, dv, c = (cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim,
                            cfg.v_head_dim, cfg.kv_lora_rank)
        self.q_proj = nn.Linear(cfg.hidden_size, h * (dn + dr), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(cfg.hidden_size, c + dr, bias=False)
        self.kv_a_layernorm = RMSNorm(c, cfg.rms_norm_eps)
        self.kv_b_proj = nn.Linear(c, h * (dn + dv), bias=False)
        self.o_proj = nn.Linear(h * dv, cfg.hidden_size, bias=False)
        self.scale = (dn + dr) ** -0.5

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        b, t, _ = x.shape
        h, dn, dr, dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        q = self.q_proj(x).view(b, t, h, dn + dr).transpose(1, 2)
        q_nope, q_pe = q[..., :dn], rope(q[..., dn:], cos, sin)
        c, k_pe = self.kv_a_proj_with_mqa(x).split([cfg.kv_lora_rank, dr], dim=-1)
        k_pe = rope(k_pe.unsqueeze(1), cos, sin)  # one rope key shared by all heads
        kv = self.kv_b_proj(self.kv_a_layernorm(c)).view(b, t, h, dn + dv).transpose(1, 2)
        k_nope, v = kv[..., :dn], kv[..., dn:]
        scores = (q_nope @ k_nope.transpose(-1, -2) + q_pe @ k_pe.transpose(-1, -2)).float() * self.scale
        probs = torch.softmax(scores + mask, dim=-1).to(v.dtype)
        o = (probs @ v).transpose(1, 2).reshape(b, t, h * dv)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))


class MoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(MLP(cfg.hidden_size, cfg.moe_intermediate_size)
                                     for _ in range(cfg.n_routed_experts))
        self.shared_experts = MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts)

    def forward(self, x):
        cfg = self.cfg
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        scores = torch.softmax(flat.float() @ self.gate.weight.float().t(), dim=-1)
        weights, ids = torch.topk(scores, cfg.num_experts_per_tok, dim=-1)
        out = self.shared_experts(flat).float()
        for e, expert in enumerate(self.experts):
            rows, slot = torch.nonzero(ids == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            y = expert(flat[rows]).float() * weights[rows, slot].unsqueeze(-1)
            out.index_add_(0, rows, y)
        # Expert-level balance loss (DeepSeek-V2 eq. 12-14): f_i = N/(K T) * tokens sent to i,
        # P_i = mean routing probability of i.
        counts = torch.zeros(cfg.n_routed_experts, device=x.device).index_add_(
            0, ids.reshape(-1), torch.ones(ids.numel(), device=x.device))
        f = counts * cfg.n_routed_experts / (cfg.num_experts_per_tok * flat.shape[0])
        balance = (f * scores.mean(0)).sum()
        return out.to(x.dtype).view(shape), balance, ids.view(*shape[:-1], -1)


class Layer(nn.Module):
    def __init__(self, cfg, index):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.is_moe = index >= cfg.first_k_dense_replace
        self.mlp = MoE(cfg) if self.is_moe else MLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        if self.is_moe:
            y, balance, ids = self.mlp(h)
        else:
            y, balance, ids = self.mlp(h), None, None
        return x + y, balance, ids


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DeepseekV2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        cos, sin = rope_tables(cfg, cfg.max_position_embeddings)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            # Projections that write into the residual stream start smaller, so the
            # stream's scale does not grow with depth.
            scale = 1 / math.sqrt(2 * self.cfg.num_hidden_layers) if name.endswith(("o_proj.weight",
                                                                                     "down_proj.weight")) else 1
            nn.init.normal_(p, std=std * scale)

    def forward(self, tokens):
        """tokens [B, T] -> logits [B, T, vocab] (f32), summed balance loss, routed ids per MoE layer."""
        t = tokens.shape[1]
        mask = torch.full((t, t), float("-inf"), device=tokens.device).triu(1)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.model.embed_tokens(tokens)
        balance, routing = 0.0, {}
        for i, layer in enumerate(self.model.layers):
            x, b, ids = layer(x, cos, sin, mask)
            if b is not None:
                balance = balance + b
                routing[i] = ids
        h = self.model.norm(x)
        logits = (h @ self.model.embed_tokens.weight.to(h.dtype).t()).float()
        return logits, balance, routing
