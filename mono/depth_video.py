"""A video of the input frames beside their depth pictures: MP4 (PyAV) or animated GIF (PIL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_FORMATS = (".mp4", ".gif")
DEFAULT_FPS = 10.0
# H.264 where this PyAV build has an encoder for it, else MPEG-4 part 2 (always built in).
_MP4_CODECS = ("libx264", "h264", "mpeg4")


def _mp4_codec() -> str:
    import av

    for name in _MP4_CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises several types for an unknown encoder
            continue
        return name
    raise RuntimeError(f"this PyAV build has none of the encoders {_MP4_CODECS}")


class SideBySideVideo:
    """Writes ``[frame | picture]`` pairs to ``path`` (.mp4 or .gif), one call per frame.

    Args:
        path: the video file; its suffix picks the format.
        fps: frames per second.

    Every frame must have the first frame's size. MP4 frames are padded to even sizes (H.264
    and MPEG-4 store colour at half resolution); GIF frames are kept in memory until
    :meth:`close`.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_FORMATS:
            raise ValueError(f"--video {self.path}: choose a {' or '.join(VIDEO_FORMATS)} file")
        self.fps = fps
        self.frames = 0
        self._size: tuple[int, int] | None = None
        self._gif: list[Image.Image] = []
        self._container = self._stream = None

    def write(self, frame: np.ndarray, picture: np.ndarray, name: str = "") -> None:
        """Append one frame: (H, W, 3) uint8 input and (H, W, 3) uint8 depth picture."""
        if self._size is None:
            self._size = frame.shape[:2]
            self._open()
        if frame.shape[:2] != self._size:
            raise ValueError(
                f"--video: frame {name} is {frame.shape[1]}x{frame.shape[0]} but the first was "
                f"{self._size[1]}x{self._size[0]}; a video needs frames of one size"
            )
        pair = np.concatenate([frame, picture], axis=1)
        if self._stream is None:
            self._gif.append(Image.fromarray(pair))
        else:
            import av

            h, w = pair.shape[:2]
            pair = np.pad(pair, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            video_frame = av.VideoFrame.from_ndarray(pair, format="rgb24")
            self._container.mux(self._stream.encode(video_frame))
        self.frames += 1

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix.lower() != ".mp4":
            return
        import fractions

        import av

        h, w = self._size
        self._container = av.open(str(self.path), "w")
        rate = fractions.Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(_mp4_codec(), rate=rate)
        self._stream.width, self._stream.height = 2 * w + (2 * w) % 2, h + h % 2
        self._stream.pix_fmt = "yuv420p"

    def close(self) -> None:
        if self._stream is not None:
            self._container.mux(self._stream.encode(None))  # flush buffered frames
            self._container.close()
            self._stream = None
        elif self._gif:
            duration = round(1000.0 / self.fps)
            first, *rest = self._gif
            first.save(self.path, save_all=True, append_images=rest, duration=duration, loop=0)
            self._gif = []

    def __enter__(self) -> SideBySideVideo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
