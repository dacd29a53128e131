"""Test-only: an emulated Android device speaking the adb *device* protocol (what adbd speaks)
over TCP, so that the real `adb` server (Debian's package, or the one adbutils ships) can
`adb connect 127.0.0.1:PORT` to it and adbutils / `adb shell` / `adb push` talk to it.

Implemented: CNXN (banner with ro.product.* and features shell_v2,cmd), AUTH (an unauthorized
device answers every signature with a new token, as a phone whose RSA prompt nobody accepts),
OPEN/OKAY/WRTE/CLSE streams with one-WRTE-in-flight flow control, `shell:` (v1: output then
close), `shell,v2:` (stdout/stderr/exit packets), `sync:` (STAT, LIST, SEND, RECV, QUIT) and
`getprop` (answered from the device's properties). Shell commands run on this host with
`sh -c` as the device's shell (so /data/local/tmp is this host's /data/local/tmp); a vanished
device drops every connection and SIGHUPs its shells, as a pulled USB cable does to adbd.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time

A_SYNC, A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH = (
    0x434E5953, 0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45534C43, 0x45545257, 0x48545541)
VERSION = 0x01000001  # checksums skipped
MAX_PAYLOAD = 256 * 1024
CHUNK = 32 * 1024

DEFAULT_PROPS = {
    "ro.product.name": "edgekit_emu",
    "ro.product.model": "Edgekit Phone 1",
    "ro.product.device": "emu64a",
    "ro.product.manufacturer": "edgekit",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.soc.model": "SM8550",
    "ro.hardware": "qcom",
}


def _msg(cmd: int, a0: int, a1: int, data: bytes = b"") -> bytes:
    return struct.pack("<6I", cmd, a0, a1, len(data), 0, cmd ^ 0xFFFFFFFF) + data


class _Conn:
    def __init__(self, dev: "EmulatedDevice", sock: socket.socket):
        self.dev, self.sock = dev, sock
        self.lock = threading.Lock()
        self.streams: dict[int, "_Stream"] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.alive = True

    def send(self, cmd, a0, a1, data=b""):
        with self.lock:
            self.sock.sendall(_msg(cmd, a0, a1, data))

    def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def serve(self):
        try:
            while True:
                cmd, a0, a1, n, _crc, _magic = struct.unpack("<6I", self.recv_exact(24))
                data = self.recv_exact(n) if n else b""
                self.dispatch(cmd, a0, a1, data)
        except (ConnectionError, OSError):
            pass  # the host hung up (or the test made the device vanish): end of this connection
        finally:
            self.alive = False
            for s in list(self.streams.values()):
                s.closed_by_host()
            try:
                self.sock.close()
            except OSError:
                pass  # already closed

    def dispatch(self, cmd, a0, a1, data):
        dev = self.dev
        if cmd == A_CNXN:
            self.max_payload = min(MAX_PAYLOAD, a1 or MAX_PAYLOAD)
            if dev.unauthorized:
                self.send(A_AUTH, 1, 0, os.urandom(20))  # TOKEN
            else:
                self.send(A_CNXN, VERSION, MAX_PAYLOAD, dev.banner())
        elif cmd == A_AUTH:
            if a0 == 2:  # SIGNATURE: never valid here; ask again (the host then offers its public key)
                self.send(A_AUTH, 1, 0, os.urandom(20))
            # RSAPUBLICKEY (3): the user would have to accept the prompt on the phone; nobody does
        elif cmd == A_OPEN:
            if dev.unauthorized:
                return
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            local = self.next_id
            self.next_id += 1
            s = _Stream(self, local, a0, service)
            self.streams[local] = s
            dev.services.append(service)
            threading.Thread(target=s.run, daemon=True).start()
        elif cmd == A_OKAY:
            s = self.streams.get(a1)
            if s:
                s.okay.set()
        elif cmd == A_WRTE:
            s = self.streams.get(a1)
            if s:
                self.send(A_OKAY, a1, a0)
                s.incoming(data)
        elif cmd == A_CLSE:
            s = self.streams.pop(a1, None)
            if s:
                s.closed_by_host()


class _Stream:
    def __init__(self, conn: _Conn, local: int, remote: int, service: str):
        self.c, self.local, self.remote, self.service = conn, local, remote, service
        self.okay = threading.Event()
        self.inbox = bytearray()
        self.inbox_cv = threading.Condition()
        self.host_closed = False
        self.proc = None
        self.v2 = False

    # -- plumbing ------------------------------------------------------------------------------
    def write(self, data: bytes):
        for i in range(0, len(data), min(CHUNK, self.c.max_payload)):
            if self.host_closed or not self.c.alive:
                raise ConnectionError("stream closed")
            self.okay.clear()
            self.c.send(A_WRTE, self.local, self.remote, data[i : i + CHUNK])
            while not self.okay.wait(0.1):
                if self.host_closed or not self.c.alive:
                    raise ConnectionError("stream closed")

    def close(self):
        self.c.streams.pop(self.local, None)
        if self.c.alive and not self.host_closed:
            try:
                self.c.send(A_CLSE, self.local, self.remote)
            except OSError:
                pass  # the connection is gone; the host sees the stream closed either way

    def incoming(self, data: bytes):
        if self.proc is not None and self.v2:  # shell v2 packets from the host: stdin, close-stdin
            self.inbox += data
            while len(self.inbox) >= 5:
                kind, n = self.inbox[0], struct.unpack("<I", self.inbox[1:5])[0]
                if len(self.inbox) < 5 + n:
                    break
                payload = bytes(self.inbox[5 : 5 + n])
                del self.inbox[: 5 + n]
                try:
                    if kind == 0:
                        self.proc.stdin.write(payload)
                        self.proc.stdin.flush()
                    elif kind == 4:
                        self.proc.stdin.close()
                except (OSError, ValueError):
                    pass
            return
        with self.inbox_cv:
            self.inbox += data
            self.inbox_cv.notify_all()

    def closed_by_host(self):
        self.host_closed = True
        with self.inbox_cv:
            self.inbox_cv.notify_all()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:  # as adbd: the shell's session goes, its processes get SIGHUP
                os.killpg(self.proc.pid, signal.SIGHUP)
            except OSError:
                pass

    def read(self, n: int) -> bytes:
        with self.inbox_cv:
            while len(self.inbox) < n:
                if self.host_closed:
                    raise ConnectionError("closed")
                self.inbox_cv.wait(0.1)
            out = bytes(self.inbox[:n])
            del self.inbox[:n]
            return out

    # -- services ------------------------------------------------------------------------------
    def run(self):
        try:
            self.c.send(A_OKAY, self.local, self.remote)
            if self.service.startswith("shell"):
                head, _, cmd = self.service.partition(":")
                self.shell(cmd, "v2" in head.split(","))
            elif self.service == "sync:":
                self.sync()
            else:
                pass  # unknown service: just close
        except (ConnectionError, OSError):
            pass  # the host hung up (or the test made the device vanish): end of this connection
        finally:
            self.close()

    def shell(self, cmd: str, v2: bool):
        self.v2 = v2
        dev = self.c.dev
        if not cmd.strip():
            self._shell_result(v2, b"", b"interactive shells are not emulated\n", 1)
            return
        for hook in list(dev.on_shell):
            hook(cmd)
        env = dict(os.environ, **dev.env)
        env["PATH"] = dev.bin + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        # stdin stays open while the stream lives (as adbd's socketpair): closing it is how a
        # process on the phone learns that the host went away
        self.proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE if v2 else subprocess.STDOUT, cwd="/",
                                     env=env, start_new_session=True)
        dev.procs.append(self.proc)
        lock = threading.Lock()

        def pump(pipe, kind):
            for chunk in iter(lambda: os.read(pipe.fileno(), 65536), b""):
                with lock:
                    self.write(bytes([kind]) + struct.pack("<I", len(chunk)) + chunk if v2 else chunk)

        threads = [threading.Thread(target=pump, args=(self.proc.stdout, 1), daemon=True)]
        if v2:
            threads.append(threading.Thread(target=pump, args=(self.proc.stderr, 2), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        code = self.proc.wait()
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        if v2:
            self.write(b"\x03" + struct.pack("<I", 1) + bytes([code & 0xFF]))

    def _shell_result(self, v2, out, err, code):
        if v2:
            if out:
                self.write(b"\x01" + struct.pack("<I", len(out)) + out)
            if err:
                self.write(b"\x02" + struct.pack("<I", len(err)) + err)
            self.write(b"\x03" + struct.pack("<I", 1) + bytes([code]))
        else:
            self.write(out + err)

    def sync(self):
        while True:
            req = self.read(8)
            cmd, n = req[:4], struct.unpack("<I", req[4:])[0]
            arg = self.read(n).decode("utf-8", "replace") if n else ""
            if cmd == b"QUIT":
                return
            if cmd == b"STAT":
                try:
                    st = os.stat(arg)
                    self.write(b"STAT" + struct.pack("<III", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)))
                except OSError:
                    self.write(b"STAT" + struct.pack("<III", 0, 0, 0))
            elif cmd == b"LIST":
                try:
                    for name in sorted(os.listdir(arg)):
                        st = os.lstat(os.path.join(arg, name))
                        b = name.encode()
                        self.write(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                         int(st.st_mtime), len(b)) + b)
                except OSError:
                    pass
                self.write(b"DONE" + b"\0" * 16)
            elif cmd == b"SEND":
                path, _, mode = arg.rpartition(",")
                data = bytearray()
                while True:
                    h = self.read(8)
                    k, m = h[:4], struct.unpack("<I", h[4:])[0]
                    if k == b"DATA":
                        data += self.read(m)
                    elif k == b"DONE":
                        break
                    else:
                        raise ConnectionError(f"bad sync SEND chunk {k!r}")
                try:
                    with open(path, "wb") as f:
                        f.write(data)
                    os.chmod(path, stat.S_IMODE(int(mode)) if mode.isdigit() else 0o644)
                    self.write(b"OKAY" + b"\0" * 4)
                except OSError as exc:
                    msg = f"couldn't create file: {exc.strerror}".encode()
                    self.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
            elif cmd == b"RECV":
                try:
                    with open(arg, "rb") as f:
                        while True:
                            chunk = f.read(CHUNK)
                            if not chunk:
                                break
                            self.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                    self.write(b"DONE" + b"\0" * 4)
                except OSError as exc:
                    msg = f"{exc.strerror}".encode()
                    self.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
            else:
                msg = f"unknown sync command {cmd!r}".encode()
                self.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return


class EmulatedDevice:
    """One emulated phone on 127.0.0.1:port. `vanish()` pulls the cable."""

    def __init__(self, props: dict | None = None, unauthorized: bool = False, env: dict | None = None,
                 features: str = "shell_v2,cmd", port: int = 0):
        self.props = dict(DEFAULT_PROPS, **(props or {}))
        self.features = features
        self.unauthorized = unauthorized
        self.env = env or {}
        self.services: list[str] = []
        self.on_shell: list = []
        self.procs: list[subprocess.Popen] = []
        self.conns: list[_Conn] = []
        # the phone's own commands (getprop) on its shell's PATH
        self.bin = tempfile.mkdtemp(prefix="adb-emu-bin-")
        table = "".join(f"{k}\t{v}\n" for k, v in sorted(self.props.items()))
        with open(os.path.join(self.bin, "props"), "w") as f:
            f.write(table)
        with open(os.path.join(self.bin, "getprop"), "w") as f:
            f.write("#!/bin/sh\n"
                    f'P="{self.bin}/props"\n'
                    'if [ $# -ge 1 ]; then awk -F "\\t" -v k="$1" \'$1 == k {print $2}\' "$P"; '
                    'else awk -F "\\t" \'{printf "[%s]: [%s]\\n", $1, $2}\' "$P"; fi\n')
        os.chmod(os.path.join(self.bin, "getprop"), 0o755)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # port=5555 (5557, ... 5585): where the adb server looks for Android Emulators on its own
        # (it calls the one on 5555 `emulator-5554`, after the console port below it); loopback only
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def banner(self) -> bytes:
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        props = ";".join(f"{k}={self.props[k]}" for k in keys)
        return f"device::{props};features={self.features}\0".encode()

    def _accept(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            if not self.running:
                s.close()
                return
            c = _Conn(self, s)
            self.conns.append(c)
            threading.Thread(target=c.serve, daemon=True).start()

    def vanish(self):
        """Drop every connection at once and stop answering (a pulled cable / dead phone)."""
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.sock.close()

    def wait_children(self, timeout: float = 10.0):
        end = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass

    close = vanish
