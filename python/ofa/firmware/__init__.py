"""The firmware side: target profiles and the fit check (targets), the C headers (header), the
QEMU build-and-run helpers (qemu) and the multiply-accumulates of one inference (cost). No torch: the emitter needs numpy, safetensors and the engine module."""
from .cost import gemm_macs
from .header import c_comment, c_ident, c_string, emit, golden_windows, model_header, model_struct
from .qemu import build, elf_sizes, kernel_profile, qemu_command, run_qemu, toolchain_missing
from .targets import (CODE_ALLOWANCE, KIB, MIB, RAM_ALLOWANCE, TARGETS, TILE_SERIES, Footprint, Target,
                      check_fit, fit_problems, footprint, human, parse_size, target_profile)

__all__ = ["gemm_macs", "kernel_profile", "c_comment", "c_ident", "c_string", "emit", "golden_windows", "model_header", "model_struct", "build",
           "elf_sizes", "qemu_command", "run_qemu", "toolchain_missing", "CODE_ALLOWANCE", "KIB", "MIB",
           "RAM_ALLOWANCE", "TARGETS", "TILE_SERIES", "Footprint", "Target", "check_fit", "fit_problems",
           "footprint", "human",
           "parse_size", "target_profile"]
