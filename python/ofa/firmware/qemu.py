"""Build the firmware demo and run it on QEMU (bench/firmware.py and the tests; needs cmake,
arm-none-eabi-gcc and qemu-system-arm)."""
from __future__ import annotations

import os

from ..errors import OfaError
from .targets import TARGETS, target_profile


def toolchain_missing() -> list[str]:
    """The programs the firmware build and run need that are not on PATH."""
    import shutil

    return [p for p in ("cmake", "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm")
            if shutil.which(p) is None]


def build(firmware_dir: str, target: str, model_dir: str, build_dir: str, profile: bool = False,
          mode: str = "forecast") -> str:
    """Configure and build the demo for `target` over the headers in model_dir; returns the ELF path.
    profile: time every kernel call (firmware/profile.c), for kernel_profile(); its totals include the timing.
    mode: "forecast" (main.c, ofa_golden.h) or "anomaly" (main_anomaly.c, ofa_stream.h)."""
    import subprocess

    target_profile(target)
    for cmd in (["cmake", "-S", firmware_dir, "-B", build_dir, f"-DOFA_TARGET={target}",
                 f"-DOFA_MODEL_DIR={os.path.abspath(model_dir)}", f"-DOFA_PROFILE={'ON' if profile else 'OFF'}",
                 f"-DOFA_MODE={mode}"],
                ["cmake", "--build", build_dir, "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OfaError(f"firmware build failed ({' '.join(cmd[:2])}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return os.path.join(build_dir, "ofa_demo.elf")


def qemu_command(target: str, elf: str) -> list[str]:
    board = TARGETS[target].board
    return ["qemu-system-arm", "-M", board, "-icount", "shift=0", "-display", "none", "-monitor", "none",
            "-serial", "none", "-chardev", "stdio,id=sh0", "-semihosting-config",
            "enable=on,target=native,chardev=sh0", "-kernel", elf]


def run_qemu(target: str, elf: str, timeout: float = 600) -> tuple[int, str, dict]:
    """(exit status, report text, the OFA_RESULT fields) of one demo run."""
    import subprocess

    try:
        proc = subprocess.run(qemu_command(target, elf), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OfaError(f"{elf} did not finish on QEMU within {timeout:.0f} s") from None
    fields: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("OFA_RESULT "):
            fields.update(item.split("=", 1) for item in line.split()[1:] if "=" in item)
    return proc.returncode, proc.stdout + proc.stderr, fields


def kernel_profile(report: str) -> dict[str, dict[str, int]]:
    """{kernel: {"calls", "instructions"}} from a profiled demo's OFA_PROFILE lines (the last window)."""
    out: dict[str, dict[str, int]] = {}
    for line in report.splitlines():
        if line.startswith("OFA_PROFILE "):
            f = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
            out[f["kernel"]] = {"calls": int(f["calls"]), "instructions": int(f["instructions"])}
    return out


def elf_sizes(elf: str) -> dict:
    """text/data/bss of arm-none-eabi-size: flash = text + data, static RAM = data + bss."""
    import subprocess

    out = subprocess.run(["arm-none-eabi-size", "-A", elf], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    berkeley = subprocess.run(["arm-none-eabi-size", elf], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in berkeley.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash_bytes": text + data, "static_ram_bytes": data + bss,
            "sections": sections}
