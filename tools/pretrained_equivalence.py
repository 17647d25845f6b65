"""Record the official BEATs and EfficientAT outputs on jasc's seeded weights: the offline equivalence proof.

The official checkpoints cannot be downloaded on the machines jasc is tested on, but the official model code is
public. This tool builds the official implementations from copies *outside the repository*, loads into them, with
``strict=True``, the state dict that ``jasc_pretrained.equivalence.seeded_state_dict`` draws for jasc's model from a
seed, runs both on fixed signals, and writes the official outputs (small slices) with the seed and both parameter
counts to ``tests/fixtures/pretrained/``. ``tests/test_pretrained_equivalence.py`` rebuilds jasc's models from the
seed alone and matches those outputs to 1e-4. Nothing of the official code enters the repository.

What it needs (docs/pretrained.md, "Equivalence"):

    git clone https://github.com/microsoft/unilm            # beats/BEATs.py, backbone.py, modules.py
    git clone https://github.com/fschmid56/EfficientAT      # models/mn/*, models/preprocess.py, helpers/utils.py
    pip download --no-deps torchaudio torchvision -d wheels  # only pure-Python files are taken from them

The official code imports torchaudio (Kaldi fbank and mel banks) and torchvision (ConvNormActivation), whose compiled
parts need a matching torch build. Only ``torchaudio/compliance/kaldi.py`` and ``torchvision/ops/misc.py`` run, both
pure Python, so they are unpacked from the wheels, unmodified, into the scratch folder beside two-line stand-ins of
their packages' ``__init__``/``utils`` (written below: nothing else of either package is imported).

    python tools/pretrained_equivalence.py --unilm unilm --efficientat EfficientAT \
        --torchaudio-wheel wheels/torchaudio-*.whl --torchvision-wheel wheels/torchvision-*.whl

``--unilm`` / ``--efficientat`` take a checkout or a bare git directory (read at HEAD).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from jasc_pretrained.beats import BeatsEncoder
from jasc_pretrained.efficientat import EfficientATEncoder
from jasc_pretrained.equivalence import fixed_signal, seeded_state_dict

REPO = Path(__file__).resolve().parents[1]
SEED = 20260529
#: Clips, seconds: 3 s of BEATs gives 18 x 8 = 144 tokens, so offsets beyond the 80 exact buckets occur.
BEATS_SIGNAL, EFFICIENTAT_SIGNAL = (2, 3.0), (2, 2.0)
WIDTHS = {"mn04": 0.4, "mn10": 1.0}
#: BEATs_iter3_plus_AS2M.pt's checkpoint["cfg"] (the fine-tuned cpt1/cpt2 add finetuned_model and predictor_class).
BEATS_ITER3_PLUS_CFG = {
    "encoder_layers": 12, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
    "activation_fn": "gelu", "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05, "dropout_input": 0.0, "layer_norm_first": False, "conv_bias": False, "conv_pos": 128,
    "conv_pos_groups": 16, "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800,
    "gru_rel_pos": True, "deep_norm": True, "input_patch_size": 16, "layer_wise_gradient_decay_ratio": 0.6,
    "embed_dim": 512,
}
#: A small BEATs (2 layers, width 96) through the same code paths, for a fast test in the default test run.
BEATS_SMALL = {"layers": 2, "dim": 96, "ffn_dim": 192, "heads": 12, "embed_dim": 64}
BEATS_SMALL_CFG = {"encoder_layers": 2, "encoder_embed_dim": 96, "encoder_ffn_embed_dim": 192,
                   "encoder_attention_heads": 12, "embed_dim": 64}
UNILM_FILES = ("beats/BEATs.py", "beats/backbone.py", "beats/modules.py")
EFFICIENTAT_FILES = ("models/__init__.py", "models/mn/__init__.py", "models/mn/model.py", "models/mn/block_types.py",
                     "models/mn/utils.py", "models/mn/attention_pooling.py", "models/preprocess.py",
                     "helpers/__init__.py", "helpers/utils.py", "metadata/class_labels_indices.csv")
#: Stand-ins for the package files the pure-Python modules import from (written by this tool, not copied).
STAND_INS = {
    "torchaudio/__init__.py": "from . import compliance  # only compliance.kaldi is unpacked\n",
    "torchvision/__init__.py": "",
    "torchvision/ops/__init__.py": "",
    "torchvision/utils.py": (
        "import collections.abc, itertools\n"
        "def _log_api_usage_once(obj):\n    pass\n"
        "def _make_ntuple(x, n):\n"
        "    if isinstance(x, collections.abc.Iterable):\n        return tuple(x)\n"
        "    return tuple(itertools.repeat(x, n))\n"),
}


def read_source(root: Path, path: str) -> bytes | None:
    """A file of a checkout or of a bare git directory at HEAD; None when it does not exist."""
    if (root / path).is_file():
        return (root / path).read_bytes()
    git = subprocess.run(["git", f"--git-dir={root}", "show", f"HEAD:{path}"], capture_output=True)
    return git.stdout if git.returncode == 0 else None


def source_commit(root: Path) -> str:
    git_dir = root / ".git" if (root / ".git").exists() else root
    out = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def build_scratch(args: argparse.Namespace) -> Path:
    """Lay out the official code and the two pure-Python modules in a folder outside the repository."""
    scratch = Path(args.work or tempfile.mkdtemp(prefix="jasc_official_")).resolve()
    if scratch == REPO or REPO in scratch.parents:
        sys.exit(f"--work {scratch}: the official code must stay outside the repository ({REPO})")
    for root, files, target in ((args.unilm, UNILM_FILES, "unilm"), (args.efficientat, EFFICIENTAT_FILES, "efficientat")):
        for path in files:
            data = read_source(Path(root), path)
            if data is None and path.endswith("__init__.py"):
                data = b""  # namespace folders in the official repository
            if data is None:
                sys.exit(f"{root}: {path} not found (is it a clone of the official repository?)")
            (scratch / target / path).parent.mkdir(parents=True, exist_ok=True)
            (scratch / target / path).write_bytes(data)
    for wheel, member in ((args.torchaudio_wheel, "torchaudio/compliance/kaldi.py"),
                          (args.torchaudio_wheel, "torchaudio/compliance/__init__.py"),
                          (args.torchvision_wheel, "torchvision/ops/misc.py")):
        with zipfile.ZipFile(wheel) as archive:
            (scratch / "site" / member).parent.mkdir(parents=True, exist_ok=True)
            (scratch / "site" / member).write_bytes(archive.read(member))
    for path, text in STAND_INS.items():
        (scratch / "site" / path).parent.mkdir(parents=True, exist_ok=True)
        (scratch / "site" / path).write_text(text)
    return scratch


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def record_beats(scratch: Path, jasc_config: dict, official_config: dict) -> tuple[dict[str, np.ndarray], dict]:
    if str(scratch / "unilm" / "beats") not in sys.path:
        sys.path.insert(0, str(scratch / "unilm" / "beats"))
    from BEATs import BEATs, BEATsConfig  # the official module

    jasc = BeatsEncoder({**jasc_config, "predictor_classes": 527, "allow_random_init": True}).eval()
    state = seeded_state_dict(jasc.beats, SEED)
    config = {**BEATS_ITER3_PLUS_CFG, **official_config}
    tuned = BEATs(BEATsConfig({**config, "finetuned_model": True, "predictor_class": 527})).eval()
    tuned.load_state_dict(state, strict=True)
    plain = BEATs(BEATsConfig(config)).eval()
    plain.load_state_dict({k: v for k, v in state.items() if not k.startswith("predictor.")}, strict=True)
    wave = torch.from_numpy(fixed_signal(*BEATS_SIGNAL, 16000))
    with torch.no_grad():
        fbank = plain.preprocess(wave)
        tokens, _ = plain.extract_features(wave)
        probs, _ = tuned.extract_features(wave)
        logits = tuned.predictor(tokens).mean(dim=1)  # what extract_features passes to its sigmoid
    counts = {"official_pretrained": n_params(plain), "official_finetuned": n_params(tuned),
              "jasc_pretrained": n_params(BeatsEncoder({**jasc_config, "allow_random_init": True})), "jasc_finetuned": n_params(jasc)}
    outputs = {"fbank_head": fbank[:, :20].numpy(), "tokens_head": tokens[:, :, :32].numpy(),
               "token_mean": tokens.mean(dim=1).numpy(), "logits": logits.numpy(), "probs": probs.numpy(),
               "tokens_shape": np.array(tokens.shape)}
    return outputs, counts


def record_efficientat(scratch: Path, width: float) -> tuple[dict[str, np.ndarray], dict]:
    root = scratch / "efficientat"
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.chdir(root)  # helpers/utils.py reads metadata/class_labels_indices.csv relative to the working folder
    with contextlib.redirect_stdout(io.StringIO()):  # get_model prints the whole network
        from models.mn.model import get_model
        from models.preprocess import AugmentMelSTFT

        official = get_model(width_mult=width, pretrained_name=None, head_type="mlp").eval()
        mel_module = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, freqm=0, timem=0).eval()
    jasc = EfficientATEncoder({"width_mult": width, "allow_random_init": True}).eval()
    official.load_state_dict(seeded_state_dict(jasc.mn, SEED), strict=True)
    wave = torch.from_numpy(fixed_signal(*EFFICIENTAT_SIGNAL, 32000))
    with torch.no_grad():
        mel = mel_module(wave)
        feature_map = official.features(mel.unsqueeze(1))
        logits, embedding = official(mel.unsqueeze(1))
    outputs = {"mel_head": mel[:, :, :20].numpy(), "map_head": feature_map[:, :48].numpy(),
               "map_mean": feature_map.mean(dim=1).numpy(), "logits": logits.numpy(), "embedding": embedding.numpy(),
               "map_shape": np.array(feature_map.shape)}
    return outputs, {"official": n_params(official), "jasc": n_params(jasc)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unilm", required=True, help="microsoft/unilm checkout or bare git directory")
    parser.add_argument("--efficientat", required=True, help="fschmid56/EfficientAT checkout or bare git directory")
    parser.add_argument("--torchaudio-wheel", required=True, help="a torchaudio wheel (compliance/kaldi.py is used)")
    parser.add_argument("--torchvision-wheel", required=True, help="a torchvision wheel (ops/misc.py is used)")
    parser.add_argument("--work", help="scratch folder outside the repository (default: a new temporary folder)")
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "pretrained"), help="fixture folder")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # reproducible float summation order
    scratch = build_scratch(args)
    sys.path.insert(0, str(scratch / "site"))
    meta = {"seed": SEED, "torch": torch.__version__, "beats_signal": BEATS_SIGNAL,
            "efficientat_signal": EFFICIENTAT_SIGNAL, "unilm_commit": source_commit(Path(args.unilm)),
            "efficientat_commit": source_commit(Path(args.efficientat)),
            "torchaudio_wheel": Path(args.torchaudio_wheel).name, "torchvision_wheel": Path(args.torchvision_wheel).name,
            "parameters": {}}
    meta["beats_small"] = BEATS_SMALL
    for name, jasc_config, official_config in (("beats", {}, {}), ("beats_small", BEATS_SMALL, BEATS_SMALL_CFG)):
        outputs, meta["parameters"][name] = record_beats(scratch, jasc_config, official_config)
        np.savez_compressed(out / f"{name}.npz", **outputs)
    for name, width in WIDTHS.items():
        outputs, meta["parameters"][name] = record_efficientat(scratch, width)
        np.savez_compressed(out / f"efficientat_{name}.npz", **outputs)
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["parameters"], indent=2))
    print(f"official code in {scratch}; fixtures in {out}")


if __name__ == "__main__":
    main()
