"""Published Monodepth2 models by name: download from a local server, checksum, cache, errors."""

import hashlib
import http.server
import socket
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mono import model_zoo
from mono.cli import main
from mono.nets import DepthNet
from mono.nets.monodepth2_format import save_monodepth2

NAME = "mono+stereo_640x192"  # a '+' in the name: the URL escapes it as the reference's does
H, W = 64, 192  # the served weights are small; only their name is borrowed


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A local server of ``mono%2Bstereo_640x192.zip`` (a mono weights folder, zipped)."""
    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    folder = save_monodepth2(root / "weights", DepthNet(18), H, W, use_stereo=True)
    site = root / "site"
    site.mkdir()
    archive = site / f"{NAME}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for name in ("encoder.pth", "depth.pth"):
            z.write(folder / name, name)
    handler = type("Handler", (_CountingHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "md5": md5, "folder": folder,
           "requests": handler.requests}  # fmt: skip
    server.shutdown()
    thread.join()


@pytest.fixture
def zoo(served, tmp_path, monkeypatch):
    """The cache in tmp_path, the server as the download address, its zip's MD5 published."""
    served["requests"].clear()
    monkeypatch.setenv("MONO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MONO_MODEL_URL_BASE", served["url"])
    monkeypatch.setitem(model_zoo.PUBLISHED_MODELS, NAME, served["md5"])
    return served


def _error(*args) -> str:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert isinstance(info.value.code, str)
    return info.value.code


def test_the_reference_urls_and_checksums(monkeypatch):
    monkeypatch.delenv("MONO_MODEL_URL_BASE", raising=False)
    base = "https://storage.googleapis.com/niantic-lon-static/research/monodepth2"
    assert model_zoo.model_url("mono+stereo_1024x320") == f"{base}/mono%2Bstereo_1024x320.zip"
    assert model_zoo.model_url("mono_640x192") == f"{base}/mono_640x192.zip"
    assert len(model_zoo.PUBLISHED_MODELS) == 9
    assert model_zoo.PUBLISHED_MODELS["mono_640x192"] == "a964b8356e08a02d009609d9e3928f7c"
    monkeypatch.setenv("MONO_CACHE", "/somewhere")
    assert model_zoo.cache_dir() == Path("/somewhere/models")


def test_download_once_then_the_cache(zoo, tmp_path, capsys):
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(tmp_path / "a.png")
    predict = ["predict", tmp_path / "a.png", "--out"]
    main([str(a) for a in [*predict, tmp_path / "by_name", "--weights", NAME]])
    out = capsys.readouterr().out
    cached = tmp_path / "cache" / "models" / NAME
    assert f"-> Downloading {NAME} from {zoo['url']}/mono%2Bstereo_640x192.zip" in out
    assert f"{NAME} unzipped to {cached}" in out
    assert zoo["requests"] == ["/mono%2Bstereo_640x192.zip"]
    assert sorted(p.name for p in cached.parent.iterdir()) == [NAME]  # no partial files left
    assert sorted(p.name for p in cached.iterdir()) == ["depth.pth", "encoder.pth"]
    main([str(a) for a in [*predict, tmp_path / "by_folder", "--weights", zoo["folder"]]])
    by_name = np.load(tmp_path / "by_name" / "a_disp.npy")
    assert np.array_equal(by_name, np.load(tmp_path / "by_folder" / "a_disp.npy"))

    # Second use, by every tool: the server is not contacted again.
    capsys.readouterr()
    main([str(a) for a in [*predict, tmp_path / "again", "--weights", NAME]])
    main([str(a) for a in ["export", "--weights", NAME, "--out", tmp_path / "x", "--format", "pt"]])
    assert "Downloading" not in capsys.readouterr().out
    assert zoo["requests"] == ["/mono%2Bstereo_640x192.zip"]
    assert np.array_equal(by_name, np.load(tmp_path / "again" / "a_disp.npy"))
    assert (tmp_path / "x" / "depth.pt").is_file()


def test_checksum_mismatch_is_refused_and_not_kept(zoo, tmp_path, monkeypatch):
    monkeypatch.setitem(model_zoo.PUBLISHED_MODELS, NAME, "0" * 32)
    message = _error("export", "--weights", NAME, "--out", tmp_path / "x", "--format", "pt")
    assert message == (
        f"mono export: {zoo['url']}/mono%2Bstereo_640x192.zip: the download's MD5 is "
        f"{zoo['md5']}, not the published {'0' * 32}; it was not kept (a broken mirror or an "
        "interrupted transfer: try again)"
    )
    assert list((tmp_path / "cache" / "models").iterdir()) == []
    assert len(zoo["requests"]) == 1


def test_offline_names_the_url_and_the_manual_route(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MONO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MONO_MODEL_URL_BASE", f"http://127.0.0.1:{port}/")
    url = f"http://127.0.0.1:{port}/mono_640x192.zip"
    message = _error("evaluate", "--weights", "mono_640x192", "--data", tmp_path)
    assert message == (
        f"mono evaluate: error: could not download {url} ([Errno 111] Connection refused); "
        f"offline? download {url} elsewhere and unzip it so that "
        f"{tmp_path / 'cache' / 'models' / 'mono_640x192' / 'encoder.pth'} exists, or pass "
        "--weights <folder>"
    )
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_an_unknown_name_lists_the_published_ones(tmp_path):
    names = ", ".join(model_zoo.PUBLISHED_MODELS)
    message = _error("predict", tmp_path, "--weights", "mono_9000x1")
    assert message == (
        "mono predict: --weights mono_9000x1: no such folder, and not a published Monodepth2 "
        f"model (choose one of {names})"
    )
    message = _error("validate", "--data.root", tmp_path, "--model.init_weights", "mono_9000x1")
    assert message == (
        "mono validate: error: --model.init_weights mono_9000x1: no such folder, and not a "
        f"published Monodepth2 model (choose one of {names})"
    )


def test_init_weights_by_name_scores_as_the_folder(zoo, synthetic_root, tmp_path, capsys):
    config = Path(__file__).resolve().parents[1] / "configs" / "synthetic.yaml"
    common = [
        "test", "--config", str(config), f"--data.root={synthetic_root}",
        "--data.synthesize=null", "--data.num_workers=0", "--data.batch_size=4",
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
        "--trainer.callbacks=[]", "--trainer.limit_test_batches=1", "--model.pretrained=false",
    ]  # fmt: skip
    scores = []
    for source in (NAME, zoo["folder"]):
        capsys.readouterr()
        main([*common, f"--model.init_weights={source}"])
        line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("model "))
        scores.append(line.split()[1:])
    assert scores[0] == scores[1]
    assert zoo["requests"] == ["/mono%2Bstereo_640x192.zip"]
