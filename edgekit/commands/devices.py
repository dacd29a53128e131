"""`edgekit devices [check|adb]`: what edgekit can reach, is a target reachable and what does it
have; Android devices."""

from __future__ import annotations

import click

from .options import LazyHelpCommand, host_key_option, json_option, target_argument, target_forms
from .output import show


@click.group("devices", invoke_without_command=True)
@click.option("--check", "check", is_flag=True,
              help="Contact each target (named ones too) and say whether it answers, and why not.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=15.0, show_default=True, metavar="S",
              help="With --check: seconds to wait for the targets (checked side by side).")
@click.option("--cluster", metavar="ADDRESS",
              help="List the devices the workers of this Ray cluster offer instead (ray://HEAD:10001, HEAD:6379, auto).")
@host_key_option
@json_option()
@click.pass_context
def devices_command(ctx, check, timeout, cluster, accept_new_host_key, as_json):
    """List the targets edgekit can reach now (host, phones, Coral, named boards), or check one.

    \b
    Alone: list every target edgekit can reach now: this machine, the adb server's devices,
    Coral Edge TPUs here, and your named targets (not contacted unless --check). Each row's
    NAME works as --target NAME. With --cluster: the devices the cluster's workers offer.
    """
    if ctx.invoked_subcommand is not None:
        return
    if cluster is not None:  # an empty --cluster is refused (exit 2), never the local list
        from edgekit.cluster import devices

        show(as_json, lambda con: devices(cluster), print_cluster_devices)
        return
    from edgekit.targets import discover

    def work(con):
        result = discover.listing()
        if check:
            discover.check_all(result["devices"], timeout, accept_new_host_key=accept_new_host_key)
        return result

    show(as_json, work, print_devices, status="checking the targets" if check else None)


def print_devices(con, result: dict) -> None:
    """`edgekit devices`: a table of result["devices"] (name, kind, spec when it differs from the
    name, reachable yes/no/"not checked", detail), the notes, and where named targets live."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="devices", title_justify="left")
    for col in ("name", "kind", "spec", "reachable", "detail"):
        t.add_column(col)
    state = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]not checked[/]"}
    for d in result["devices"]:
        spec = "" if d["spec"] == d["name"] else d["spec"]
        t.add_row(escape(d["name"]), d["kind"], escape(spec), state[d["reachable"]], escape(d["detail"] or ""))
    con.print(t)
    for note in result.get("notes", []):
        con.print(f"[dim]{escape(note)}[/]")
    con.print(f"[dim]named targets: {escape(result['targets_file'])} · use a NAME as --target NAME[/]")


def print_cluster_devices(con, result: dict) -> None:
    """`edgekit devices --cluster`: one row per device a live node offers (target, node id, ip)."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"devices of the cluster at {escape(result['cluster'])}", title_justify="left")
    for col in ("target", "node", "ip"):
        t.add_column(col)
    for d in result["devices"]:
        t.add_row(escape(d["target"]), d["node"][:12], d["ip"])
    con.print(t)
    con.print(f"[dim]{result['nodes']} live node(s); a target here works in edgekit.yaml `targets:` with --cluster[/]")


def _check_help() -> str:
    """`devices check --help`, listing the registered target forms when shown."""
    return ("Is TARGET reachable, what runtimes does it have, and what to install for the rest.\n\n"
            f"TARGET is {target_forms()}, or a named target. Exit 4 when it cannot be reached.")


@devices_command.command("check", cls=LazyHelpCommand, help=_check_help)
@target_argument
@host_key_option
@json_option()
def devices_check_command(target, accept_new_host_key, as_json):
    """Contact TARGET: reachable or not, its device and runtimes, what to install (exit 4 when
    unreachable). The help text is _check_help() (it lists edgekit.targets.TARGETS)."""
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
