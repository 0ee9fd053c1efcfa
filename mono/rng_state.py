"""The global random states a resumed run needs to repeat an uninterrupted one bit for bit.

The global torch generator draws the auto-mask's tie-break noise; numpy's and Python's are
there for any code that uses them. ``DepthModel`` stores them in every checkpoint and restores
them when ``fit`` resumes.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_states() -> dict:
    """The global torch, CUDA (if initialised), numpy and Python RNG states, as plain types
    that ``torch.load(weights_only=True)`` accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, state, gauss = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(state), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` captured (CUDA only with the same number of devices)."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(  # noqa: NPY002 (the legacy global state is what code may use)
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
