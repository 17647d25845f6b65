"""``with_embeddings``: a feature extractor that appends a frozen pretrained encoder's frame embeddings, computed
once per clip and cached on disk.

The DCASE 2024 Task 4 baseline feeds frozen BEATs frame embeddings (768-d) into its CRNN. Here that is a front end
wrapping two front ends and one encoder, all ordinary recipe blocks::

    features:
      name: with_embeddings
      base: {name: logmel, sample_rate: 16000, ...}                       # what the trainable encoder reads
      frozen_features: {name: beats_fbank}
      frozen_encoder: {name: beats, weights: beats_iter3_plus_as2m}       # or any encoder, frozen

Per clip the frozen encoder's map ``[C, T', F']`` is averaged over frequency into embeddings ``[T', C]`` at its own
frame rate (BEATs: 160 ms). Each base frame t then takes the embedding frame covering its centre time (clamped to
the last), so the output is ``[B, T, F + C]`` at the base frame rate; the ``fusion`` encoder pools the embedding
columns to its own frame rate and concatenates them with its CNN's channels.

**Cache.** Embeddings depend only on the frozen model and on the clip's waveform: the key is a hash of every tensor
of the frozen front end and encoder (weights, batch-norm statistics, normalisation) with their recipe blocks, and
of the waveform's float32 bytes. That holds across epochs (augmentations act on features, after this module), runs
and recipes that share the frozen model, and needs no clip identifiers. Entries live in memory (``memory_mb``, oldest
dropped first) and on disk (``$JASC_CACHE/embeddings/<model key>/``, else ``~/.cache/jasc/embeddings``, written
atomically; ``disk_cache: false`` keeps memory only). Only missing clips run through the frozen encoder, as one batch.

The frozen modules are not submodules: they are not optimised, not saved in checkpoints (they are rebuilt from their
blocks, e.g. by name from the weights home) and stay in eval mode; they follow the waveform's device. A frozen
encoder built with ``allow_random_init`` passes its stand-in phrase on to the run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from jasc_core import ConfigError, FeatureExtractor, component

CACHE_ENV = "JASC_CACHE"


def default_cache_dir() -> Path:
    """``$JASC_CACHE/embeddings``, else ``~/.cache/jasc/embeddings`` (beside the audio cache)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "jasc") / "embeddings"


def model_key(blocks: dict[str, Any], *modules: torch.nn.Module) -> str:
    """Hash of the blocks and every tensor of the modules: equal keys, equal embeddings for equal waveforms."""
    digest = hashlib.blake2b(json.dumps(blocks, sort_keys=True, default=str).encode(), digest_size=16)
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Embeddings by key: a memory map with a byte budget (oldest out first) in front of an optional folder."""

    def __init__(self, folder: Path | None, memory_bytes: int) -> None:
        self.folder, self.memory_bytes = folder, memory_bytes
        self.memory: OrderedDict[str, Tensor] = OrderedDict()
        self.used = 0
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.pt"

    def get(self, key: str) -> Tensor | None:
        if key in self.memory:
            self.memory.move_to_end(key)
            self.hits += 1
            return self.memory[key]
        if self.folder is not None and self._path(key).is_file():
            try:
                tensor = torch.load(self._path(key), map_location="cpu", weights_only=True)
            except Exception:  # a damaged entry (disk full at write time) is recomputed, never trusted
                tensor = None
            if isinstance(tensor, Tensor):
                self._remember(key, tensor)
                self.hits += 1
                return tensor
        self.misses += 1
        return None

    def put(self, key: str, tensor: Tensor) -> None:
        tensor = tensor.detach().cpu().contiguous()
        self._remember(key, tensor)
        if self.folder is not None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            torch.save(tensor, partial)
            os.replace(partial, path)  # atomic: a reader sees the whole entry or none (DDP ranks share the folder)

    def _remember(self, key: str, tensor: Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if size > self.memory_bytes:
            return
        self.memory[key] = tensor
        self.used += size
        while self.used > self.memory_bytes:
            _, old = self.memory.popitem(last=False)
            self.used -= old.numel() * old.element_size()


def _built(kind: str, block: dict[str, Any], field: str, **kwargs: Any) -> Any:
    if not isinstance(block, dict) or "name" not in block:
        raise ConfigError(f"features.{field}: a block with a name, e.g. {{name: ...}}")
    rest = {k: v for k, v in block.items() if k != "name"}
    return component(kind, block["name"])(rest, **kwargs)


class WithEmbeddings(FeatureExtractor):
    """Base features + a frozen pretrained encoder's frame embeddings (cached per clip), [B, T, F + C]."""

    name = "with_embeddings"

    class Config(BaseModel):
        base: dict[str, Any] = Field(description="features block the trainable encoder reads, e.g. {name: logmel}")
        frozen_features: dict[str, Any] = Field(
            default_factory=lambda: {"name": "beats_fbank"}, description="front end of the frozen encoder")
        frozen_encoder: dict[str, Any] = Field(
            description="encoder block of the frozen model, e.g. {name: beats, weights: beats_iter3_plus_as2m}")
        disk_cache: bool = Field(True, description="keep embeddings on disk too ($JASC_CACHE/embeddings)")
        cache_dir: str | None = Field(None, description="disk cache folder (default $JASC_CACHE/embeddings, else "
                                                        "~/.cache/jasc/embeddings)")
        memory_mb: float = Field(1024, ge=0, description="memory for cached embeddings (oldest dropped first)")

    def __init__(self, config=None) -> None:
        super().__init__(config)
        c = self.config
        self.base = _built("features", c.base, "base")
        frozen_features = _built("features", c.frozen_features, "frozen_features")
        frozen_encoder = _built("encoder", c.frozen_encoder, "frozen_encoder", n_features=frozen_features.n_features)
        for module in (frozen_features, frozen_encoder):
            module.eval().requires_grad_(False)
        self._frozen = (frozen_features, frozen_encoder)  # a tuple: not registered, so neither saved nor optimised
        self.sample_rate, self.hop_seconds = self.base.sample_rate, self.base.hop_seconds
        self.embedding_dim = frozen_encoder.out_channels
        self.n_features = self.base.n_features + self.embedding_dim
        self.embedding_hop = frozen_features.hop_seconds * getattr(frozen_encoder, "time_stride", 1)
        self.stand_in = getattr(frozen_encoder, "stand_in", None)
        key = model_key({"features": c.frozen_features, "encoder": c.frozen_encoder}, frozen_features,
                        frozen_encoder)
        folder = (Path(c.cache_dir) if c.cache_dir else default_cache_dir()) / key if c.disk_cache else None
        self.model_key, self.cache = key, EmbeddingCache(folder, int(c.memory_mb * 2**20))

    def fit_normalization(self, batches) -> None:
        self.base.fit_normalization(batches)

    def num_frames(self, num_samples: int) -> int:
        return self.base.num_frames(num_samples)

    def forward(self, waveform: Tensor) -> Tensor:
        base = self.base(waveform)  # [B, T, F]
        embeddings = self.embeddings(waveform).to(base.device, base.dtype)  # [B, T', C]
        centres = (torch.arange(base.shape[1], device=base.device) + 0.5) * self.hop_seconds
        index = (centres / self.embedding_hop).long().clamp(max=embeddings.shape[1] - 1)
        return torch.cat([base, embeddings[:, index]], dim=-1)

    def embeddings(self, waveform: Tensor) -> Tensor:
        """Frozen-encoder embeddings ``[B, T', C]`` (CPU), from the cache where present."""
        rows = waveform.detach().float().cpu().numpy()
        keys = [hashlib.blake2b(self.model_key.encode() + row.tobytes(), digest_size=20).hexdigest() for row in rows]
        found = [self.cache.get(key) for key in keys]
        missing = [i for i, tensor in enumerate(found) if tensor is None]
        if missing:
            computed = self._compute(waveform[missing])
            for i, tensor in zip(missing, computed, strict=True):
                self.cache.put(keys[i], tensor)
                found[i] = tensor.cpu()
        return torch.stack(found)

    @torch.no_grad()
    def _compute(self, waveform: Tensor) -> Tensor:
        features, encoder = self._frozen
        device = waveform.device
        if next(iter(encoder.parameters())).device != device:
            features.to(device)
            encoder.to(device)
        if features.sample_rate != self.sample_rate:
            waveform = torch.from_numpy(np.stack([_resample(row, self.sample_rate, features.sample_rate)
                                                  for row in waveform.float().cpu().numpy()])).to(device)
        feature_map = encoder(features(waveform.float()))  # [B, C, T', F']
        return feature_map.mean(dim=3).transpose(1, 2).float()


def _resample(row: np.ndarray, rate: int, target: int) -> np.ndarray:
    import soxr

    return soxr.resample(row, rate, target).astype(np.float32)
