"""Firmware target profiles and the fit check: does a model's int8 footprint fit a class of part."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OfaError

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A class of part: the memory budget a model must fit, and the QEMU board that runs it."""

    name: str
    flash: int  # bytes
    ram: int
    board: str  # qemu-system-arm -M
    board_flash: int  # what that QEMU board maps at 0x0 and 0x20000000 (bounds the link)
    board_ram: int


TARGETS = {
    "cortex-m4": Target("cortex-m4", 1 * MIB, 256 * KIB, "mps2-an386", 4 * MIB, 4 * MIB),
    "cortex-m7": Target("cortex-m7", 2 * MIB, 1 * MIB, "mps2-an500", 4 * MIB, 4 * MIB),
    # Armv8-M mainline (nRF5340-class): with the DSP extension, and without it (the portable kernels).
    "cortex-m33": Target("cortex-m33", 1 * MIB, 512 * KIB, "mps2-an505", 4 * MIB, 4 * MIB),
    "cortex-m33-nodsp": Target("cortex-m33-nodsp", 1 * MIB, 512 * KIB, "mps2-an505", 4 * MIB, 4 * MIB),
    "cortex-m55": Target("cortex-m55", 4 * MIB, 4 * MIB, "mps3-an547", 512 * KIB, 512 * KIB),
}
# Budget kept aside for what is not the model: the firmware's code (kernels, startup, report;
# about 14 KiB measured with arm-none-eabi-size, see bench/firmware.py) and its stack and globals.
CODE_ALLOWANCE = 32 * KIB
STACK_BYTES = 8 * KIB
RAM_ALLOWANCE = STACK_BYTES + 1 * KIB
TILE_SERIES = 1  # the firmware runs one series at a time: the smallest arena


def target_profile(name: str, flash: int | None = None, ram: int | None = None) -> Target:
    if name not in TARGETS:
        raise OfaError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    t = TARGETS[name]
    for label, value in (("--flash", flash), ("--ram", ram)):
        if value is not None and value <= 0:
            raise OfaError(f"{label} must be positive, got {value}")
    return Target(t.name, flash or t.flash, ram or t.ram, t.board, t.board_flash, t.board_ram)


def parse_size(text: str) -> int:
    """'1M', '256K', '4096' -> bytes (K and M are binary)."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": KIB, "M": MIB}.get(s[-1:], 1)
    digits = s[:-1] if s[-1:] in ("K", "M") else s
    try:
        value = float(digits) * scale
    except ValueError:
        raise OfaError(f"bad size {text!r}: expected bytes, or a number with K or M (e.g. 256K, 1M)") from None
    if value <= 0 or value != int(value):
        raise OfaError(f"bad size {text!r}: must be a positive whole number of bytes")
    return int(value)


def human(n: int) -> str:
    return f"{n / MIB:.2f} MiB" if n >= MIB else f"{n / KIB:.1f} KiB"


def padded(nbytes: int, align: int = 16) -> int:
    return (nbytes + align - 1) // align * align


@dataclass
class Footprint:
    weight_bytes: int   # const arrays in flash
    arena_bytes: int    # the planner's figure, one series at a time
    flash_bytes: int    # estimate: weights + code allowance
    ram_bytes: int      # estimate: arena + stack and globals


def footprint(tensors: dict[str, np.ndarray], config: dict) -> Footprint:
    from .. import _engine

    weights = sum(padded(t.nbytes) for t in tensors.values())
    arena = _engine.arena_bytes_int8_mcu(config, TILE_SERIES)  # the layout a Cortex-M build plans
    return Footprint(weights, arena, weights + CODE_ALLOWANCE, arena + RAM_ALLOWANCE)


def fit_problems(fp: Footprint, target: Target) -> list[str]:
    """What the target lacks for this footprint, by how much; empty when the model fits."""
    problems = []
    if fp.flash_bytes > target.flash:
        problems.append(f"flash: needs {human(fp.flash_bytes)} ({human(fp.weight_bytes)} of weights + "
                        f"{human(CODE_ALLOWANCE)} code), {target.name} has {human(target.flash)} "
                        f"(over by {human(fp.flash_bytes - target.flash)})")
    if fp.ram_bytes > target.ram:
        problems.append(f"RAM: needs {human(fp.ram_bytes)} (arena {human(fp.arena_bytes)} + "
                        f"{human(RAM_ALLOWANCE)} stack and globals), {target.name} has {human(target.ram)} "
                        f"(over by {human(fp.ram_bytes - target.ram)})")
    return problems


def check_fit(fp: Footprint, target: Target, config: dict) -> None:
    """Refuse a model the target cannot hold, by how much and what to change."""
    problems = fit_problems(fp, target)
    if problems:
        raise OfaError(f"model does not fit {target.name}: " + "; ".join(problems) +
                       f". The model has {config['n_layers']} block(s) of width {config['d_model']}: keep fewer "
                       f"blocks (ofa train --layers) or distil a narrower student (ofa distill --width), then "
                       f"export with --int8; or raise the budget with --flash/--ram")


