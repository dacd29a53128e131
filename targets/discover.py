"""What edgekit can reach from here, for `edgekit devices`: this machine, the adb server's
devices, Coral Edge TPUs on this machine, and the user's named targets (targets/names.py).

Listing contacts nothing but the local adb server (when adbutils is installed) and reads /sys
and /dev; `check_all` then runs each row's `Target.check()` in parallel, each within a timeout.
Each row is {name, spec, kind, reachable, detail}: `reachable` is True/False when known, None
when not contacted (named targets before `--check`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

# Coral Edge TPU ids: the USB Accelerator before its firmware is loaded (Global Unichip) and
# after (Google); the M.2/PCIe module (Global Unichip, the apex driver's /dev/apex_N).
CORAL_USB_IDS = {("1a6e", "089a"): "Coral USB Accelerator (firmware not loaded yet)",
                 ("18d1", "9302"): "Coral USB Accelerator"}
CORAL_PCI_IDS = {("0x1ac1", "0x089a"): "Coral M.2/PCIe Edge TPU"}
SYSFS, DEV = Path("/sys"), Path("/dev")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def coral_devices() -> list[dict]:
    """Coral Edge TPUs on this machine, from USB ids in /sys/bus/usb/devices, PCI ids in
    /sys/bus/pci/devices and the apex driver's /dev/apex_N: one row per device (kind "coral",
    spec coral:usb[:N] or coral:pci[:N], reachable True: it is attached). [] when none or when
    /sys is not readable (a container)."""
    rows = []
    usb = sorted((SYSFS / "bus/usb/devices").glob("*")) if (SYSFS / "bus/usb/devices").is_dir() else []
    found = [(p, CORAL_USB_IDS[ids]) for p in usb
             if (ids := (_read(p / "idVendor"), _read(p / "idProduct"))) in CORAL_USB_IDS]
    for i, (p, what) in enumerate(found):
        spec = "coral:usb" if len(found) == 1 else f"coral:usb:{i}"
        rows.append({"name": spec, "spec": spec, "kind": "coral", "reachable": True, "detail": f"{what}, USB {p.name}"})
    pci = sorted((SYSFS / "bus/pci/devices").glob("*")) if (SYSFS / "bus/pci/devices").is_dir() else []
    apex = sorted(DEV.glob("apex_*"))
    found = [(p.name, CORAL_PCI_IDS[ids]) for p in pci if (ids := (_read(p / "vendor"), _read(p / "device"))) in CORAL_PCI_IDS]
    if not found:  # no PCI ids readable, but the driver made its device nodes
        found = [(p.name, "Coral M.2/PCIe Edge TPU") for p in apex]
    for i, (where, what) in enumerate(found):
        spec = "coral:pci" if len(found) == 1 else f"coral:pci:{i}"
        driver = "" if apex else " (no /dev/apex_N: install the gasket/apex driver)"
        rows.append({"name": spec, "spec": spec, "kind": "coral", "reachable": bool(apex),
                     "detail": f"{what}, {where}{driver}"})
    return rows


def adb_devices() -> tuple[list[dict], str | None]:
    """The adb server's devices as rows (kind "adb", spec adb:SERIAL, reachable when its state
    is "device", detail: model, Android version, ABI or the state), and a note when adb could
    not be asked (no server running: none is started; adbutils missing), else None."""
    import socket

    from edgekit.errors import EdgekitError

    from . import android_adb

    host = os.environ.get("EDGEKIT_ADB_HOST", "127.0.0.1")
    port = int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
    try:  # adbutils would start a server itself: listing must not leave a daemon behind
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return [], f"adb: no adb server at {host}:{port}, so no Android device is listed (start it: adb start-server)."
    try:
        devices = android_adb.list_devices()
    except EdgekitError as exc:
        return [], f"adb: {exc.message}"
    rows = []
    for d in devices:
        ready = d["state"] == "device"
        bits = [d.get("model"), f"Android {d['android']}" if d.get("android") else None, d.get("abi")]
        detail = ", ".join(b for b in bits if b) if ready else d["state"]
        rows.append({"name": d["target"], "spec": d["target"], "kind": "adb", "reachable": ready, "detail": detail})
    return rows, None


def host_row() -> dict:
    """This machine: always reachable; detail: architecture, usable cores, OS."""
    import platform

    return {"name": "host", "spec": "host", "kind": "host", "reachable": True,
            "detail": f"{platform.machine()}, {usable_cores()} cores, {platform.system()} {platform.release()}"}


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask where the OS has one, else
    os.cpu_count() (1 when unknown)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def named_rows() -> list[dict]:
    """The user's named targets (targets/names.py) as rows: kind is their spec's scheme,
    reachable None (not contacted). Raises BadInput (exit 2) for a broken named-targets file."""
    from . import kind_of, names

    return [{"name": n, "spec": s, "kind": kind_of(s).scheme, "reachable": None, "detail": "named target, not checked"}
            for n, s in names.load().items()]


def listing() -> dict:
    """Every target edgekit can reach now, without contacting any: the `edgekit devices` result
    {schema_version, kind "devices", devices: [rows: host, adb, coral, named], notes: [str],
    targets_file: the named-targets file's path}."""
    from . import names

    rows, notes = [host_row()], []
    adb, note = adb_devices()
    rows += adb + coral_devices()
    if note:
        notes.append(note)
    rows += named_rows()
    return {"schema_version": 1, "kind": "devices", "devices": rows, "notes": notes,
            "targets_file": str(names.config_path())}


def check_all(rows: list[dict], timeout: float, **options) -> None:
    """Run `check()` of each row's target in parallel (a row's name resolves through the named
    targets), each given TIMEOUT seconds, and set its `reachable` and `detail` in place: the
    device described, or why it is unreachable (the error's message and hint; "no answer within
    N s" for a check still running). OPTIONS go to targets.get (accept_new_host_key)."""
    import time

    from . import get

    done: dict[int, dict] = {}

    def one(i, row):
        try:
            res = get(row["name"], **options).check()
            dev = res.get("device") or {}
            runtimes = [f for f, v in (res.get("formats") or {}).items() if v.get("available")]
            bits = (dev.get("machine"), f"{dev['cores']} cores" if dev.get("cores") else None, dev.get("os"),
                    "runtimes: " + (" ".join(runtimes) or "none"))
            done[i] = {"reachable": True, "detail": ", ".join(str(b) for b in bits if b)}
        except Exception as exc:  # noqa: BLE001 - every failure is a row's detail, not the command's
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            hint = getattr(exc, "hint", None)
            done[i] = {"reachable": False, "detail": message + (f" ({hint})" if hint else "")}

    threads = [threading.Thread(target=one, args=(i, r), daemon=True) for i, r in enumerate(rows)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout  # the checks run side by side: about TIMEOUT in all
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    finished = dict(done)  # a check still running cannot change a row from here on
    for i, row in enumerate(rows):
        row.update(finished.get(i) or {"reachable": False, "detail": f"no answer within {timeout:g} s"})
