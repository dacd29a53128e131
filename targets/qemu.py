"""`qemu-arm64[:ROOTFS]`: an emulated 64-bit Raspberry Pi.

An arm64 Debian root filesystem (bookworm, Python 3.11, like Raspberry Pi OS) with the aarch64
wheels of ai-edge-litert and ExecuTorch inside, run with qemu-user through binfmt_misc in a
chroot. The agent executes on real ARM kernels (XNNPACK's NEON paths), which is what it is for:
function, delegation and parity on ARM. Its timings are 200–600× slower than a board and are
always labelled emulated.

`edgekit emulator create rpi [--dir DIR]` builds the root filesystem (root needed) into
~/.cache/edgekit/emulators/rpi by default:
  1. `mmdebstrap --variant=extract` unpacks python3 and the few libraries the wheels need
     (no maintainer scripts run under emulation: seconds instead of minutes);
  2. pip on the host installs the aarch64 wheels into its /usr/local/lib/python3.11/dist-packages
     (`--platform manylinux_2_17_aarch64 ... --only-binary=:all: --no-deps`, a pinned list);
  3. /etc/passwd and the CPU topology files are written (ai-edge-litert 2.3.0 segfaults under
     qemu-user when it sees the host's /sys, so only /proc is ever mounted, privately).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.errors import BadInput, MissingDependency, TargetUnreachable

from .base import AgentTarget

RECIPE_VERSION = 2
SUITE = "bookworm"  # Python 3.11, the same as Raspberry Pi OS 12
MIRROR = os.environ.get("EDGEKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_PACKAGES = ["python3", "libstdc++6", "libgcc-s1", "zlib1g", "base-files"]
PLATFORMS = ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"]
# --no-deps, so the full closure is listed (pip evaluates markers for the host, not the board:
# torch's x86_64-only CUDA requirements would otherwise come along).
WHEELS = {
    "litert": ["ai-edge-litert==2.3.0", "numpy==2.4.6", "flatbuffers", "protobuf", "ml-dtypes",
               "backports.strenum", "tqdm", "typing-extensions"],
    # executorch 1.0.1 is the newest that runs on aarch64 without CUDA packages (1.5.1 needs torch 2.13,
    # whose aarch64 wheel pulls them); it runs .pte files exported by executorch 1.5.1.
    "executorch": ["executorch==1.0.1", "torch==2.9.1", "filelock", "sympy", "mpmath==1.3.0", "networkx",
                   "jinja2", "markupsafe", "fsspec", "packaging", "ruamel.yaml", "pyyaml", "tabulate"],
}
SITE = "usr/local/lib/python3.11/dist-packages"
MARKER = "etc/edgekit-emulator.json"
APT_LINE = "apt-get install mmdebstrap qemu-user-static binfmt-support"


def default_dir(kind: str = "rpi") -> Path:
    """Where `edgekit emulator create KIND` puts the root filesystem by default:
    $EDGEKIT_CACHE, else $XDG_CACHE_HOME/edgekit, else ~/.cache/edgekit; then emulators/KIND."""
    base = os.environ.get("EDGEKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                           os.path.expanduser("~/.cache"), "edgekit")
    return Path(base) / "emulators" / kind


# -- host preparation -----------------------------------------------------------------------

def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise MissingDependency(f"{what} needs root (chroot, binfmt_misc, mounting /proc).",
                                "Run it with sudo, or profile on a real board over ssh://.")


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu-aarch64 registered (there is no systemd to do it here)."""
    if not shutil.which("qemu-aarch64-static") and not Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P").exists():
        raise MissingDependency("qemu-user-static is not installed.", f"Install it: {APT_LINE}")
    root = Path("/proc/sys/fs/binfmt_misc")
    if not (root / "register").exists():
        _need_root("Registering qemu with binfmt_misc")
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(root)], check=False,
                       capture_output=True)
    entry = root / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        if not shutil.which("update-binfmts"):
            raise MissingDependency("binfmt-support is not installed.", f"Install it: {APT_LINE}")
        _need_root("Registering qemu with binfmt_misc")
        p = subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, text=True)
        if not entry.exists():
            raise MissingDependency(f"qemu-aarch64 could not be registered with binfmt_misc: {p.stderr.strip()}",
                                    f"Install {APT_LINE}, then: update-binfmts --enable qemu-aarch64")


def create(kind: str = "rpi", dest: str | Path | None = None, runtimes=("litert", "executorch"),
           force: bool = False, log=lambda m: None) -> dict:
    """Build (or find cached) the emulated board's root filesystem.

    Args:
        kind: the emulated board; only "rpi" (64-bit Raspberry Pi, arm64 Debian bookworm).
        dest: the root filesystem's folder (default `default_dir(kind)`).
        runtimes: keys of WHEELS to install ("litert", "executorch").
        force: rebuild even when the marker file says an identical one is there.
        log: called with one line per step.

    Returns the marker's content (recipe, suite, runtimes, wheels, timings in seconds, created)
    plus `path`, `cached` (True when nothing was built) and, when built, `size_bytes`.
    Raises BadInput (exit 2) for another KIND; MissingDependency (exit 3) without root,
    mmdebstrap, qemu-user-static/binfmt-support, or when pip cannot fetch the wheels;
    TargetUnreachable (exit 4) when mmdebstrap fails (e.g. the Debian mirror is unreachable).
    A failed build leaves nothing at DEST (it is built in a temporary folder and renamed)."""
    if kind != "rpi":
        raise BadInput(f"Unknown emulator {kind!r}.", "Available: rpi (64-bit Raspberry Pi, arm64 Debian).")
    dest = Path(dest) if dest else default_dir(kind)
    want = {"recipe": RECIPE_VERSION, "suite": SUITE, "runtimes": sorted(runtimes),
            "wheels": sorted(w for r in runtimes for w in WHEELS[r])}
    marker = dest / MARKER
    if marker.exists() and not force:
        have = json.loads(marker.read_text())
        if all(have.get(k) == v for k, v in want.items()):
            return {**have, "path": str(dest), "cached": True}
    _need_root("Building the emulated board")
    if not shutil.which("mmdebstrap"):
        raise MissingDependency("mmdebstrap is not installed.", f"Install it: {APT_LINE}")
    ensure_binfmt()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    timings = {}
    try:
        t0 = time.perf_counter()
        log(f"Unpacking arm64 Debian {SUITE} ({', '.join(DEBIAN_PACKAGES)})")
        p = subprocess.run(["mmdebstrap", "--quiet", "--arch=arm64", "--variant=extract",
                            "--include=" + ",".join(DEBIAN_PACKAGES), SUITE, str(tmp), MIRROR],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise TargetUnreachable("mmdebstrap could not build the arm64 root filesystem: "
                                    + " | ".join(p.stderr.strip().splitlines()[-3:]),
                                    f"Check that {MIRROR} is reachable (EDGEKIT_DEBIAN_MIRROR sets another).")
        timings["debian_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        wheels = [w for r in runtimes for w in WHEELS[r]]
        log(f"Installing aarch64 wheels: {' '.join(wheels)}")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--target", str(tmp / SITE)]
        for plat in PLATFORMS:
            cmd += ["--platform", plat]
        p = subprocess.run(cmd + wheels, capture_output=True, text=True)
        if p.returncode != 0:
            err = [l for l in p.stderr.splitlines() if "is ignored" not in l]
            raise MissingDependency("pip could not fetch the aarch64 wheels: " + " | ".join(err[-3:]),
                                    "Check the package index (pip config) is reachable.")
        timings["wheels_s"] = time.perf_counter() - t0
        _finish_rootfs(tmp)
        info = {**want, "timings": timings, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**info, "path": str(dest), "cached": False, "size_bytes": _du(dest)}


def _finish_rootfs(root: Path) -> None:
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for d in ("proc", "root", "tmp", "sys/devices/system/cpu"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    n = os.cpu_count() or 1
    for f in ("possible", "present", "online"):
        (root / "sys/devices/system/cpu" / f).write_text(f"0-{n - 1}\n" if n > 1 else "0\n")


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


# -- the target -----------------------------------------------------------------------------

class ChrootBoard:
    """The root filesystem as a board: files are copied into its /tmp, commands run in a chroot
    inside a private mount namespace where only /proc is mounted (gone when the command ends)."""

    def __init__(self, root: Path):
        self.root = root

    def _host(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def mkdtemp(self) -> str:
        """A new folder under the root filesystem's /tmp; its path as seen inside the chroot."""
        d = tempfile.mkdtemp(prefix="edgekit-", dir=self.root / "tmp")
        return "/tmp/" + Path(d).name

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        """Copy LOCAL into REMOTE_DIR (a path inside the chroot); its path inside the chroot."""
        inside = f"{remote_dir}/{name or Path(local).name}"
        shutil.copyfile(local, self._host(inside))
        return inside

    def get(self, remote: str, local: Path) -> None:
        """Copy REMOTE (a path inside the chroot) to LOCAL."""
        shutil.copyfile(self._host(remote), local)

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """Run ARGV chrooted into the root filesystem (`unshare --mount`, /proc mounted privately,
        a minimal environment) → (exit code, stdout, stderr). TargetUnreachable (exit 4) after
        TIMEOUT seconds."""
        script = 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"'
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        try:
            p = subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script,
                                str(self.root), *argv], capture_output=True, text=True, timeout=timeout, env=env,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise TargetUnreachable(f"qemu-arm64: the agent did not finish within {timeout:.0f} s.",
                                    "Emulation is 200–600× slower than a board: lower --runs.") from exc
        return p.returncode, p.stdout, p.stderr

    def rmtree(self, remote_dir: str) -> None:
        """Remove REMOTE_DIR (a path inside the chroot), ignoring errors."""
        shutil.rmtree(self._host(remote_dir), ignore_errors=True)


class QemuTarget(AgentTarget):
    """`qemu-arm64[:ROOTFS]`: the agent runs with /usr/bin/python3 inside the emulated arm64
    root filesystem ROOT (built by `create`); NAME is the TARGET string. Results are marked
    `emulated` and `device.emulated_by = "qemu-user"`."""

    emulated = True
    python = "/usr/bin/python3"

    def __init__(self, root: Path, spec: str):
        self.root = root
        self.name = spec

    @contextlib.contextmanager
    def board(self):
        """Context manager yielding a `ChrootBoard` on ROOT. Raises TargetUnreachable (exit 4)
        when ROOT holds no built board; MissingDependency (exit 3) without root or without
        qemu-user-static / binfmt-support."""
        if not (self.root / "usr/bin/python3").exists():
            raise TargetUnreachable(f"No emulated board at {self.root}.",
                                    f"Build it once with: edgekit emulator create rpi --dir {self.root}")
        _need_root("The qemu-arm64 target")
        ensure_binfmt()
        yield ChrootBoard(self.root)

    def check(self) -> dict:
        """`AgentTarget.check`, with `device.emulated_by = "qemu-user"`."""
        out = super().check()
        out["device"]["emulated_by"] = "qemu-user"
        return out

    def profile(self, artifact, settings) -> dict:
        """`AgentTarget.profile` (schema `$defs/profile`) with `device.emulated_by = "qemu-user"`
        and `device.cpu` labelled emulated; its warnings say the timings are emulated."""
        result = super().profile(artifact, settings)
        result["device"]["emulated_by"] = "qemu-user"
        result["device"]["cpu"] = f"emulated aarch64 (qemu-user on {result['device'].get('cpu') or 'the host'})"
        return result


def from_spec(spec: str, **_options) -> QemuTarget:
    """`qemu-arm64` (the root filesystem in `default_dir("rpi")`) or `qemu-arm64:ROOTFS` (a
    folder, `~` expanded) → a QemuTarget. Nothing is checked until it is used."""
    _, _, path = spec.partition(":")
    root = Path(path).expanduser() if path else default_dir("rpi")
    return QemuTarget(root.resolve(), f"qemu-arm64:{root}" if path else "qemu-arm64")
