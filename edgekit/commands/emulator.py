"""`edgekit emulator create`: an emulated arm64 board for --target qemu-arm64."""

from __future__ import annotations

import click

from .options import json_option
from .output import log_to, progress, show


@click.group("emulator")
def emulator_command():
    """Emulated boards for running artifacts on ARM without hardware."""


@emulator_command.command("create")
@click.argument("kind", type=click.Choice(["rpi"]))
@click.option("--dir", "dest", metavar="DIR", help="Where to build it (default: ~/.cache/edgekit/emulators/rpi).")
@click.option("--no-executorch", is_flag=True, help="Only ai-edge-litert (skips torch: ~700 MB less).")
@click.option("--force", is_flag=True, help="Rebuild even when a matching one exists.")
@json_option()
def emulator_create_command(kind, dest, no_executorch, force, as_json):
    """Build an emulated 64-bit Raspberry Pi: arm64 Debian + Python 3.11 + ai-edge-litert and
    ExecuTorch, run with qemu-user (needs root, mmdebstrap, qemu-user-static, binfmt-support).

    Use it with --target qemu-arm64[:DIR]. Its timings are emulated (200–600× slower than a board).
    """
    from edgekit.report import print_emulator
    from edgekit.targets import qemu

    runtimes = ("litert",) if no_executorch else ("litert", "executorch")

    def work(con):
        # the stages as every command shows them (live on a terminal, `[  1.2s] step` lines in a
        # CI log), not rich's Console.log with its clock, padding and source location
        with progress(con):
            return qemu.create(kind, dest, runtimes=runtimes, force=force, log=log_to(con))

    show(as_json, work, lambda con, result: print_emulator(con, result, kind, dest))
