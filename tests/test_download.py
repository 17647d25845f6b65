"""``jasc data download`` against a local HTTP server: md5 checks, cut connections, unsafe archives, kill -9."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from jasc_core import DataError, component
from jasc_datasets import download as dl
from jasc_datasets import packages
from jasc_datasets.cli import data_app
from jasc_datasets.packages import Package

HEADER = "path\tscene_label\tevent_start_time\tevent_end_time\tevent_label\n"
META_DEV = "meta/meta_development.txt"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def wav_bytes(seconds: float, sr: int = 8000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * sr), dtype=np.float32), sr, format="WAV")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None,
              hardlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for kind, links in ((tarfile.SYMTYPE, symlinks or {}), (tarfile.LNKTYPE, hardlinks or {})):
            for name, target in links.items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tf.addfile(info)
    return buffer.getvalue()


class Server:
    """A bounded HTTP server on 127.0.0.1 serving ``files`` (path -> bytes); ``cut[path] = n`` makes the next n
    responses for that path send the full Content-Length, half the body, then close the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                outer.requests.append(path)
                data = outer.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if outer.cut.get(path, 0) > 0:
                    outer.cut[path] -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, package: Package, data: bytes) -> None:
        self.files[f"/{package.record}/{package.filename}"] = data

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = Server()
    monkeypatch.setenv(packages.MIRROR_ENV, srv.url)
    monkeypatch.setenv(packages.DATA_ENV, str(tmp_path / "home"))
    yield srv
    srv.close()


def package(filename: str, data: bytes, record: str = "123", md5_: str | None = "auto",
            dataset: str = "tut-joint", part: str = "dev") -> Package:
    return Package(dataset, part, record, filename, len(data), md5(data) if md5_ == "auto" else md5_)


def use_registry(monkeypatch, rows: list[Package]) -> None:
    monkeypatch.setattr(packages, "load_packages", lambda: list(rows))


def tiny_tut_joint(server: Server, monkeypatch) -> list[Package]:
    """A two-file 'tut-joint': an audio zip in the TUT package layout and the joint metadata file."""
    audio = zip_bytes({"TUT-sound-events-2017-development/audio/street/a001.wav": wav_bytes(10.0),
                       "TUT-acoustic-scenes-2016-evaluation/audio/b001.wav": wav_bytes(10.0)})
    meta_dev = (HEADER + "TUT-sound-events-2017-development/audio/street/a001.wav\tcity_center\t1.0\t3.0\tcar\n")
    meta_eval = HEADER + "TUT-acoustic-scenes-2016-evaluation/audio/b001.wav\toffice\t2.0\t4.0\tfan\n"
    rows = [package("TUT-tiny.audio.1.zip", audio, part="dev"),
            package(META_DEV, meta_dev.encode(), record="github:someone/meta@abc", part="dev"),
            package("meta/meta_evaluation.txt", meta_eval.encode(), record="github:someone/meta@abc", part="eval")]
    server.add(rows[0], audio)
    server.files["/someone/meta/abc/" + META_DEV] = meta_dev.encode()
    server.files["/someone/meta/abc/meta/meta_evaluation.txt"] = meta_eval.encode()
    use_registry(monkeypatch, rows)
    return rows


# -- registry and URLs -------------------------------------------------------------------------------------------


def test_shipped_registry_matches_the_shared_table() -> None:
    rows = packages.load_packages()
    assert {r.dataset for r in rows} == set(packages.DATASETS)
    tut = packages.packages_of("tut-joint")
    assert len(tut) == 22 and sum(p.size for p in tut) == 17_448_405_383
    meta = [p for p in tut if not p.is_archive]
    assert [p.md5 for p in meta] == ["a8e28c69759dbe26741b6254a9b350d7", "fe110db35830f8660f77b571cf9cb260"]
    assert all(p.md5 and len(p.md5) == 32 for p in rows if p.dataset != "desed")
    assert {p.part for p in packages.packages_of("tau-2022-mobile", ("dev", "eval"))} == {"dev", "eval"}
    assert {p.part for p in packages.packages_of("tau-2022-mobile")} == {"dev"}
    with pytest.raises(DataError, match="no part nope"):
        packages.packages_of("tau-2022-mobile", ("nope",))


def test_urls_use_zenodo_and_the_pinned_commit_unless_mirrored(monkeypatch) -> None:
    monkeypatch.delenv(packages.MIRROR_ENV, raising=False)
    zen = Package("x", "dev", "400515", "a.zip", 1, "0" * 32)
    assert zen.url() == "https://zenodo.org/records/400515/files/a.zip?download=1"
    git = Package("x", "dev", "github:Owner/repo@c0ffee", "meta/m.txt", 1, "0" * 32)
    assert git.url() == "https://raw.githubusercontent.com/Owner/repo/c0ffee/meta/m.txt"
    monkeypatch.setenv(packages.MIRROR_ENV, "http://mirror/base/")
    assert zen.url() == "http://mirror/base/400515/a.zip" and git.url() == "http://mirror/base/Owner/repo/c0ffee/meta/m.txt"


def test_data_home_is_the_env_var_else_the_user_data_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(packages.DATA_ENV, str(tmp_path / "d"))
    assert packages.default_root("desed") == tmp_path / "d" / "desed"
    monkeypatch.delenv(packages.DATA_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert packages.data_home() == tmp_path / "xdg" / "jasc"


# -- downloads ---------------------------------------------------------------------------------------------------


def test_good_archive_lands_and_loads_through_the_joint_reader(server, monkeypatch, tmp_path) -> None:
    rows = tiny_tut_joint(server, monkeypatch)
    result = dl.download("tut-joint", retries=0)
    root = tmp_path / "home" / "tut-joint"
    assert result.root == root and len(result.fetched) == 3
    assert (root / "TUT-sound-events-2017-development/audio/street/a001.wav").is_file()
    assert not (root / "archives" / rows[0].filename).exists()  # unpacked, then deleted
    assert not list(root.glob(f"{dl.EXTRACTING_PREFIX}*"))
    assert dl.missing_packages("tut-joint") == []
    dataset = component("dataset", "joint")({})
    dataset.prepare()
    assert dataset.stand_in is None
    train = dataset.load("train")
    assert [c.scene for c in train.clips] == ["city_center"] and train.clips[0].events[0].label == "car"
    assert dataset.load("eval").clips[0].scene == "office"
    served = len(server.requests)
    again = dl.download("tut-joint", retries=0)
    assert again.fetched == [] and len(again.already) == 3 and len(server.requests) == served


def test_wrong_md5_is_refused_and_deleted(server, monkeypatch, tmp_path) -> None:
    data = zip_bytes({"d/a.txt": b"hello"})
    row = package("bad.zip", data, record="777", md5_="0" * 32)
    server.add(row, data)
    use_registry(monkeypatch, [row])
    with pytest.raises(DataError, match=r"Zenodo record 777 file bad.zip: md5 does not match"):
        dl.download("tut-joint", retries=0)
    root = tmp_path / "home" / "tut-joint"
    assert not (root / "archives" / "bad.zip").exists()
    assert not list((root / "archives").iterdir())  # no temporary file left either
    assert not (root / "d").exists() and not dl.is_present(root, row)


def test_a_cut_download_is_restarted_and_never_passes_as_complete(server, monkeypatch, tmp_path) -> None:
    data = zip_bytes({"d/big.bin": os.urandom(200_000)})
    row = package("cut.zip", data)
    server.add(row, data)
    server.cut[f"/123/{row.filename}"] = 1
    use_registry(monkeypatch, [row])
    root = tmp_path / "home" / "tut-joint"
    # Without retries the cut connection fails: nothing under the file's name, no marker.
    with pytest.raises(DataError, match="cut.zip: download from .* failed after 1 tries"):
        dl.download("tut-joint", retries=0)
    assert not (root / "archives" / "cut.zip").exists() and not list((root / "archives").iterdir())
    assert not dl.is_present(root, row)
    # Cut again, with one retry: the second, complete transfer is the one that lands, verified.
    server.cut[f"/123/{row.filename}"] = 1
    dl.download("tut-joint", retries=1)
    assert (root / "d" / "big.bin").read_bytes() == zipfile.ZipFile(io.BytesIO(data)).read("d/big.bin")
    assert dl.is_present(root, row)


def test_unpublished_md5_is_recorded_after_a_full_read(server, monkeypatch, tmp_path) -> None:
    data = tar_bytes({"dataset/metadata/eval/public.tsv": b"filename\tonset\toffset\tevent_label\n"})
    row = package("DESED_public_eval.tar.gz", data, md5_=None, dataset="desed", part="eval")
    server.add(row, data)
    use_registry(monkeypatch, [row])
    lines: list[str] = []
    dl.download("desed", parts=("eval",), report=lines.append, retries=0)
    assert any("no published md5" in line for line in lines)
    marker = dl.marker_path(tmp_path / "home" / "desed", row).read_text()
    assert md5(data) in marker and '"md5_published": false' in marker


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize(("member", "why"), [("../escape.txt", "'..'"), ("/abs/escape.txt", "absolute"),
                                             ("ok/../../escape.txt", "'..'")])
def test_unsafe_members_are_refused_and_nothing_is_written(tmp_path, kind, member, why) -> None:
    good = {"pkg/fine.txt": b"fine"}
    data = zip_bytes({**good, member: b"evil"}) if kind == "zip" else tar_bytes({**good, member: b"evil"})
    archive = tmp_path / f"a.{'zip' if kind == 'zip' else 'tar.gz'}"
    archive.write_bytes(data)
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with pytest.raises(DataError, match=f"member '{member}' is .*{why}"):
        dl.extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "deep" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not Path("/abs/escape.txt").exists()


@pytest.mark.parametrize("kind", ["zip", "tar-symlink", "tar-hardlink"])
def test_link_members_are_refused(tmp_path, kind) -> None:
    if kind == "zip":
        data = zip_bytes({"pkg/a.txt": b"a"}, links={"pkg/link": "/etc/passwd"})
    elif kind == "tar-symlink":
        data = tar_bytes({"pkg/a.txt": b"a"}, symlinks={"pkg/link": "/etc/passwd"})
    else:
        data = tar_bytes({"pkg/a.txt": b"a"}, hardlinks={"pkg/link": "/etc/passwd"})
    archive = tmp_path / ("a.zip" if kind == "zip" else "a.tar.gz")
    archive.write_bytes(data)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(DataError, match="member 'pkg/link' is a (link|special)"):
        dl.extract(archive, target)
    assert list(target.iterdir()) == []


def test_a_damaged_archive_is_refused(tmp_path) -> None:
    data = bytearray(zip_bytes({"pkg/a.bin": os.urandom(5000)}))
    data[100:110] = b"XXXXXXXXXX"  # inside the member's data: the CRC check fails while reading
    archive = tmp_path / "a.zip"
    archive.write_bytes(bytes(data))
    (tmp_path / "t").mkdir()
    with pytest.raises(DataError, match="damaged archive"):
        dl.extract(archive, tmp_path / "t")
    assert list((tmp_path / "t").iterdir()) == []


KILLED_EXTRACTION = textwrap.dedent("""
    import sys, time, zipfile
    from pathlib import Path
    from jasc_datasets import download as dl
    from jasc_datasets.packages import Package

    slow = zipfile.ZipFile.extract
    def extract(self, member, path=None, pwd=None):  # a slow disk: the parent kills us mid-way
        time.sleep(0.02)
        return slow(self, member, path, pwd)
    zipfile.ZipFile.extract = extract
    root, md5 = Path(sys.argv[1]), sys.argv[2]
    dl.install(Package("tut-joint", "dev", "1", "many.zip", None, md5), root, retries=0)
    print("finished", flush=True)
""")


def test_kill_9_during_extraction_then_rerun_gives_a_complete_verified_tree(tmp_path) -> None:
    members = {f"pkg/audio/f{i:03d}.txt": f"file {i}".encode() for i in range(300)}
    data = zip_bytes(members)
    root = tmp_path / "root"
    (root / "archives").mkdir(parents=True)
    (root / "archives" / "many.zip").write_bytes(data)  # already downloaded: pooch only checks its md5
    row = Package("tut-joint", "dev", "1", "many.zip", None, md5(data))
    child = subprocess.Popen([sys.executable, "-c", KILLED_EXTRACTION, str(root), md5(data)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = root / f"{dl.EXTRACTING_PREFIX}many.zip"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(staging.rglob("*.txt"))) < 20:
        assert child.poll() is None, child.communicate()
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert staging.is_dir() and not dl.is_present(root, row)  # half done, and not trusted
    assert not (root / "pkg").exists()
    dl.install(row, root, retries=0)
    assert dl.is_present(root, row) and not staging.exists()
    assert sorted(p.relative_to(root).as_posix() for p in (root / "pkg").rglob("*.txt")) == sorted(members)
    assert all((root / name).read_bytes() == content for name, content in members.items())


# -- CLI ---------------------------------------------------------------------------------------------------------


def test_cli_dry_run_download_and_list(server, monkeypatch, tmp_path) -> None:
    tiny_tut_joint(server, monkeypatch)
    runner = CliRunner()
    dry = runner.invoke(data_app, ["download", "tut-joint", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 of 3 files to fetch" in dry.output and f"{server.url}/123/TUT-tiny.audio.1.zip" in dry.output
    assert server.requests == []
    listed = runner.invoke(data_app, ["list"])
    assert listed.exit_code == 0 and "0/2 files" in listed.output and "0/1 files" in listed.output
    got = runner.invoke(data_app, ["download", "tut-joint"])
    assert got.exit_code == 0, got.output
    assert "tut-joint: complete" in got.output
    listed = runner.invoke(data_app, ["list"])
    assert "2/2 files" in listed.output and "1/1 files" in listed.output
    assert str(tmp_path / "home" / "tut-joint") in listed.output


def test_cli_unwritable_folder_is_one_line_naming_the_path(server, monkeypatch, tmp_path, cli) -> None:
    tiny_tut_joint(server, monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _out, err = cli("data", "download", "tut-joint", "--root", str(blocker / "sub"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "a-file" in err and "Not a directory" in err
    assert "Traceback" not in err
