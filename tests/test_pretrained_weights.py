"""Pretrained weights: `jasc weights download` from a local server, the SHA-256 record, loading by name or path, and
the refusal to train a pretrained encoder from random weights unless the recipe allows it."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from jasc_core import ConfigError, DataError
from jasc_pretrained import weights
from jasc_pretrained.beats import BeatsEncoder
from jasc_pretrained.cli import weights_app
from jasc_pretrained.efficientat import EfficientATEncoder

runner = CliRunner()
SMALL_BEATS = {"layers": 1, "dim": 32, "ffn_dim": 64, "heads": 4, "embed_dim": 32}


class Server:
    """Serves files from a folder on 127.0.0.1 and counts the requests."""

    def __init__(self, folder: Path) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests += 1
                path = folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.requests = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A width-0.1 EfficientAT state dict served as mn01_as, and an empty weights home ($JASC_WEIGHTS)."""
    public = tmp_path / "public"
    public.mkdir()
    source = EfficientATEncoder({"width_mult": 0.1, "allow_random_init": True}).mn.state_dict()
    torch.save(source, public / "mn01.pt")
    home = tmp_path / "home"
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(home))
    server = Server(public)
    yield server, home, source
    server.close()


def test_download_records_the_hash_and_the_encoder_loads_by_name(served):
    server, home, source = served
    result = runner.invoke(weights_app, ["download", "mn01_as", "--url", f"{server.url}/mn01.pt"])
    assert result.exit_code == 0, result.output
    record = json.loads((home / "mn01_as.json").read_text())
    assert record["sha256"] == weights.sha256_of(home / "mn01_as_mAP_298.pt") and not record["sha256_published"]
    assert "recorded; checked at every later load" in result.output
    encoder = EfficientATEncoder({"width_mult": 0.1, "weights": "mn01_as"})
    assert encoder.stand_in is None
    assert all(torch.equal(encoder.mn.state_dict()[k], v) for k, v in source.items())
    again = runner.invoke(weights_app, ["download", "mn01_as", "--url", f"{server.url}/mn01.pt"])
    assert again.exit_code == 0 and server.requests == 1  # present and verified: not fetched again
    listing = runner.invoke(weights_app, ["list"])
    assert listing.exit_code == 0 and record["sha256"][:12] in listing.output


def test_a_changed_file_is_refused_at_load(served):
    server, home, _ = served
    weights.download("mn01_as", url=f"{server.url}/mn01.pt")
    with open(home / "mn01_as_mAP_298.pt", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(DataError, match="differs from the one recorded at its first download"):
        EfficientATEncoder({"width_mult": 0.1, "weights": "mn01_as"})


def test_a_published_hash_that_does_not_match_leaves_nothing(served, monkeypatch):
    server, home, _ = served
    entry = dataclasses.replace(weights.CHECKPOINTS["mn01_as"], sha256="0" * 64)
    monkeypatch.setitem(weights.CHECKPOINTS, "mn01_as", entry)
    with pytest.raises(DataError, match="mn01_as"):
        weights.download("mn01_as", url=f"{server.url}/mn01.pt")
    assert not (home / "mn01_as_mAP_298.pt").exists() and not (home / "mn01_as.json").exists()


def test_a_failed_download_leaves_nothing(served):
    server, home, _ = served
    with pytest.raises(DataError, match="download from .* failed"):
        weights.download("mn01_as", url=f"{server.url}/missing.pt")
    assert not any(path.suffix in {".pt", ".json"} for path in home.iterdir())


def test_missing_or_mismatched_weights_are_clear_errors(served):
    with pytest.raises(DataError, match="jasc weights download mn01_as"):
        EfficientATEncoder({"width_mult": 0.1, "weights": "mn01_as"})
    with pytest.raises(ConfigError, match=r"model.encoder.width_mult: weights mn04_as need width_mult: 0.4"):
        EfficientATEncoder({"width_mult": 0.1, "weights": "mn04_as"})
    with pytest.raises(ConfigError, match="weights of encoder 'efficientat', not 'beats'"):
        BeatsEncoder({**SMALL_BEATS, "weights": "mn04_as"})
    with pytest.raises(ConfigError, match="neither a name of `jasc weights list` nor a file"):
        EfficientATEncoder({"weights": "no/such/file.pt"})
    with pytest.raises(ConfigError, match="no pretrained weights named 'nope'"):
        weights.download("nope")


@pytest.mark.parametrize("build", [lambda: BeatsEncoder(SMALL_BEATS), lambda: EfficientATEncoder({"width_mult": 0.1})])
def test_no_weights_is_refused_unless_random_init_is_allowed(build):
    with pytest.raises(ConfigError, match="expects pretrained weights.*allow_random_init: true"):
        build()


def test_random_init_says_so():
    encoder = EfficientATEncoder({"width_mult": 0.1, "allow_random_init": True})
    assert "random weights" in encoder.stand_in and "efficientat" in encoder.stand_in


def test_beats_checkpoint_file_loads_and_its_layout_is_checked(tmp_path):
    source = BeatsEncoder({**SMALL_BEATS, "allow_random_init": True}).beats.state_dict()
    cfg = {"encoder_layers": 1, "deep_norm": True, "layer_norm_first": False, "max_distance": 800}
    torch.save({"cfg": cfg, "model": source}, tmp_path / "beats.pt")
    encoder = BeatsEncoder({**SMALL_BEATS, "weights": str(tmp_path / "beats.pt")})
    assert all(torch.equal(encoder.beats.state_dict()[k], v) for k, v in source.items())
    torch.save({"cfg": {**cfg, "deep_norm": False}, "model": source}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="deep_norm=False.*iter3"):
        BeatsEncoder({**SMALL_BEATS, "weights": str(tmp_path / "other.pt")})
    with pytest.raises(ConfigError, match="does not fit encoder 'beats'"):
        BeatsEncoder({**SMALL_BEATS, "dim": 64, "weights": str(tmp_path / "beats.pt")})


def test_a_run_from_random_weights_says_so_in_every_output(fakes, tmp_path):
    """allow_random_init: the phrase joins the data stand-in in run.json, metrics.json and the tables."""
    import engine_fakes

    from jasc_core.training import run_recipe

    recipe = engine_fakes.make_recipe(**{
        "data": {"name": "fake_data", "n_train": 8, "n_val": 4, "n_eval": 4},
        "features": {"name": "beats_fbank"}, "train.epochs": 1, "evaluate.plots": False,
        "model.encoder": {"name": "beats", **SMALL_BEATS, "allow_random_init": True}})
    run_dir = run_recipe(recipe, recipe_path="fake.yaml", out_dir=tmp_path / "run")
    phrase = "encoder 'beats' from random weights (allow_random_init), not the pretrained checkpoint"
    assert json.loads((run_dir / "run.json").read_text())["data_stand_in"] == phrase
    assert json.loads((run_dir / "metrics.json").read_text())["eval"]["data_stand_in"] == phrase
    assert phrase in (run_dir / "tables_eval.md").read_text()
