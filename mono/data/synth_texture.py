"""World-anchored procedural textures for the synthetic drives (numpy only).

Every colour is a function of a surface point in its object's own frame, never of the pixel,
so a surface looks the same from every frame and photometric matching between frames works.
Detail finer than the pixel's footprint on the surface is faded out (noise octaves and
box-filtered stripes), the cheap form of mip-mapping: without it far surfaces alias into
white noise that changes from frame to frame.

Material functions take flat (N,) arrays of the pixels of one material and return (N,) or
(N, 3) float32; colours are display RGB in [0, 1] before the final clip. :func:`shade` runs
them over a ray-cast image.
"""

from __future__ import annotations

import numpy as np

from mono.data.synth_scene import (
    CAMERA_HEIGHT,
    FACADE,
    MOVING_CAR,
    PARKED_CAR,
    ROAD,
    SKY,
    Boxes,
    Hits,
)

_TABLE = 256  # lattice values repeat every 256 cells; coarser octaves hide the period


def rgb(r: float, g: float, b: float) -> np.ndarray:
    """A float32 colour constant (float64 constants would silently promote every array)."""
    return np.array([r, g, b], dtype=np.float32)


def noise_table(seed: int) -> np.ndarray:
    """Lattice of one drive: (256 * 256, 4) float32 values in [0, 1] of each cell's 4 corners.

    Storing the corners together turns the 4 look-ups of bilinear interpolation into one
    ``np.take`` (the lattice wraps around every 256 cells).
    """
    grid = np.random.default_rng([seed, 7]).random((_TABLE, _TABLE), dtype=np.float32)
    wrap = np.pad(grid, ((0, 1), (0, 1)), mode="wrap")
    corners = [wrap[:-1, :-1], wrap[:-1, 1:], wrap[1:, :-1], wrap[1:, 1:]]
    return np.stack([c.ravel() for c in corners], axis=1)


def cell_value(x: np.ndarray, y: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Random value in [0, 1] constant over each unit cell (e.g. per paving slab)."""
    idx = ((np.floor(y).astype(np.int32) & 255) << 8) | (np.floor(x).astype(np.int32) & 255)
    return np.take(table[:, 0], idx)


def value_noise(x: np.ndarray, y: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Smooth value noise on a unit lattice: bilinear with smoothstep weights, values in [0, 1]."""
    fx, fy = np.floor(x), np.floor(y)
    tx, ty = x - fx, y - fy
    tx = tx * tx * (3.0 - 2.0 * tx)
    ty = ty * ty * (3.0 - 2.0 * ty)
    idx = ((fy.astype(np.int32) & 255) << 8) | (fx.astype(np.int32) & 255)
    a, b, c, d = np.take(table, idx, axis=0).T
    top = a + (b - a) * tx
    return top + (c + (d - c) * tx - top) * ty


def fbm(
    x: np.ndarray,
    y: np.ndarray,
    footprint: np.ndarray,
    table: np.ndarray,
    scale: float,
    octaves: int,
    salt: float = 0.0,
) -> np.ndarray:
    """Fractal sum of value noise with octaves finer than the pixel footprint faded out.

    Args:
        x, y: (N,) surface coordinates in metres (or radians for the sky).
        footprint: (N,) size of the pixel on the surface, same unit as ``x``.
        table: lattice from :func:`noise_table`.
        scale: lattice spacing of the coarsest octave; each next octave halves it.
        octaves: number of octaves.
        salt: coordinate offset that decorrelates materials sharing one table.

    Returns:
        (N,) values around 0.5 (roughly in [0.1, 0.9]); a fully faded pixel gets exactly 0.5.
    """
    acc = np.zeros_like(x)
    amp, norm, spacing = 1.0, 0.0, scale
    for o in range(octaves):
        fade = np.clip(spacing / footprint - 1.0, 0.0, 1.0)  # 1 when >= 2 px per cell
        shift = salt + 31.7 * o
        acc += amp * fade * (value_noise(x / spacing + shift, y / spacing - shift, table) - 0.5)
        norm += amp
        amp *= 0.6
        spacing *= 0.5
    return 0.5 + 1.6 * acc / norm


def stripes(x: np.ndarray, lo: float, hi: float, width: np.ndarray) -> np.ndarray:
    """Box-filtered periodic stripe: mean over [x - width/2, x + width/2] of [frac(x) in [lo, hi)].

    ``x`` and ``width`` are in periods; the result is in [0, 1] and tends to ``hi - lo`` (the
    stripe's duty cycle) once the filter covers many periods.
    """
    width = np.maximum(width, 1e-6)

    def integral(s):
        whole = np.floor(s)
        return whole * (hi - lo) + np.clip(s - whole, lo, hi) - lo

    return (integral(x + 0.5 * width) - integral(x - 0.5 * width)) / width


def band(x: np.ndarray, centre: float, half: float, width: np.ndarray) -> np.ndarray:
    """Box-filtered single band ``|x - centre| < half``: its overlap with the pixel's footprint."""
    width = np.maximum(width, 1e-6)
    lo = np.maximum(x - 0.5 * width, centre - half)
    hi = np.minimum(x + 0.5 * width, centre + half)
    return np.clip(hi - lo, 0.0, None) / width


def mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-pixel blend of colours (N, 3) or (3,) with weights (N,) in [0, 1]."""
    return a + (b - a) * w[:, None]


def road(x: np.ndarray, z: np.ndarray, fp: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Asphalt with lane markings for |x| < 4.6 m, kerb and paving slabs beyond. (N, 3)."""
    grain = fbm(x, z, fp, table, 0.3, 3, salt=11.0)
    patch = fbm(x, z, fp, table, 5.0, 1, salt=53.0)
    grey = 0.30 + 0.45 * (grain - 0.5) + 0.25 * (patch - 0.5)
    asphalt = grey[:, None] * rgb(0.97, 1.0, 1.04)
    ax = np.abs(x)
    dashes = stripes(z / 9.0, 0.0, 1.0 / 3.0, fp / 9.0)  # 3 m dash, 6 m gap
    marking = band(ax, 1.8, 0.07, fp) * dashes + band(ax, 2.75, 0.08, fp)
    colour = mix(asphalt, rgb(0.85, 0.85, 0.82), 0.9 * np.clip(marking, 0.0, 1.0))

    walk = ax >= 4.6
    if walk.any():
        xw, zw, fw = x[walk], z[walk], fp[walk]
        cell = cell_value(xw / 0.6, zw / 0.6, table)
        slab_fade = np.clip(0.6 / fw - 1.0, 0.0, 1.0)
        tone = 0.55 + 0.12 * slab_fade * (cell - 0.5) + 0.3 * (fbm(xw, zw, fw, table, 0.3, 3) - 0.5)
        joints = np.maximum(
            stripes(xw / 0.6, 0.0, 0.08, fw / 0.6), stripes(zw / 0.6, 0.0, 0.08, fw / 0.6)
        )
        tone = tone * (1.0 - 0.45 * joints)
        kerb = band(np.abs(xw), 4.7, 0.1, fw)
        tone = tone + (0.72 - tone) * kerb
        colour[walk] = tone[:, None] * rgb(1.04, 1.0, 0.94)
    return colour


def facade(
    u: np.ndarray,
    v: np.ndarray,
    fp: np.ndarray,
    base: np.ndarray,
    params: np.ndarray,
    top: np.ndarray,
    roof: np.ndarray,
    table: np.ndarray,
) -> np.ndarray:
    """Plastered wall with a grid of windows and floor ledges. (N, 3).

    Args:
        u: (N,) metres along the wall from the building's corner; v: (N,) height above ground.
        fp: (N,) pixel footprint in metres.
        base: (N, 3) wall colour; params: (N, 4) window spacing, floor height, window width
            and height as fractions of their cell; top: (N,) building height; roof: (N,) bool,
            pixel is on the roof (u, v are then horizontal coordinates).
    """
    spacing, floor, wfrac, hfrac = params.T
    plaster = fbm(u, v, fp, table, 0.4, 3, salt=97.0)
    colour = base * (0.8 + 0.6 * (plaster - 0.5))[:, None]
    lo_u = 0.5 * (1.0 - wfrac)
    win = stripes(u / spacing - lo_u, 0.0, wfrac, fp / spacing)
    win = win * stripes(v / floor - 0.3, 0.0, hfrac, fp / floor)
    win = win * np.clip((top - v - 1.0) / fp, 0.0, 1.0)
    shine = fbm(u, v, fp, table, 2.0, 1, salt=5.0)
    glass = rgb(0.10, 0.13, 0.18) + (0.45 * shine)[:, None] * rgb(0.8, 0.9, 1.0)
    colour = mix(colour, glass, win)
    ledge = stripes(v / floor, 0.0, 0.2 / floor, fp / floor) * (v > 0.5 * floor)
    colour = colour * (1.0 - 0.3 * ledge)[:, None]
    colour[roof] = 0.3 + 0.2 * (plaster[roof, None] - 0.5)
    return colour


def car(
    a: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    axis: np.ndarray,
    fp: np.ndarray,
    paint: np.ndarray,
    params: np.ndarray,
    table: np.ndarray,
) -> np.ndarray:
    """Car body (paint, wheels, lights, plate) or cabin (glass with pillars). (N, 3).

    Args:
        a, h, l: (N,) car-local metres: across (right), height above ground, along (forward),
            origin on the ground under the car's centre.
        axis: (N,) face normal axis (0 side, 1 top, 2 front/back).
        fp: (N,) pixel footprint; paint: (N, 3) body colour; params: (N, 4) = part (0 body,
            1 cabin), length, width, cabin half-length.
    """
    part, length, width, cabin_half = params.T
    flake = fbm(a + l, h, fp, table, 0.5, 2, salt=71.0)
    colour = paint * (0.9 + 0.3 * (flake - 0.5))[:, None]
    body, cabin = part == 0, part == 1
    side, back = axis == 0, axis == 2

    wheel = np.clip((0.33 - np.hypot(np.abs(l) - 0.3 * length, h - 0.33)) / fp + 0.5, 0, 1)
    colour = mix(colour, rgb(0.06, 0.06, 0.07), wheel * (body & side))
    bumper = np.clip((0.45 - h) / fp + 0.5, 0.0, 1.0) * (body & back)
    colour = mix(colour, rgb(0.12, 0.12, 0.13), 0.8 * bumper)
    light = band(np.abs(a), 0.5 * width - 0.22, 0.14, fp) * band(h, 0.82, 0.07, fp)
    colour = mix(colour, rgb(0.85, 0.08, 0.06), light * (body & back))
    plate = band(a, 0.0, 0.26, fp) * band(h, 0.6, 0.06, fp)
    colour = mix(colour, rgb(0.9, 0.9, 0.85), plate * (body & back))

    along = np.where(side, np.abs(l) / cabin_half, np.abs(a) / (0.5 * width))
    pane = np.clip((0.92 - along) * 12.0, 0.0, 1.0) * band(h, 1.22, 0.2, fp)
    glass = rgb(0.10, 0.12, 0.16) + (0.3 * flake)[:, None]
    colour = mix(colour, glass, pane * (cabin & (axis != 1)))
    return colour


def sky(d: np.ndarray, f: float, table: np.ndarray) -> np.ndarray:
    """Sky colour from the ray direction only (it is infinitely far): gradient plus clouds.

    Args:
        d: (N, 3) ray directions in the street frame (y down).
        f: focal length in pixels (sets the angular footprint of a pixel).
    """
    horiz = np.hypot(d[:, 0], d[:, 2])
    elev = np.arctan2(-d[:, 1], horiz)
    azim = np.arctan2(d[:, 0], d[:, 2])
    t = np.clip(elev / 0.5, 0.0, 1.0) ** 0.7
    colour = mix(rgb(0.80, 0.85, 0.92), rgb(0.36, 0.55, 0.85), t)
    fp = np.full_like(elev, 1.0 / f)
    cloud = fbm(azim * 1.5, elev * 4.0, fp * 4.0, table, 0.25, 3, salt=201.0)
    cover = np.clip((cloud - 0.45) / 0.25, 0.0, 1.0)
    return mix(colour, rgb(0.95, 0.95, 0.96), 0.85 * cover)


def shade(
    hits: Hits,
    boxes: Boxes,
    table: np.ndarray,
    sun: np.ndarray,
    K: np.ndarray,
    T_street_cam: np.ndarray,
    T_rig_cam: np.ndarray,
    rays: np.ndarray,
) -> np.ndarray:
    """(H * W, 3) float32 colours of the hit surfaces, material by material.

    Static surfaces are shaded in the street frame and lit by the sun; the moving car is
    shaded in the rig frame with fixed per-face light, so its pixels repeat in every frame.

    Args:
        hits: ray-cast image (``synth_scene.cast_street`` + ``overlay``); boxes: static boxes
            then the moving car's, as indexed by ``hits.box``; table: :func:`noise_table`;
            sun: (3,) unit vector towards the sun; K: (3, 3) pixel intrinsics.
        T_street_cam, T_rig_cam: (4, 4) camera pose in the street and rig frames.
        rays: (H * W, 3) camera rays with unit z.
    """
    f = 0.5 * (K[0, 0] + K[1, 1])
    obj = hits.obj.ravel()
    colour = np.empty((len(obj), 3), dtype=np.float32)
    for kind in (SKY, ROAD, FACADE, PARKED_CAR, MOVING_CAR):
        idx = np.flatnonzero(obj == kind)
        if len(idx) == 0:
            continue
        T = T_rig_cam if kind == MOVING_CAR else T_street_cam
        d = np.take(rays, idx, axis=0) @ T[:3, :3].T
        if kind == SKY:
            colour[idx] = sky(d.astype(np.float32), f, table)
            continue
        t = np.take(hits.depth.ravel(), idx)
        ax = np.take(hits.axis.ravel(), idx)
        box = np.take(hits.box.ravel(), idx)
        point = (t[:, None] * d + T[:3, 3]).astype(np.float32)
        norm2 = (d * d).sum(1)
        along_normal = np.take_along_axis(d, ax[:, None], axis=1)[:, 0]
        footprint = t * norm2 / (f * np.maximum(np.abs(along_normal), 0.08 * np.sqrt(norm2)))
        footprint = footprint.astype(np.float32)
        if kind in (PARKED_CAR, MOVING_CAR):
            light = rgb(0.8, 1.0, 0.68)[ax]  # fixed per face: the moving car must not flicker
        else:  # Lambert term of the visible face, whose normal opposes the ray
            light = 0.62 + 0.38 * np.maximum(-np.sign(along_normal) * sun[ax], 0.0)
        colour[idx] = _material(kind, point, footprint, ax, box, boxes, table) * light[:, None]
    return colour


def _material(kind: int, point, footprint, axis, box, boxes: Boxes, table) -> np.ndarray:
    """(N, 3) unlit colour of N hits on one kind of surface."""
    if kind == ROAD:
        return road(point[:, 0], point[:, 2], footprint, table)
    anchor = np.take(boxes.anchor, box, axis=0)
    colour = np.take(boxes.colour, box, axis=0)
    params = np.take(boxes.params, box, axis=0)
    if kind == FACADE:
        along = np.where(axis == 0, point[:, 2] - anchor[:, 2], point[:, 0] - anchor[:, 0])
        height = np.where(axis == 1, point[:, 2], CAMERA_HEIGHT - point[:, 1])
        top = CAMERA_HEIGHT - np.take(boxes.lo[:, 1], box).astype(np.float32)
        return facade(along, height, footprint, colour, params, top, axis == 1, table)
    local = point - anchor
    return car(local[:, 0], -local[:, 1], local[:, 2], axis, footprint, colour, params, table)
