"""BEATs (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023), iter3 / iter3+ layout.

Read top to bottom like the reference (``microsoft/unilm`` beats/BEATs.py and beats/backbone.py), whose parameter
names and shapes this module keeps, so that ``BEATs_iter3_plus_AS2M.pt``'s ``checkpoint["model"]`` loads into
``BEATs`` with ``strict=True`` (the fine-tuned ``..._finetuned_on_AS2M_cpt*.pt`` with ``predictor_classes=527``)::

    front end   beats_fbank: Kaldi fbank (16 kHz, 25 ms / 10 ms, 128 mels) of waveform * 2**15,
                then (x - 15.41663) / (2 * 6.55582)                                    (BEATs.preprocess)
    patches     16x16 conv, stride 16, no bias, over [time, mel] -> 512 channels; tokens time-major
                (T/16 time steps x 8 mel patches), LayerNorm(512), Linear 512 -> 768
    position    grouped conv (128 taps, 16 groups, weight norm over the tap axis), drop the last output
                step (even kernel), GELU, added to the tokens; LayerNorm (post-LN layout)
    layers x12  post-LN transformer layers with DeepNorm residual scaling alpha = (2 * 12) ** 0.25:
                  x = LN(alpha * x + SelfAttention(x)); x = LN(alpha * x + FFN(x)), FFN 768 -> 3072 -> 768, GELU
                attention adds a bucketed relative-position bias (320 buckets, max distance 800; T5 buckets),
                one table shared by all layers, gated per layer by the query (WavLM's gated relative position
                bias: gate = sigmoid(sum over 4 of a Linear(64 -> 8) of each head's query))
    outputs     tokens [B, T/16 * 8, 768]; as a jasc map [B, 768, T/16, 8] (frame level, SED); clip level: the
                token mean (embedding) and, for fine-tuned checkpoints, the mean of the AudioSet predictor's logits

The reference scales queries by 1/32 and multiplies the max-subtracted scores by 32 (a float16 guard); in float32
that equals plain scaled dot-product attention, which is what runs here. Padding masks are not supported: jasc
batches clips of one length. ``layerdrop`` and ``layer_grad_decay`` (the checkpoint config's
``encoder_layerdrop: 0.05``, off by default here, and ``layer_wise_gradient_decay_ratio: 0.6``) act only while
training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field
from torch import Tensor, nn

from jasc_core import ConfigError, Encoder, FeatureExtractor
from jasc_pretrained.kaldi import kaldi_fbank, kaldi_num_frames
from jasc_pretrained.layer_decay import assign_lr_scales
from jasc_pretrained.weights import load_into, random_init_phrase

#: AudioSet fbank statistics the BEATs checkpoints were trained with (BEATs.extract_features' defaults).
FBANK_MEAN, FBANK_STD = 15.41663, 6.55582


class _ScaleGradient(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward (the reference's GradMultiply)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # noqa: D102
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        return grad * ctx.scale, None


class WeightNormConv1d(nn.Module):
    """Conv1d with weight norm over every axis but the taps (``torch.nn.utils.weight_norm(conv, dim=2)``), keeping
    that function's parameter names ``weight_g`` [1, 1, K] and ``weight_v`` [C, C/groups, K]."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.groups, self.padding = groups, kernel_size // 2
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel_size * channels)))
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> Tensor:
    """Bucket index ``[length, length]`` of each (query, key) offset: T5's bidirectional buckets, exact below half a
    side's buckets and logarithmic up to ``max_distance`` (backbone.py ``_relative_positions_bucket``)."""
    offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]
    side = num_buckets // 2
    buckets = (offset > 0).long() * side
    distance = offset.abs()
    exact = side // 2
    far = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact) * (side - exact)).long()
    far = far.clamp(max=side - 1)
    return buckets + torch.where(distance < exact, distance, far)


class MultiheadAttention(nn.Module):
    """Self-attention with the gated relative position bias (the reference's names: q/k/v/out_proj, grep_*)."""

    def __init__(self, dim: int, heads: int, relative_attention_bias: nn.Embedding) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        # One table for all layers: every layer holds the same module, so each layer's key is in the state dict
        # (as in the reference checkpoint) while the parameters count once.
        self.relative_attention_bias = relative_attention_bias
        self.grep_linear = nn.Linear(self.head_dim, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, position_bias: Tensor) -> Tensor:
        """``x`` [B, T, C], ``position_bias`` [H, T, T] -> [B, T, C]."""
        batch, length, dim = x.shape
        q, k, v = (proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))  # [B, H, T, d]
        gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, length, 2, 4).sum(-1)).chunk(2, -1)
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0  # [B, H, T, 1]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=gate * position_bias)
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, dim))


class TransformerSentenceEncoderLayer(nn.Module):
    """Post-LN layer with DeepNorm residual scaling (``layer_norm_first=False, deep_norm=True``)."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, alpha: float, relative_attention_bias: nn.Embedding) -> None:
        super().__init__()
        self.alpha = alpha
        self.self_attn = MultiheadAttention(dim, heads, relative_attention_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, position_bias: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(self.alpha * x + self.self_attn(x, position_bias))
        return self.final_layer_norm(self.alpha * x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    """Convolutional position embedding, LayerNorm, then the layers (backbone.py ``TransformerEncoder``)."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, layers: int, conv_pos: int, conv_pos_groups: int,
                 num_buckets: int, max_distance: int, layerdrop: float, layer_grad_decay: float) -> None:
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.layerdrop, self.layer_grad_decay = layerdrop, layer_grad_decay
        # Sequential of one so the key reads pos_conv.0.* as in the reference (conv, SamePad, GELU).
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, conv_pos, conv_pos_groups))
        table = nn.Embedding(num_buckets, heads)
        alpha = (2.0 * layers) ** 0.25
        self.layers = nn.ModuleList(
            TransformerSentenceEncoderLayer(dim, ffn_dim, heads, alpha, table) for _ in range(layers))
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        positions = self.pos_conv(x.transpose(1, 2))
        if self.pos_conv[0].padding * 2 == self.pos_conv[0].weight_v.shape[-1]:  # even kernel: one step too many
            positions = positions[:, :, :-1]
        x = self.layer_norm(x + F.gelu(positions).transpose(1, 2))
        buckets = relative_position_buckets(x.shape[1], self.num_buckets, self.max_distance).to(x.device)
        position_bias = self.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1)  # [H, T, T]
        for layer in self.layers:
            if self.training and self.layer_grad_decay != 1.0:
                x = _ScaleGradient.apply(x, self.layer_grad_decay)
            if self.training and self.layerdrop > 0 and torch.rand(()).item() < self.layerdrop:
                continue
            x = layer(x, position_bias)
        return x


class BEATs(nn.Module):
    """The BEATs model on normalised fbank ``[B, T, 128]`` -> tokens ``[B, T // 16 * 8, 768]`` (reference names)."""

    def __init__(self, *, layers: int = 12, dim: int = 768, ffn_dim: int = 3072, heads: int = 12,
                 patch_size: int = 16, embed_dim: int = 512, conv_pos: int = 128, conv_pos_groups: int = 16,
                 num_buckets: int = 320, max_distance: int = 800, predictor_classes: int = 0,
                 layerdrop: float = 0.0, layer_grad_decay: float = 1.0) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.post_extract_proj = nn.Linear(embed_dim, dim) if embed_dim != dim else None
        self.patch_embedding = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=patch_size, bias=False)
        self.encoder = TransformerEncoder(dim, ffn_dim, heads, layers, conv_pos, conv_pos_groups, num_buckets,
                                          max_distance, layerdrop, layer_grad_decay)
        self.layer_norm = nn.LayerNorm(embed_dim)
        self.predictor = nn.Linear(dim, predictor_classes) if predictor_classes else None
        self.apply(_init_bert_params)

    def patch_grid(self, fbank: Tensor) -> tuple[int, int]:
        """(time patches, mel patches) of a fbank ``[B, T, F]``."""
        return fbank.shape[1] // self.patch_size, fbank.shape[2] // self.patch_size

    def forward(self, fbank: Tensor) -> Tensor:
        """Normalised fbank ``[B, T, F]`` -> tokens ``[B, (T // 16) * (F // 16), dim]``, time-major."""
        patches = self.patch_embedding(fbank.unsqueeze(1))  # [B, 512, T/16, F/16]
        tokens = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            tokens = self.post_extract_proj(tokens)
        return self.encoder(tokens)

    def clip_logits(self, tokens: Tensor) -> Tensor:
        """AudioSet logits ``[B, classes]`` of a fine-tuned checkpoint: the token mean of the predictor's logits
        (the reference returns their sigmoid)."""
        if self.predictor is None:
            raise ValueError("this BEATs has no predictor: build it with predictor_classes=527 for the fine-tuned "
                             "AudioSet checkpoints")
        return self.predictor(tokens).mean(dim=1)


def _init_bert_params(module: nn.Module) -> None:
    """The reference's initialisation of linear layers (normal, std 0.02, zero bias; fairseq init_bert_params)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# --- jasc components -------------------------------------------------------------------------------------------------


class BeatsFbank(FeatureExtractor):
    """BEATs' front end: Kaldi log-mel fbank (16 kHz, 25/10 ms, 128 mels) of waveform * 2**15, normalised."""

    name = "beats_fbank"

    class Config(BaseModel):
        fbank_mean: float = Field(FBANK_MEAN, description="mean subtracted from the fbank (the checkpoints' AudioSet value)")
        fbank_std: float = Field(FBANK_STD, gt=0, description="the fbank is divided by twice this (BEATs.preprocess)")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.sample_rate, self.hop_seconds, self.n_features = 16000, 0.01, 128

    def forward(self, waveform: Tensor) -> Tensor:
        fbank = kaldi_fbank(waveform.float() * 2**15, sample_rate=self.sample_rate, n_mels=self.n_features)
        return (fbank - self.config.fbank_mean) / (2 * self.config.fbank_std)

    def num_frames(self, num_samples: int) -> int:
        return kaldi_num_frames(num_samples, sample_rate=self.sample_rate)


#: Checkpoint ``cfg`` values that this implementation assumes (iter3 / iter3+ layout); the others are sizes the
#: strict load checks, or training-only settings.
LAYOUT = {"layer_norm_first": False, "deep_norm": True, "relative_position_embedding": True, "gru_rel_pos": True,
          "conv_pos": 128, "conv_pos_groups": 16, "num_buckets": 320, "max_distance": 800, "input_patch_size": 16,
          "activation_fn": "gelu", "conv_bias": False}


def check_checkpoint_layout(cfg: dict | None, source: str) -> None:
    """Refuse a BEATs checkpoint whose ``cfg`` asks for a layout this module does not implement (a strict load
    cannot see it: DeepNorm or the bucket range change no tensor shape)."""
    if cfg is None:
        return
    wrong = {key: cfg[key] for key, value in LAYOUT.items() if key in cfg and cfg[key] != value}
    if wrong:
        raise ConfigError(f"model.encoder.weights: {source} is a BEATs checkpoint with "
                          f"{', '.join(f'{k}={v!r}' for k, v in wrong.items())}; encoder 'beats' implements the "
                          f"iter3 / iter3+ layout ({', '.join(f'{k}={LAYOUT[k]!r}' for k in wrong)})")


class BeatsEncoder(Encoder):
    """BEATs transformer (iter3/iter3+ layout, official checkpoint names); map [B, 768, T/16, F/16]."""

    name = "beats"

    class Config(BaseModel):
        layers: int = Field(12, ge=1, description="transformer layers (12 in every released checkpoint)")
        dim: int = Field(768, ge=8, description="token width (encoder_embed_dim)")
        ffn_dim: int = Field(3072, ge=8, description="feed-forward width (encoder_ffn_embed_dim)")
        heads: int = Field(12, ge=1, description="attention heads")
        embed_dim: int = Field(512, ge=8, description="patch embedding width before the projection to dim")
        predictor_classes: int = Field(0, ge=0, description="AudioSet predictor outputs: 527 for the fine-tuned "
                                                            "checkpoints (..._finetuned_on_AS2M_cpt*.pt), 0 for none")
        layerdrop: float = Field(0.0, ge=0, lt=1, description="probability of skipping a layer in a training step "
                                 "(the checkpoints' pre-training used 0.05; under DDP every rank must skip alike)")
        layer_grad_decay: float = Field(0.6, gt=0, le=1, description="gradient factor at each layer's input while "
                                        "training (the checkpoint config's layer_wise_gradient_decay_ratio)")
        lr_decay: float = Field(1.0, gt=0, le=1, description="layer-wise learning-rate decay: the last layer trains "
                                "at lr * lr_decay, each earlier one lr_decay times slower, the patch embedding and "
                                "position stage at lr * lr_decay ** 13; predictor and heads at lr (1: none)")
        weights: str | None = Field(None, description="pretrained weights: a name of `jasc weights list` (fetched "
                                                      "by `jasc weights download NAME`) or a checkpoint file")
        allow_random_init: bool = Field(False, description="train without pretrained weights (random initial "
                                                           "weights); the run's outputs then say so")

    def __init__(self, config=None, *, n_features: int = 128) -> None:
        super().__init__(config, n_features=n_features)
        if n_features % 16:
            raise ConfigError(f"encoder 'beats' takes 16x16 patches: n_features must be a multiple of 16, "
                              f"got {n_features} (use the beats_fbank features: 128)")
        c = self.config
        self.beats = BEATs(layers=c.layers, dim=c.dim, ffn_dim=c.ffn_dim, heads=c.heads, embed_dim=c.embed_dim,
                           predictor_classes=c.predictor_classes, layerdrop=c.layerdrop,
                           layer_grad_decay=c.layer_grad_decay)
        self.out_channels, self.out_features, self.time_stride = c.dim, n_features // 16, 16
        if c.lr_decay != 1.0:
            b = self.beats
            stem = [b.patch_embedding, b.layer_norm, b.encoder.pos_conv, b.encoder.layer_norm,
                    b.encoder.layers[0].self_attn.relative_attention_bias]
            if b.post_extract_proj is not None:
                stem.append(b.post_extract_proj)
            top = [b.predictor] if b.predictor is not None else []
            assign_lr_scales([stem, *([layer] for layer in b.encoder.layers), top], c.lr_decay)
        #: Said wherever the run names a stand-in (tables, run.json) when the encoder is not the pretrained one.
        self.stand_in: str | None = None
        if c.weights is not None:
            check_checkpoint_layout(load_into(self.beats, c.weights, self.name, c.model_dump()), c.weights)
        elif c.allow_random_init:
            self.stand_in = random_init_phrase(self.name)
        else:
            raise ConfigError("model.encoder: encoder 'beats' expects pretrained weights: set weights: NAME (see "
                              "`jasc weights list`) or a checkpoint path, or allow_random_init: true to train "
                              "from random weights")

    def forward(self, features: Tensor) -> Tensor:
        time_patches, mel_patches = self.beats.patch_grid(features)
        tokens = self.beats(features)  # [B, T' * F', C], time-major
        return tokens.view(tokens.shape[0], time_patches, mel_patches, -1).permute(0, 3, 1, 2)

    def clip_outputs(self, features: Tensor) -> dict[str, Tensor]:
        """Clip level: ``embedding`` (token mean [B, 768]) and, with a predictor, AudioSet ``logits`` [B, 527]."""
        tokens = self.beats(features)
        outputs = {"embedding": tokens.mean(dim=1)}
        if self.beats.predictor is not None:
            outputs["logits"] = self.beats.clip_logits(tokens)
        return outputs
