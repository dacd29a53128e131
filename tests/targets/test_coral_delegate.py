"""`--target coral` / `coral@ssh://…`: libedgetpu is loaded as an external delegate through
ai-edge-litert's load_delegate. No Edge TPU, libedgetpu or compiler exists here, so a test-only
delegate library is built from C inside the test: it speaks the TFLite external-delegate plugin
ABI (`tflite_plugin_create_delegate` / `tflite_plugin_destroy_delegate`), records the options it
was given, "finds a device" only when a marker file exists (the stand-in for /dev/apex_0 or the
USB accelerator), and claims no nodes (the graph runs on the CPU kernels)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from edgekit.errors import BadInput

GCC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(GCC is None, reason="needs a C compiler to build the test delegate")

SOURCE = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The TfLiteDelegate struct of tensorflow/lite/core/c/common.h (TF 2.x / LiteRT). */
typedef struct TfLiteDelegate {
  void* data_;
  int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
  int (*CopyFromBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  int (*CopyToBufferHandle)(void*, struct TfLiteDelegate*, int, void*);
  void (*FreeBufferHandle)(void*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

static void record(const char* line) {
  FILE* f = fopen(RECORD_FILE, "a");
  if (f) { fprintf(f, "%s\n", line); fclose(f); }
}

static int prepare(void* context, TfLiteDelegate* delegate) {
  (void)context; (void)delegate;
  record("prepare");  /* claims no nodes: every op stays on the CPU kernels */
  return 0;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
  char line[512];
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof line, "option %s=%s", keys[i], values[i]);
    record(line);
  }
  if (access(DEVICE_FILE, F_OK) != 0) {
    if (report_error) report_error("Failed to open device: no Edge TPU found (test delegate)");
    return NULL;
  }
  TfLiteDelegate* d = (TfLiteDelegate*)calloc(1, sizeof(TfLiteDelegate));
  d->Prepare = prepare;
  record("created");
  return d;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* d) { record("destroyed"); free(d); }
"""


@pytest.fixture(scope="module")
def delegate(tmp_path_factory):
    d = tmp_path_factory.mktemp("test delegate")  # a space in the path, on purpose
    src, lib = d / "fake_edgetpu.c", d / "libfake_edgetpu.so.1"
    device, rec = d / "apex_0", d / "record.txt"
    src.write_text(SOURCE)
    subprocess.run([GCC, "-shared", "-fPIC", "-O1", f'-DDEVICE_FILE="{device}"', f'-DRECORD_FILE="{rec}"',
                    "-o", str(lib), str(src)], check=True, capture_output=True)
    return {"lib": lib, "device": device, "record": rec}


@pytest.fixture
def plugged(delegate):
    delegate["device"].write_text("")
    delegate["record"].write_text("")
    yield delegate
    delegate["device"].unlink(missing_ok=True)


def test_delegate_loads_with_options_and_reports_its_node_count(cli, plugged, digits_tflite, monkeypatch):
    monkeypatch.setenv("EDGEKIT_EDGETPU_LIB", str(plugged["lib"]))
    r = cli("profile", digits_tflite, "--target", "coral:usb:0", "--runs", "5", "--warmup", "1", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    rec = plugged["record"].read_text().split("\n")
    assert "option device=usb:0" in rec and "created" in rec and "prepare" in rec and "destroyed" in rec
    assert res["target"] == "coral:usb:0"
    assert res["delegation"]["backend"] == "libfake_edgetpu.so.1"
    assert res["delegation"]["delegated_ops"] == 0 and res["delegation"]["total_ops"] > 0
    assert res["edgetpu"] == {"library": str(plugged["lib"]), "device": "usb:0", "nodes_on_edgetpu": 0,
                              "total_nodes": res["delegation"]["total_ops"]}
    assert res["latency_ms"]["p50"] > 0


def test_extra_options_from_the_target_url(cli, plugged, digits_tflite):
    r = cli("profile", digits_tflite, "--target", f"coral:pci?lib={plugged['lib']}&performance=max",
            "--runs", "3", "--warmup", "0", "--json")
    assert r.exit_code == 0, r
    rec = plugged["record"].read_text().split("\n")
    assert "option device=pci" in rec and "option performance=max" in rec


def test_no_device_is_exit_4_with_the_hint(cli, delegate, digits_tflite, monkeypatch):
    delegate["device"].unlink(missing_ok=True)
    monkeypatch.setenv("EDGEKIT_EDGETPU_LIB", str(delegate["lib"]))
    r = cli("profile", digits_tflite, "--target", "coral", "--runs", "3")
    assert r.exit_code == 4, r
    assert "found no device" in r.stderr and "no Edge TPU found (test delegate)" in r.stderr
    assert "lsusb" in r.stderr


def test_missing_library_is_exit_3_with_the_install_line(cli, digits_tflite, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_EDGETPU_LIB", str(tmp_path / "libedgetpu.so.1"))  # not there, as on this host
    r = cli("profile", digits_tflite, "--target", "coral", "--runs", "3")
    assert r.exit_code == 3, r
    assert "cannot be loaded" in r.stderr and "libedgetpu1-std" in r.stderr


def test_real_libedgetpu_is_absent_here(cli, digits_tflite, monkeypatch):
    """The default library name: on a machine without Coral's runtime this is the exit-3 path."""
    monkeypatch.delenv("EDGEKIT_EDGETPU_LIB", raising=False)
    r = cli("profile", digits_tflite, "--target", "coral", "--runs", "3")
    if r.exit_code == 4:  # pragma: no cover - libedgetpu installed, no accelerator plugged in
        pytest.skip("libedgetpu.so.1 is installed here (no device): the exit-4 path is tested above")
    assert r.exit_code in (3, 0), r


def test_coral_over_ssh(cli, sshd, ssh_home, board_python, plugged, digits_tflite):
    r = cli("profile", digits_tflite, "--target", f"coral@ssh://board:usb?python={board_python}&lib={plugged['lib']}",
            "--runs", "3", "--warmup", "0", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["target"] == "coral@ssh://board" and res["delegation"]["backend"] == "libfake_edgetpu.so.1"
    assert "option device=usb" in plugged["record"].read_text().split("\n")
    assert sshd.leftovers() == []


def test_target_spec_errors():
    from edgekit.targets import get

    with pytest.raises(BadInput):
        get("coral:gpu")
    with pytest.raises(BadInput):
        get("coral@http://x")
    t = get("coral@ssh://pi@10.0.0.2:2222:pci:0")
    assert t.device == "pci:0" and t.name == "coral@ssh://pi@10.0.0.2:2222" and t.library == "libedgetpu.so.1"
