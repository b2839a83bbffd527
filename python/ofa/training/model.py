"""The One-for-All forecaster: a frozen backbone between a patch embedding and a linear head.

    x (B, L, C) -> instance norm -> replication pad + patches (N, P) -> in_layer -> + positions
    -> first n_layers frozen blocks -> flatten (N*d) -> out_layer -> de-norm -> (B, H, C)

Channels are independent: (B, L, C) is folded to B*C univariate series. Adapters are rsLoRA
(PEFT) on the position table and the output layer; `ModelConfig.train` picks what else trains.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import backbone as backbones
from ..data import n_patches
from ..errors import OfaError

REVIN_EPS = 1e-5
# What trains besides the LoRA tensors: nothing / the input layer / also every backbone block (a
# distilled student, whose backbone is small and randomly initialised; BERT layout).
TRAIN_MODES = ("lora", "lora+input", "lora+input+ln", "all")
HEAD_BASES = ("random", "zero")              # frozen base of the output layer
LINEAR_PATHS = ("none", "ridge", "ridge+train")


@dataclass
class ModelConfig:
    backbone: str = "minilm"
    layers: int | None = 2        # first N blocks; None: all. 2 of MiniLM's 6 measured best (README)
    seq_len: int | str = "auto"   # or a length; "auto": ofa.train picks it and the linear path on validation
    horizon: int = 96
    patch: int = 16
    stride: int = 8
    rank: int = 16
    alpha: float = 16.0
    lora_dropout: float = 0.01
    train: str = "lora+input"
    head_base: str = "zero"
    backbone_dropout: bool = True  # keep the backbone's own dropout active while training (GPT4TS does)
    # A linear forecast of the window added to the transformer head (ofa/linear_path.py): "none", "ridge"
    # (fitted in closed form before training, then fixed) or "ridge+train" (fitted, then trained too).
    linear_path: str = "ridge"
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.seq_len == "auto":
            raise OfaError("seq_len 'auto' is chosen when training starts (ofa.train); give a length to build "
                           "a model directly")
        for label in ("seq_len", "horizon", "patch", "stride", "rank"):
            value = getattr(self, label)
            if not isinstance(value, int) or value <= 0:
                raise OfaError(f"{label} must be a positive integer, got {value!r}")
        if self.layers is not None and (not isinstance(self.layers, int) or self.layers <= 0):
            raise OfaError(f"layers must be a positive integer, got {self.layers!r}")
        if self.patch > self.seq_len:
            raise OfaError(f"patch ({self.patch}) must not exceed seq_len ({self.seq_len})")
        if self.train not in TRAIN_MODES:
            raise OfaError(f"train mode must be one of {TRAIN_MODES}, got {self.train!r}")
        if self.head_base not in HEAD_BASES:
            raise OfaError(f"head base must be one of {HEAD_BASES}, got {self.head_base!r}")
        if not self.alpha > 0:
            raise OfaError(f"alpha must be positive, got {self.alpha}")
        if self.linear_path is False:  # checkpoints written before the ridge path recorded "no path" as false
            self.linear_path = "none"
        if self.linear_path not in LINEAR_PATHS:
            raise OfaError(f"linear path must be one of {LINEAR_PATHS}, got {self.linear_path!r}")
        if self.linear_path != "none" and self.stride > self.patch:
            raise OfaError(f"the linear path reads the window from its patches: stride ({self.stride}) must not "
                           f"exceed patch ({self.patch})")

    @property
    def n_patches(self) -> int:
        return n_patches(self.seq_len, self.patch, self.stride)

    def to_dict(self) -> dict:
        return asdict(self)


class LinearPath(nn.Module):
    """W (H, L) on the instance-normalised window, plus a bias b (H) added after de-normalisation:
    (head + W u) * sd + mu + b, so W u * sd = W (x - mu) is a linear map of the centred window."""

    def __init__(self, seq_len: int, horizon: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(horizon, seq_len))
        self.bias = nn.Parameter(torch.zeros(horizon))

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nn.functional.linear(u, self.weight), self.bias


class OneForAll(nn.Module):
    """The base model that PEFT wraps. Its own parameters: in_layer, out_layer; the rest is backbone."""

    def __init__(self, cfg: ModelConfig, backbone: backbones.Backbone):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.layout = backbone.layout
        self.n_patches = cfg.n_patches
        if self.n_patches > backbone.max_positions:
            raise OfaError(f"{self.n_patches} patches exceed the {backbone.max_positions} positions of backbone "
                           f"{cfg.backbone!r}; use a shorter --seq-len or a larger --stride")
        d = backbone.d_model
        self.backbone = backbone.model
        self.in_layer = nn.Linear(cfg.patch, d)
        self.out_layer = nn.Linear(d * self.n_patches, cfg.horizon)
        if cfg.head_base == "zero":
            nn.init.zeros_(self.out_layer.weight)
            nn.init.zeros_(self.out_layer.bias)
        self.linear_path = LinearPath(cfg.seq_len, cfg.horizon) if cfg.linear_path != "none" else None
        self.register_buffer("position_ids", torch.arange(self.n_patches), persistent=False)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(S, L) scaled series -> patch embeddings (S, N, d), the instance-normalised series (S, L),
        and the instance mean and std."""
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + REVIN_EPS)
        u = (x - mean) / std
        padded = torch.cat([u, u[:, -1:].expand(-1, self.cfg.stride)], dim=1)  # replication pad by one stride
        patches = padded.unfold(dimension=1, size=self.cfg.patch, step=self.cfg.stride)  # (S, N, P)
        return self.in_layer(patches), u, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, C) in scaled units -> forecast (B, H, C) in the same units."""
        batch, _, channels = x.shape
        series = x.permute(0, 2, 1).reshape(batch * channels, -1)
        tokens, u, mean, std = self.embed(series)
        # The backbone adds its own position table (PEFT wraps it with the LoRA update) and, for BERT,
        # the token-type row 0 and the embedding layer norm.
        position_ids = self.position_ids.unsqueeze(0).expand(tokens.shape[0], -1)
        hidden = self.backbone(inputs_embeds=tokens, position_ids=position_ids).last_hidden_state
        forecast = self.out_layer(hidden.reshape(hidden.shape[0], -1))
        if self.linear_path is None:
            forecast = forecast * std + mean
        else:
            path, bias = self.linear_path(u)
            forecast = (forecast + path) * std + mean + bias
        return forecast.reshape(batch, channels, -1).permute(0, 2, 1)


def lora_config(cfg: ModelConfig, backbone: backbones.Backbone):
    """Gaussian rank-stabilised LoRA on the position table and the output layer (the paper's setting)."""
    from peft import LoraConfig

    position_leaf = backbone.position_module.split(".")[-1]
    return LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        use_rslora=True,                 # scaling = alpha / sqrt(r)
        init_lora_weights="gaussian",    # Linear: A ~ N(0, 1/r), B = 0; Embedding: A = 0, B ~ N(0, 1)
        lora_dropout=cfg.lora_dropout,
        target_modules=[position_leaf, "out_layer"],
        modules_to_save=trained_modules(cfg, backbone),
    )


def trained_modules(cfg: ModelConfig, backbone: backbones.Backbone) -> list[str] | None:
    """Modules that train whole (PEFT modules_to_save: a trained copy beside the frozen original)."""
    extra = ["linear_path"] if cfg.linear_path == "ridge+train" else []
    if cfg.train == "lora":
        return extra or None
    if cfg.train == "lora+input":
        return ["in_layer", *extra]
    if cfg.train == "lora+input+ln":  # GPT4TS's choice: the layer norms' affine parameters train too
        norms = ["LayerNorm"] if backbone.layout == backbones.BERT else ["ln_1", "ln_2", "ln_f"]
        return ["in_layer", *norms, *extra]
    if backbone.layout != backbones.BERT:
        raise OfaError("train mode 'all' (a distilled student) needs a BERT-layout backbone")
    return ["in_layer", "encoder", *extra]


def build(cfg: ModelConfig, seed: int = 0, backbone: backbones.Backbone | None = None, root: str | None = None):
    """The PEFT-wrapped model with fresh adapters. Random initial values come from `seed`."""
    cfg.check()
    if backbone is None:
        backbone = backbones.load(cfg.backbone, cfg.layers, root)
    cfg.layers = len(backbone.blocks())
    torch.manual_seed(seed)
    return with_adapters(OneForAll(cfg, backbone), lora_config(cfg, backbone), cfg.backbone_dropout)


def with_adapters(base: nn.Module, lora, backbone_dropout: bool):
    """`base` (a forecaster or a classifier, its backbone at base.backbone) wrapped in PEFT with the
    adapters `lora` describes; the backbone's own dropout switched off unless backbone_dropout."""
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns that embedding LoRA ignores dropout: intended
        model = get_peft_model(base, lora)
    if not backbone_dropout:
        for module in base.backbone.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    return model


def base_of(model) -> OneForAll:
    """The OneForAll inside a PEFT wrapper."""
    return model.get_base_model()


UNUSED_FROZEN = ("word_embeddings", ".wte.", "original_module")  # token tables; PEFT's copy of a trained module


def parameter_counts(model) -> dict:
    """Trainable parameters, frozen parameters the forecaster uses, and fp32 adapter bytes."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for n, p in model.named_parameters()
                 if not p.requires_grad and not any(u in n for u in UNUSED_FROZEN))
    return {"trainable_params": trainable, "frozen_params": frozen, "adapter_bytes": 4 * trainable}
