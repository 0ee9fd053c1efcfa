"""Monodepth2's published KITTI models by name, downloaded once into a local cache.

``--weights mono_640x192`` (or any name of :data:`PUBLISHED_MODELS`) works wherever a weights
folder does. The zip is fetched from Niantic's bucket as the reference's
``utils.download_model_if_doesnt_exist`` does, checked against the MD5 that the reference
publishes, and unzipped into ``<cache>/<name>/``; the cache is ``$MONO_CACHE/models`` or
``~/.cache/mono/models``. ``MONO_MODEL_URL_BASE`` replaces the bucket's address (a mirror, or
a local server in the tests).

Every step writes beside its target and renames at the end, so an interrupted download or a
file with the wrong checksum never leaves something that looks like a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_URL_BASE = "https://storage.googleapis.com/niantic-lon-static/research/monodepth2"

# name -> MD5 of <name>.zip, as nianticlabs/monodepth2's utils.py lists them.
PUBLISHED_MODELS = {
    "mono_640x192": "a964b8356e08a02d009609d9e3928f7c",
    "stereo_640x192": "3dfb76bcff0786e4ec07ac00f658dd07",
    "mono+stereo_640x192": "c024d69012485ed05d7eaa9617a96b81",
    "mono_no_pt_640x192": "9c2f071e35027c895a4728358ffc913a",
    "stereo_no_pt_640x192": "41ec2de112905f85541ac33a854742d1",
    "mono+stereo_no_pt_640x192": "46c3b824f541d143a45c37df65fbab0a",
    "mono_1024x320": "0ab0766efdfeea89a0d9ea8ba90e1e63",
    "stereo_1024x320": "afc2f2126d70cf3fdf26b550898b501a",
    "mono+stereo_1024x320": "cdc5fc9b23513c07d5b19235d9ef08f7",
}
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


class ModelDownloadError(FileNotFoundError):
    """A published model is not in the cache and could not be fetched or verified."""


def cache_dir() -> Path:
    """Folder holding one sub-folder per downloaded model."""
    root = os.environ.get("MONO_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "mono"
    return base / "models"


def model_url(name: str) -> str:
    """Where ``<name>.zip`` is downloaded from (``+`` is escaped, as in the reference's URLs)."""
    base = os.environ.get("MONO_MODEL_URL_BASE", DEFAULT_URL_BASE).rstrip("/")
    return f"{base}/{urllib.parse.quote(name)}.zip"


def resolve_weights(spec: str | Path, option: str = "--weights", log=print) -> Path:
    """The weights folder that ``--weights SPEC`` means.

    Args:
        spec: an existing folder (returned as it is, checked later by the loader) or the
            name of a published model (downloaded into :func:`cache_dir` on first use).
        option: the option that gave SPEC, for the messages.
        log: sink for the download messages, None for silence.

    Raises:
        ModelDownloadError: SPEC is neither a folder nor a published name, or the download
            failed (offline, wrong checksum, not a weights zip); the message says how to
            place the files by hand.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    name = str(spec)
    if name not in PUBLISHED_MODELS:
        raise ModelDownloadError(
            f"{option} {name}: no such folder, and not a published Monodepth2 model "
            f"(choose one of {', '.join(PUBLISHED_MODELS)})"
        )
    return fetch_model(name, log=log)


def fetch_model(name: str, log=print) -> Path:
    """``<cache>/<name>/`` holding the published model ``name``, downloading it if absent."""
    folder = cache_dir() / name
    if (folder / "encoder.pth").is_file():
        return folder
    log = log or (lambda _msg: None)
    url, md5 = model_url(name), PUBLISHED_MODELS[name]
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f"{name}.zip.partial"
    log(f"-> Downloading {name} from {url}")
    try:
        got = _download(url, partial)
        if got != md5:
            raise ModelDownloadError(
                f"{url}: the download's MD5 is {got}, not the published {md5}; it was not "
                "kept (a broken mirror or an interrupted transfer: try again)"
            )
        _unzip(partial, folder, url)
    finally:
        partial.unlink(missing_ok=True)
    log(f"   {name} unzipped to {folder}")
    return folder


def _by_hand(url: str, folder: Path) -> str:
    return (
        f"download {url} elsewhere and unzip it so that {folder / 'encoder.pth'} exists, "
        "or pass --weights <folder>"
    )


def _download(url: str, target: Path) -> str:
    """Stream ``url`` into ``target``; returns the MD5 hex digest of what was written."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            with target.open("wb") as f:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    f.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).stem
        raise ModelDownloadError(
            f"could not download {url} ({reason}); offline? {_by_hand(url, cache_dir() / name)}"
        ) from None
    return digest.hexdigest()


def _unzip(archive: Path, folder: Path, url: str) -> None:
    """Extract into a hidden sibling folder, then rename it to ``folder``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(staging)
        except zipfile.BadZipFile as err:
            raise ModelDownloadError(f"{url}: not a zip archive ({err})") from None
        if not (staging / "encoder.pth").is_file():
            found = sorted(p.name for p in staging.iterdir())
            raise ModelDownloadError(
                f"{url}: the archive holds {found}, not a Monodepth2 weights folder "
                "(encoder.pth, depth.pth)"
            )
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
