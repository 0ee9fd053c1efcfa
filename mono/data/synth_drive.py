"""One synthetic drive: its specification (street, camera path, moving car) and rendering.

Cameras 2 and 3 form the rectified stereo rig (camera 3 is STEREO_BASELINE to the right);
poses are given for camera 2 in the *world* frame of KITTI odometry, camera 2 at frame 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mono.data import calib
from mono.data import synth_texture as tex
from mono.data.synth_scene import (
    CAMERA_HEIGHT,
    MOVING_CAR,
    STEREO_BASELINE,
    Boxes,
    Hits,
    camera_path,
    camera_rays,
    car_rows,
    cast_boxes,
    cast_street,
    empty_hits,
    make_street,
    overlay,
)

DATE = "2011_01_01"
_TX2 = 0.06  # camera 2 centre is 6 cm left of camera 0 (P_rect_02[0, 3] = fx * 0.06)


@dataclass(frozen=True, eq=False)
class DriveSpec:
    """Everything needed to render one drive; built by :func:`make_drive`.

    Attributes:
        number: drive number in the folder name; split: "train", "val" or "test".
        seed: the drive's own seed (noise textures, LiDAR column phases).
        frames: number of frames; size: (height, width) of the images.
        stationary: first and last frame of the stretch where the rig stands still.
        moving_car: the car driving with the rig: object id, distance from camera 2 to its
            rear, size (width, height, length) and rear-centre ground point in camera 2, metres.
        poses: (frames, 4, 4) camera-2 poses in the street frame (see ``synth_scene``).
        street: static boxes (street frame); car: the moving car's boxes (camera-2 frame).
        sun: (3,) unit vector towards the sun (street frame); table: noise lattice.
    """

    number: int
    split: str
    seed: int
    frames: int
    size: tuple[int, int]
    stationary: tuple[int, int]
    moving_car: dict
    poses: np.ndarray
    street: Boxes
    car: Boxes
    sun: np.ndarray
    table: np.ndarray
    date: str = DATE

    @property
    def folder(self) -> str:
        return f"{self.date}_drive_{self.number:04d}_sync"

    @property
    def relpath(self) -> str:
        """``<date>/<folder>`` as split files name the drive."""
        return f"{self.date}/{self.folder}"

    @functools.cached_property
    def K(self) -> np.ndarray:
        """(3, 3) 0-based pixel intrinsics of cameras 2 and 3."""
        h, w = self.size
        return calib.MONODEPTH2_K.astype(np.float64) * [[w], [h], [1.0]]

    @functools.cached_property
    def rays(self) -> np.ndarray:
        """(H, W, 3) rays through the pixel centres, scaled to unit z."""
        return camera_rays(self.K, self.size)

    def P_rect(self, camera: int) -> np.ndarray:
        """(3, 4) KITTI projection of rectified camera 0-3 (1-based pixels, see calib.py)."""
        tx = {0: 0.0, 1: -STEREO_BASELINE, 2: _TX2, 3: _TX2 - STEREO_BASELINE}[camera]
        P = np.zeros((3, 4))
        P[:, :3] = self.K
        P[:2, 2] += 1.0
        P[0, 3] = self.K[0, 0] * tx
        return P

    @functools.cached_property
    def boxes(self) -> Boxes:
        """Static boxes then the moving car's (as Hits.box counts), texture fields in float32."""
        both = self.street + self.car
        f32 = (a.astype(np.float32) for a in (both.colour, both.params, both.anchor))
        return Boxes(both.lo, both.hi, both.kind, *f32)

    @functools.cached_property
    def car_hits(self) -> dict[int, Hits]:
        """The moving car alone per camera, cast once: it is the same in every frame."""
        out = {}
        for camera in (2, 3):
            out[camera] = empty_hits(self.size)
            T = _T_rig_cam(camera)
            cast_boxes(
                self.car,
                T[:3, :3],
                T[:3, 3],
                self.rays,
                self.K,
                out[camera],
                offset=len(self.street),
            )
        return out

    def T_world_cam(self, frame: int, camera: int = 2) -> np.ndarray:
        """(4, 4) pose of camera 2 or 3 in the world frame (camera 2 at frame 0, KITTI odometry)."""
        return np.linalg.inv(self.poses[0]) @ self.poses[frame] @ _T_rig_cam(camera)


@dataclass
class RenderedFrame:
    """One rendered camera image.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 camera z in metres, 0 for sky.
        object_id: (H, W) uint8: 0 sky, 1 road or pavement, 2 facade, 3 parked car,
            4 moving car (SKY, ROAD, FACADE, PARKED_CAR, MOVING_CAR).
        T_world_cam: (4, 4) camera-to-world pose (world = camera 2 at frame 0).
    """

    image: np.ndarray
    depth: np.ndarray
    object_id: np.ndarray
    T_world_cam: np.ndarray


def make_drive(seed: int, index: int, split: str, frames: int, size, stationary: int) -> DriveSpec:
    """Lay out drive ``index`` of a dataset: its street, camera path and moving car.

    Args:
        seed: dataset seed; with ``index`` it seeds everything about the drive.
        index: position of the drive in the dataset (its folder is drive ``index + 1``).
        split: "train", "val" or "test"; frames: number of frames; size: (height, width).
        stationary: number of frames of the stationary stretch.
    """
    rng = np.random.default_rng([seed, index])
    drive_seed = int(rng.integers(2**31))
    speed = rng.uniform(0.85, 1.15)
    poses, still = camera_path(rng, frames, stationary, speed)
    street = make_street(rng, poses[-1, 2, 3] + 200.0)
    distance, length, width = rng.uniform(10.0, 15.0), rng.uniform(4.0, 4.6), 1.8
    rear = np.array([0.0, CAMERA_HEIGHT, distance])
    car = Boxes.build(car_rows(rng, rear + [0, 0, 0.5 * length], MOVING_CAR, length, width))
    sun = np.array([rng.uniform(-0.6, 0.6), -0.8, rng.uniform(-0.6, 0.3)])
    moving_car = {
        "object_id": MOVING_CAR,
        "distance_m": float(distance),
        "size_m": [width, 1.5, float(length)],
        "rear_centre_cam2_m": rear.tolist(),
    }
    return DriveSpec(
        number=index + 1,
        split=split,
        seed=drive_seed,
        frames=frames,
        size=tuple(size),
        stationary=still,
        moving_car=moving_car,
        poses=poses,
        street=street,
        car=car,
        sun=sun / np.linalg.norm(sun),
        table=tex.noise_table(drive_seed),
    )


def _T_rig_cam(camera: int) -> np.ndarray:
    if camera not in (2, 3):
        raise ValueError(f"synthetic drives render cameras 2 and 3, not {camera}")
    T = np.eye(4)
    T[0, 3] = STEREO_BASELINE if camera == 3 else 0.0
    return T


def render_frame(drive: DriveSpec, frame: int, camera: int = 2) -> RenderedFrame:
    """Ray-cast and texture one frame of camera 2 (left) or 3 (right)."""
    if not 0 <= frame < drive.frames:
        raise IndexError(f"{drive.folder}: frame {frame} not in [0, {drive.frames})")
    T_rig_cam = _T_rig_cam(camera)
    T_street_cam = drive.poses[frame] @ T_rig_cam
    hits = cast_street(drive.street, T_street_cam, drive.rays, drive.K)
    overlay(hits, drive.car_hits[camera])
    colour = tex.shade(
        hits,
        drive.boxes,
        drive.table,
        drive.sun,
        drive.K,
        T_street_cam,
        T_rig_cam,
        drive.rays.reshape(-1, 3),
    )
    image = (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(*drive.size, 3)
    depth = np.where(np.isinf(hits.depth), 0.0, hits.depth).astype(np.float32)
    return RenderedFrame(image, depth, hits.obj, drive.T_world_cam(frame, camera))
