"""`edgekit devices check|adb`: is a target reachable and what does it have; Android devices."""

from __future__ import annotations

import click

from .options import LazyHelpCommand, host_key_option, json_option, target_forms
from .output import show


@click.group("devices")
def devices_command():
    """Check the devices edgekit can run on."""


def _check_help() -> str:
    """`devices check --help`, listing the registered target forms when shown."""
    return ("Is TARGET reachable, what runtimes does it have, and what to install for the rest.\n\n"
            f"TARGET is {target_forms()}. Exit 4 when it cannot be reached.")


@devices_command.command("check", cls=LazyHelpCommand, help=_check_help)
@click.argument("target", default="host")
@host_key_option
@json_option()
def devices_check_command(target, accept_new_host_key, as_json):
    # The help text is _check_help() (it lists edgekit.targets.TARGETS).
    from edgekit import targets
    from edgekit.report import print_device_check

    show(as_json, lambda con: targets.get(target, accept_new_host_key=accept_new_host_key).check(),
         print_device_check)


@devices_command.command("adb")
@click.option("--clean", "clean", metavar="SERIAL", help="Remove edgekit-* folders left in /data/local/tmp on SERIAL.")
@json_option()
def devices_adb_command(clean, as_json):
    """List Android devices (adb): serial, state, model, ABI, Android version; use one with
    --target adb:SERIAL."""
    from edgekit.report import print_adb_clean, print_adb_devices
    from edgekit.targets import android

    if clean:
        def work(con):
            n = android.AndroidTarget(f"adb:{clean}").cleanup_stale()
            return {"schema_version": 1, "kind": "devices-adb-clean", "serial": clean, "removed": n}

        show(as_json, work, print_adb_clean)
    else:
        show(as_json, lambda con: {"schema_version": 1, "kind": "devices-adb", "devices": android.list_devices()},
             print_adb_devices)
