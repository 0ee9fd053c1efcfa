"""Procedural street for the synthetic drives: layout, camera path and vectorised ray casting.

Geometry lives in the *street frame*: KITTI camera axes (x right, y down, z forward) with the
street along +z, the road plane at ``y = CAMERA_HEIGHT`` and the cameras at ``y = 0``. The
cameras only yaw, so the road is level in every camera. Rays are scaled to unit camera z, so
the ray parameter of a hit *is* the KITTI depth (camera z) of that pixel.

Everything but the road is an axis-aligned box: buildings, parked cars (body + cabin), and the
"moving car", whose boxes live in the rig frame (camera 2) because it drives rigidly with the
cameras. Casting it in that frame makes its pixels bit-identical in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

CAMERA_HEIGHT = 1.65
STEREO_BASELINE = 0.54  # camera 3 sits this far to the right of camera 2
# Object ids of RenderedFrame.object_id.
SKY, ROAD, FACADE, PARKED_CAR, MOVING_CAR = 0, 1, 2, 3, 4
NEAR = 0.05  # metres; nothing is ever closer to a camera
_AHEAD, _BEHIND = 170.0, 15.0  # street-z range of boxes tested per frame

_CORNERS = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=bool)
_EDGES = np.array([(i, i | b) for i in range(8) for b in (1, 2, 4) if not i & b])


@dataclass(frozen=True, eq=False)
class Boxes:
    """Axis-aligned boxes with their surface parameters (N boxes).

    Attributes:
        lo, hi: (N, 3) corners in metres.
        kind: (N,) object id (FACADE, PARKED_CAR or MOVING_CAR).
        colour: (N, 3) base colour in [0, 1].
        params: (N, 4) texture parameters (see ``synth_texture.facade`` / ``synth_texture.car``).
        anchor: (N, 3) origin of the texture coordinates (building corner, car's ground centre).
    """

    lo: np.ndarray
    hi: np.ndarray
    kind: np.ndarray
    colour: np.ndarray
    params: np.ndarray
    anchor: np.ndarray

    def __len__(self) -> int:
        return len(self.lo)

    def __add__(self, other: Boxes) -> Boxes:
        """Concatenation: ``self``'s boxes, then ``other``'s."""
        return Boxes(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )

    def map(self, fn) -> Boxes:
        """The boxes with ``fn`` applied to every field (e.g. a slice)."""
        return Boxes(*(fn(getattr(self, f.name)) for f in fields(self)))

    @staticmethod
    def build(rows: list[tuple]) -> Boxes:
        """Boxes from (lo, hi, kind, colour, params, anchor) rows, sorted by their near z."""
        columns = [np.array(c, dtype=np.float64) for c in zip(*rows, strict=True)]
        columns[2] = columns[2].astype(np.int64)
        order = np.argsort(columns[0][:, 2], kind="stable")
        return Boxes(*(c[order] for c in columns))


# Wall and car-paint palettes (RGB in [0, 1]), jittered per object.
_WALLS = np.array([0.78, 0.72, 0.62, 0.66, 0.36, 0.28, 0.70, 0.70, 0.68, 0.85, 0.80, 0.60, 0.55,
                   0.58, 0.62, 0.80, 0.66, 0.52]).reshape(-1, 3)  # fmt: skip
_PAINTS = np.array([0.75, 0.75, 0.76, 0.15, 0.16, 0.18, 0.60, 0.08, 0.07, 0.12, 0.22, 0.50, 0.85,
                    0.85, 0.82, 0.35, 0.40, 0.32]).reshape(-1, 3)  # fmt: skip


def car_rows(rng, centre: np.ndarray, kind: int, length: float, width: float) -> list[tuple]:
    """Body and cabin boxes of a car whose ground centre is ``centre`` (x, ground y, z)."""
    paint = _PAINTS[rng.integers(len(_PAINTS))] * rng.uniform(0.9, 1.1)
    cabin_half = 0.27 * length
    rows = []
    for part, (half_w, y0, y1, half_l) in enumerate(
        [(0.5 * width, 0.95, 0.2, 0.5 * length), (0.5 * width - 0.08, 1.5, 0.95, cabin_half)]
    ):
        lo = centre + [-half_w, -y0, -half_l - (0.1 * length if part else 0.0)]
        hi = centre + [half_w, -y1, half_l - (0.1 * length if part else 0.0)]
        rows.append((lo, hi, kind, paint, [part, length, width, cabin_half], centre))
    return rows


def make_street(rng: np.random.Generator, z_end: float) -> Boxes:
    """Buildings (two rows per side, with gaps) and parked cars from z = -20 m to ``z_end``."""
    rows = []
    for side in (-1.0, 1.0):
        for setback, (len_lo, len_hi), (h_lo, h_hi), gap_p in (
            ((5.0, 9.0), (8.0, 22.0), (6.0, 18.0), 0.15),
            ((22.0, 34.0), (15.0, 40.0), (12.0, 30.0), 0.3),
        ):
            z = -25.0 - rng.uniform(0, 10)
            while z < z_end:
                if rng.random() < gap_p:
                    z += rng.uniform(4.0, 12.0)
                    continue
                length, depth = rng.uniform(len_lo, len_hi), rng.uniform(8.0, 14.0)
                near, height = rng.uniform(*setback), rng.uniform(h_lo, h_hi)
                xs = sorted([side * near, side * (near + depth)])
                lo = [xs[0], CAMERA_HEIGHT - height, z]
                hi = [xs[1], CAMERA_HEIGHT, z + length]
                wall = _WALLS[rng.integers(len(_WALLS))] * rng.uniform(0.85, 1.1, 3)
                # window spacing, floor height, window width and height fractions
                window = rng.uniform([2.2, 2.8, 0.35, 0.4], [3.6, 3.4, 0.6, 0.6])
                rows.append((lo, hi, FACADE, wall, window, lo))
                z += length
        z = -20.0
        while z < z_end:
            z += rng.uniform(1.0, 8.0)
            if rng.random() < 0.3:
                z += 5.0
                continue
            length = rng.uniform(3.8, 4.8)
            centre = np.array([side * rng.uniform(3.6, 3.8), CAMERA_HEIGHT, z + 0.5 * length])
            rows += car_rows(rng, centre, PARKED_CAR, length, rng.uniform(1.7, 1.9))
            z += length
    return Boxes.build(rows)


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation about the (down-pointing) y axis; yaw > 0 turns the camera to the right."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def camera_path(
    rng: np.random.Generator, frames: int, stationary: int, speed: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """Camera-2 poses in the street frame and the stationary stretch.

    The camera drives ``speed`` metres per frame along a lane that wanders sideways (two slow
    sines, under 0.6 m and 4 degrees of yaw), brakes over three frames, stands still for
    ``stationary`` frames and accelerates again.

    Returns:
        (frames, 4, 4) ``T_street_cam`` and the first and last frame of the stationary stretch.
    """
    lo = max(3, frames // 3)
    first = int(rng.integers(lo, max(lo, frames - stationary - 3 - frames // 6) + 1))
    last = first + stationary - 1
    steps = np.full(frames, speed)
    steps[0] = 0.0
    steps[first - 2 : first + 1] = speed * np.array([0.75, 0.5, 0.25])
    steps[first + 1 : last + 1] = 0.0
    steps[last + 1 : last + 4] = speed * np.array([0.25, 0.5, 0.75])[: max(0, frames - last - 1)]
    s = np.cumsum(steps)
    amp, wave, phase = np.array([0.4, 0.2]), np.array([80.0, 40.0]), rng.uniform(0, 2 * np.pi, 2)
    arg = 2 * np.pi * s[:, None] / wave + phase
    x = (amp * np.sin(arg)).sum(1)
    slope = (amp * 2 * np.pi / wave * np.cos(arg)).sum(1)
    poses = np.tile(np.eye(4), (frames, 1, 1))
    for t in range(frames):
        poses[t, :3, :3] = yaw_matrix(np.arctan(slope[t]))
        poses[t, :3, 3] = [x[t], 0.0, s[t]]
    return poses, (first, last)


@dataclass
class Hits:
    """Per-pixel result of ray casting one camera, (H, W) each.

    Attributes:
        depth: camera z of the nearest hit in metres, ``inf`` for sky.
        obj: object id (SKY, ROAD, ...).
        box: index of the hit box (static boxes first, then the moving car's), -1 otherwise.
        axis: axis of the hit face's normal (0, 1, 2), -1 for sky.
    """

    depth: np.ndarray
    obj: np.ndarray
    box: np.ndarray
    axis: np.ndarray


def camera_rays(K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) rays through the pixel centres of 0-based intrinsics ``K``, scaled to z = 1."""
    h, w = size
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    x = (cols - K[0, 2]) / K[0, 0]
    y = (rows - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def _screen_boxes(boxes: Boxes, R: np.ndarray, o: np.ndarray, K: np.ndarray, size):
    """Pixel window [r0, r1, c0, c1) that can contain each box, and its nearest camera z.

    The box is clipped at the near plane first: its silhouette is then the convex hull of the
    in-front corners and the points where its edges cross the plane.

    Returns:
        (N, 4) int windows (empty when the box is not visible) and (N,) nearest z.
    """
    corners = np.where(_CORNERS, boxes.hi[:, None], boxes.lo[:, None])  # (N, 8, 3)
    cam = (corners - o) @ R  # street -> camera: R^T (p - o)
    a, b = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]
    za, zb = a[..., 2] - NEAR, b[..., 2] - NEAR
    crosses = za * zb < 0
    s = np.where(crosses, za / np.where(crosses, za - zb, 1.0), 0.0)
    pts = np.concatenate([cam, a + s[..., None] * (b - a)], axis=1)
    valid = np.concatenate([cam[..., 2] > NEAR, crosses], axis=1)
    z = np.maximum(pts[..., 2], NEAR)
    u = np.where(valid, K[0, 0] * pts[..., 0] / z + K[0, 2], np.inf)
    v = np.where(valid, K[1, 1] * pts[..., 1] / z + K[1, 2], np.inf)
    h, w = size
    win = np.stack(
        [
            np.floor(v.min(1)),
            np.ceil(np.where(valid, v, -np.inf).max(1)) + 1,
            np.floor(u.min(1)),
            np.ceil(np.where(valid, u, -np.inf).max(1)) + 1,
        ],
        axis=1,
    )
    win[~valid.any(1)] = 0  # entirely behind the camera
    win = np.clip(win, 0, [h, h, w, w]).astype(np.int64)
    return win, np.where(valid, z, np.inf).min(1)


def cast_boxes(
    boxes: Boxes,
    R: np.ndarray,
    o: np.ndarray,
    rays: np.ndarray,
    K: np.ndarray,
    hits: Hits,
    offset: int = 0,
) -> None:
    """Z-buffer the boxes into ``hits`` in place (slab test, one pixel window per box).

    Boxes are visited nearest first, so a box whose window is already covered by nearer
    surfaces is skipped without testing its pixels.

    Args:
        boxes: boxes in some frame F.
        R, o: orientation (3, 3) and centre (3,) of the camera in F.
        rays: (H, W, 3) camera rays (unit z).
        K: (3, 3) 0-based intrinsics (to find each box's pixel window).
        hits: buffers to update where a box is nearer.
        offset: added to the box index stored in ``hits.box``.
    """
    d = np.moveaxis(rays @ R.T, -1, 0).astype(np.float32)  # (3, H, W): a plane per axis
    inv = 1.0 / np.where(np.abs(d) < 1e-12, np.float32(1e-12), d)
    windows, nearest = _screen_boxes(boxes, R, o, K, rays.shape[:2])
    lo, hi = (boxes.lo - o).astype(np.float32), (boxes.hi - o).astype(np.float32)
    visible = (windows[:, 1] > windows[:, 0]) & (windows[:, 3] > windows[:, 2])
    for i in sorted(np.flatnonzero(visible), key=lambda j: nearest[j]):
        r0, r1, c0, c1 = windows[i]
        depth = hits.depth[r0:r1, c0:c1]
        if depth.max() < nearest[i]:
            continue  # hidden behind nearer surfaces
        # Slab test specialised on where the camera is: outside a slab, the ray can only
        # enter through the face nearer to the camera (and rays pointing away get an exit
        # before their entry, so they miss); inside it, only the exit matters.
        enter, exit_, faces = None, None, []
        for k in range(3):
            iw = inv[k, r0:r1, c0:c1]
            if lo[i, k] > 0:
                near, far = lo[i, k] * iw, hi[i, k] * iw
            elif hi[i, k] < 0:
                near, far = hi[i, k] * iw, lo[i, k] * iw
            else:
                near, far = None, np.maximum(lo[i, k] * iw, hi[i, k] * iw)
            if near is not None:
                enter = near if enter is None else np.maximum(enter, near)
                faces.append((k, near))
            exit_ = far if exit_ is None else np.minimum(exit_, far)
        if enter is None:
            continue  # the camera is inside the box: cannot happen in a valid scene
        won = (enter <= exit_) & (enter > NEAR) & (enter < depth)
        if not won.any():
            continue
        t = enter[won]
        depth[won] = t
        hits.obj[r0:r1, c0:c1][won] = boxes.kind[i]
        hits.box[r0:r1, c0:c1][won] = i + offset
        axis = np.full(t.shape, faces[-1][0], dtype=hits.axis.dtype)
        for k, near in faces[-2::-1]:
            axis[near[won] == t] = k
        hits.axis[r0:r1, c0:c1][won] = axis


def empty_hits(shape: tuple[int, int]) -> Hits:
    """Buffers of an image that sees only sky."""
    return Hits(
        np.full(shape, np.inf, np.float32),
        np.full(shape, SKY, np.uint8),
        np.full(shape, -1, np.int64),
        np.full(shape, -1, np.int8),
    )


def cast_street(street: Boxes, T_street_cam: np.ndarray, rays: np.ndarray, K: np.ndarray) -> Hits:
    """Ray-cast the static scene for one camera: road plane, then the boxes near it.

    Args:
        street: static boxes (street frame); T_street_cam: (4, 4) camera pose in that frame.
        rays: (H, W, 3) camera rays (unit z); K: (3, 3) 0-based intrinsics.
    """
    hits = empty_hits(rays.shape[:2])
    dy = rays[..., 1]  # the cameras only yaw, so the road's normal is the camera's y axis
    ground = dy > 1e-12
    hits.depth[ground] = CAMERA_HEIGHT / dy[ground]  # rounded to float32 like box hits
    hits.obj[ground], hits.axis[ground] = ROAD, 1
    R, o = T_street_cam[:3, :3], T_street_cam[:3, 3]
    near = (street.hi[:, 2] > o[2] - _BEHIND) & (street.lo[:, 2] < o[2] + _AHEAD)
    idx = np.flatnonzero(near)
    if len(idx):
        sub = street.map(lambda a: a[idx[0] : idx[-1] + 1])  # sorted by z: one run
        cast_boxes(sub, R, o, rays, K, hits, offset=int(idx[0]))
    return hits


def overlay(hits: Hits, front: Hits) -> Hits:
    """Z-buffer merge in place: ``front``'s hits replace those it is strictly nearer than."""
    won = front.depth < hits.depth
    for name in ("depth", "obj", "box", "axis"):
        getattr(hits, name)[won] = getattr(front, name)[won]
    return hits
