"""The adb connection to an Android device, for targets/android.py: the adb server client
(adbutils), the device list with each device's properties, and ADBBoard, the Board (see
targets/base.py) that runs shell commands and moves files on one device.

Every shell command is built with proper quoting (a model path with spaces or quotes works).
Exit status comes from adb's shell v2 protocol when the device has it, else from an appended
`echo $?` marker (EXIT_MARKER).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
from pathlib import Path

from edgekit.errors import MissingDependency, TargetUnreachable

from .base import quote

PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer", "abi": "ro.product.cpu.abi",
         "abilist": "ro.product.cpu.abilist", "android": "ro.build.version.release", "sdk": "ro.build.version.sdk",
         "soc": "ro.soc.model", "hardware": "ro.hardware"}
EXIT_MARKER = "EDGEKIT-EXIT:"


def _adbutils():
    try:
        import adbutils
    except ImportError as exc:
        raise MissingDependency(f"Android targets need adbutils ({exc}).", "pip install adbutils") from exc
    return adbutils


def client():
    """An adbutils client of the adb server at EDGEKIT_ADB_HOST (default 127.0.0.1) and
    ANDROID_ADB_SERVER_PORT (default 5037), adb's own variable.

    Raises:
        MissingDependency (exit 3): adbutils is not installed.
    """
    adbutils = _adbutils()
    port = int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
    return adbutils.AdbClient(host=os.environ.get("EDGEKIT_ADB_HOST", "127.0.0.1"), port=port)


def _server_error(exc) -> TargetUnreachable:
    return TargetUnreachable(f"adb: cannot reach the adb server ({exc}).",
                             "Start it with `adb start-server` (Debian/Ubuntu: apt-get install adb; or Android "
                             "platform-tools), and check ANDROID_ADB_SERVER_PORT.")


def list_devices(with_props: bool = True) -> list[dict]:
    """Every device the adb server knows: serial, state, target spec (adb:SERIAL), and for ready
    ones (with_props) the PROPS keys (model, ABI, Android version, ...; None when not set).

    Raises:
        TargetUnreachable (exit 4): the adb server cannot be reached.
        MissingDependency (exit 3): adbutils is not installed.
    """
    c = client()
    try:
        infos = c.list(extended=True)
    except Exception as exc:
        raise _server_error(exc) from exc
    out = []
    for info in infos:
        d = {"serial": info.serial, "state": info.state, "target": f"adb:{info.serial}"}
        if with_props and info.state == "device":
            with contextlib.suppress(Exception):
                d.update(_props(c.device(info.serial)))
        out.append(d)
    return out


def _props(dev) -> dict:
    """PROPS of an adbutils device, from `getprop`."""
    r = dev.shell2("getprop", timeout=15)
    allp = {}
    for line in r.output.splitlines():
        if line.startswith("[") and "]: [" in line:
            k, _, v = line[1:].partition("]: [")
            allp[k] = v.rstrip("]")
    return {k: allp.get(p) or None for k, p in PROPS.items()}


class ADBBoard:
    """One Android device as a Board (targets/base.py): shell commands, files, temp folders.

    Every failure of the connection is raised as the target's `dropped` error
    (TargetUnreachable, exit 4).
    """

    def __init__(self, target, dev):
        """target: the AndroidTarget (its name, tmp folder, core pinning); dev: an adbutils device."""
        self.t, self.dev = target, dev
        self.v2 = None

    def _v2(self) -> bool:
        if self.v2 is None:
            try:
                self.v2 = "shell_v2" in self.dev.get_features().split(",")
            except Exception as exc:
                raise self.t.dropped(exc) from exc
        return self.v2

    def shell(self, command: str, timeout: float) -> tuple[int, str, str]:
        """Run a shell command line (already quoted) on the device; (exit code, stdout, stderr).
        timeout in seconds. Without shell v2, stderr is merged into stdout and returned as ""."""
        try:
            if self._v2():
                r = self.dev.shell2(command, timeout=timeout, v2=True, rstrip=False)
                code, out, err = r.returncode, r.stdout, r.stderr
            else:  # old devices: no exit status in the protocol, so print it last
                # in a subshell, so that an `exit` in COMMAND cannot skip the marker
                out = self.dev.shell(f"({command}\n); echo {EXIT_MARKER}$?", timeout=timeout, rstrip=False)
                i = out.rfind(EXIT_MARKER)
                if i < 0:
                    raise TargetUnreachable(f"{self.t.name}: the shell ended without an exit status.")
                code, out, err = int(out[i + len(EXIT_MARKER):].strip() or 255), out[:i], ""
        except TargetUnreachable:
            raise
        except Exception as exc:
            raise self.t.dropped(exc) from exc
        return code, out, err

    def mkdtemp(self) -> str:
        """Create a fresh edgekit-XXXXXXXX folder under the target's tmp; returns its path.

        Raises:
            TargetUnreachable (exit 4): the folder cannot be created.
        """
        d = f"{self.t.tmp}/edgekit-{secrets.token_hex(4)}"
        code, _, err = self.shell("mkdir -p " + quote([d]), 30)
        if code != 0:
            raise TargetUnreachable(f"{self.t.name}: cannot create {d}: {err.strip()}",
                                    f"Check that {self.t.tmp} on the device is writable (adb shell ls -ld {self.t.tmp}).")
        return d

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        """Push a local file into remote_dir (as `name`, default its own name), executable;
        returns the remote path."""
        remote = posixpath.join(remote_dir, name or Path(local).name)
        try:
            self.dev.sync.push(str(local), remote, mode=0o755)
        except Exception as exc:
            raise self.t.dropped(exc) from exc
        return remote

    def get(self, remote: str, local: Path) -> None:
        """Pull a remote file to a local path."""
        try:
            self.dev.sync.pull(remote, str(local))
        except Exception as exc:
            raise self.t.dropped(exc) from exc

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """Run a program (argv, quoted here) pinned to the target's cores when pinning applies;
        the agent also gets --watch-stdin, so it cleans up when adbd closes (cable pulled).
        Returns (exit code, stdout, stderr)."""
        pin = self.t.pinning
        if pin and pin.get("applied"):  # `taskset MASK cmd ...` (toybox and util-linux alike)
            argv = ["taskset", pin["mask"], *argv]
        if "--cleanup" in argv:  # the agent: also clean up when adbd closes its stdin (cable pulled)
            i = argv.index("--cleanup")
            argv = argv[:i] + ["--watch-stdin"] + argv[i:]
        return self.shell("TF_CPP_MIN_LOG_LEVEL=2 " + quote(argv), timeout)

    def rmtree(self, remote_dir: str) -> None:
        """Remove a folder edgekit created (an edgekit-* name; anything else is left alone);
        a device gone by then is ignored."""
        if not posixpath.basename(remote_dir).startswith("edgekit-"):
            return  # never remove anything edgekit did not create
        with contextlib.suppress(TargetUnreachable):
            self.shell("rm -rf " + quote([remote_dir]), 30)
