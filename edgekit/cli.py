"""The `edgekit` command: the root group, a lazy route table, and `main`.

Each subcommand lives in its own module, `edgekit.commands.<name>`, which defines
`<name>_command`; `ROUTES` maps the command name to that module and its one-line help, so
`edgekit --help` lists every command without importing any of them (the LiteRT CLI's LazyCLI
idea). Only click is imported at start-up; frameworks load inside commands, so `edgekit --help`
stays fast. tests/test_registries.py checks that each line of ROUTES matches its command.
"""

from __future__ import annotations

import importlib
import sys

import click

from ._version import __version__
from .commands.output import STATE, console, emit_json, stdout_to_stderr  # noqa: F401 (re-exported)
from .errors import EdgekitError, interrupt_exit_code, is_interrupt, raise_if_ctrl_c_seen, watch_ctrl_c

# command name → (module in edgekit.commands, short help shown by `edgekit --help`)
ROUTES = {
    "convert": ("convert", "Convert MODEL to an on-device format, quantize it, and check it against the original."),
    "devices": ("devices", "List the targets edgekit can reach now (host, phones, Coral, named boards), or check one."),
    "emulator": ("emulator", "Emulated boards for running artifacts on ARM without hardware."),
    "inspect": ("inspect", "Inspect a .tflite: with --edgetpu, whether and how much of it will run on a Coral Edge TPU."),
    "profile": ("profile", "Measure ARTIFACT where it will run: latency distribution, init, first inference, peak "
                           "memory, delegate coverage, per-operator times where the runtime gives them."),
    "report": ("report", "Re-render a saved report.json as Markdown or HTML."),
    "run": ("run", "Build, check and profile every build of an edgekit.yaml; exit 1 when a budget fails."),
    "validate": ("validate", "Check that CANDIDATE (an artifact) computes what REFERENCE computes."),
    "worker": ("worker", "Join the Ray cluster at HEAD, offering each --target as a device (runs until stopped)."),
}

# Every EDGEKIT_* environment variable edgekit reads → what it sets. The `edgekit --help` epilog
# and the README's table come from here (tests/test_cli.py checks both against the source;
# here, not in commands/options.py, so that `edgekit --help` imports no command module).
ENVIRONMENT = {
    "EDGEKIT_TARGETS_FILE": "the named-targets file (default $XDG_CONFIG_HOME/edgekit/targets.toml)",
    "EDGEKIT_ISOLATE": "0: run convert's framework work in this process, not in a child",
    "EDGEKIT_SSH_PYTHON": "the Python the agent runs with on SSH boards (default python3)",
    "EDGEKIT_ADB_HOST": "the adb server's host (default 127.0.0.1; port: ANDROID_ADB_SERVER_PORT)",
    "EDGEKIT_ADB_PYTHON": "the Python on an Android device for the agent (Termux)",
    "EDGEKIT_BENCHMARK_MODEL": "LiteRT benchmark_model for Android, pushed to the device",
    "EDGEKIT_EXECUTOR_RUNNER": "ExecuTorch executor_runner for .pte on Android",
    "EDGEKIT_ETDUMP": "where to pull executor_runner's ETDump to on this computer",
    "EDGEKIT_EDGETPU_LIB": "the Edge TPU delegate library (default libedgetpu.so.1)",
    "EDGEKIT_CACHE": "emulator root filesystems (default $XDG_CACHE_HOME/edgekit)",
    "EDGEKIT_DEBIAN_MIRROR": "the Debian mirror of `emulator create` (default deb.debian.org)",
    "EDGEKIT_ISOLATION_FD": "internal: set by edgekit for its own child process",
    "_EDGEKIT_COMPLETE": "shell completion: bash_source, zsh_source or fish_source (click)",
}


def environment_help() -> str:
    """The `edgekit --help` epilog: shell completion, and ENVIRONMENT one variable a line."""
    width = max(map(len, ENVIRONMENT))
    lines = [f"  {k:<{width}}  {v}" for k, v in ENVIRONMENT.items() if not k.startswith("_")]
    return ("\b\nShell completion (bash; zsh_source/fish_source for zsh/fish):\n"
            '  eval "$(_EDGEKIT_COMPLETE=bash_source edgekit)"    # e.g. in ~/.bashrc\n\n'
            "\b\nEnvironment:\n" + "\n".join(lines))


def _set_global(ctx, param, value):
    """Callback of a global flag given after the subcommand: set it in STATE as the root does."""
    if value:
        setattr(STATE, param.name, True)
        if param.name == "debug":  # the root quietened the frameworks before it saw this flag
            from .native_log import loud_framework_logs

            loud_framework_logs()
    return value


def global_options() -> list[click.Option]:
    """Fresh `--debug`, `-q/--quiet`, `-v/--verbose` options, as the root `edgekit` group has
    them, for a subcommand (see `add_global_options`)."""
    return [click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_global,
                         help="Show tracebacks and framework logs (as `edgekit --debug`)."),
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_set_global,
                         help="Only errors on stderr (as `edgekit -q`)."),
            click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_set_global,
                         help="More detail on stderr (as `edgekit -v`).")]


def add_global_options(cmd: click.Command) -> click.Command:
    """Let CMD (and, for a group, each of its subcommands) take the global flags after its name
    too (`edgekit convert m.keras -q`), setting the same STATE as the root group. A flag CMD
    already has is left alone; applying twice changes nothing. Returns CMD."""
    have = {name for p in cmd.params for name in p.opts}
    cmd.params.extend(o for o in global_options() if not have.intersection(o.opts))
    for sub in getattr(cmd, "commands", {}).values():
        add_global_options(sub)
    return cmd


def load_command(name: str) -> click.Command:
    """Import `edgekit.commands.<module>` for command NAME (a key of ROUTES) and return its
    `<module>_command`. Raises KeyError for a name not in ROUTES."""
    module = ROUTES[name][0]
    return getattr(importlib.import_module(f"edgekit.commands.{module}"), f"{module}_command")


class LazyGroup(click.Group):
    """A click Group whose subcommands come from ROUTES and are imported only when used."""

    def list_commands(self, ctx):
        """The command names of ROUTES, sorted."""
        return sorted(ROUTES)

    def get_command(self, ctx, cmd_name):
        """The click command for CMD_NAME (its module imported now), or None when unknown; it
        (and its subcommands) also take --debug/-q/-v after its name (`add_global_options`)."""
        if cmd_name not in ROUTES:
            return None
        return add_global_options(load_command(cmd_name))

    def format_commands(self, ctx, formatter):
        """The "Commands:" section from ROUTES' short help, without importing any command."""
        names = self.list_commands(ctx)
        if names:
            limit = formatter.width - 6 - max(len(n) for n in names)
            with formatter.section("Commands"):
                formatter.write_dl([(n, short_help(n, limit)) for n in names])


def short_help(name: str, limit: int = 45) -> str:
    """ROUTES' one-line help of command NAME, cut to LIMIT characters as click cuts a
    command's docstring (same rule, no import of the command)."""
    return click.Command(name, help=ROUTES[name][1]).get_short_help_str(limit)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=environment_help())
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show tracebacks and framework logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="More detail on stderr.")
def cli(debug, quiet, verbose):
    """Quantize, convert, verify and profile models for edge devices.

    --debug, -q and -v work after the command too (`edgekit convert m.keras -q`).

    \b
    Exit codes: 0 ok · 1 a check or budget failed · 2 usage or bad input ·
                3 a dependency or tool is missing · 4 a device or target is unreachable
    """
    STATE.debug, STATE.quiet, STATE.verbose = debug, quiet, verbose
    if not debug:
        from .native_log import quiet_framework_logs

        quiet_framework_logs()


def main(argv=None):
    """Run `edgekit ARGV` (default: sys.argv[1:]) and exit with its code: 0 ok, 1 a check
    failed (CheckFailed) or edgekit hit a bug, 2 usage or bad input (BadInput, click usage
    errors, and an OSError on a file: disk full, a name too long, permission denied), 3 a missing
    dependency, 4 an unreachable target, 128+signal when interrupted (130 Ctrl-C, 143 SIGTERM,
    129 SIGHUP). As the `edgekit` command (ARGV None) every temporary file goes into a private
    folder removed on exit (edgekit.scratch.private_tmpdir).

    This is edgekit's one error boundary: every failure prints ONE paragraph on stderr,
    "error: MESSAGE" plus a hint, and no traceback unless --debug. An exception that is not an
    EdgekitError is described too (`unexpected_error`) instead of escaping as a traceback. With
    --json, the error is also printed on stdout as {"error": {message, hint, exit_code, kind}}.
    """
    watch_ctrl_c()
    STATE.json_emitted = False
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv is None:  # the edgekit command: its temporary files live and die with it
            from .scratch import private_tmpdir

            with private_tmpdir():
                cli.main(args=args, prog_name="edgekit", standalone_mode=False)
        else:  # called from Python: the caller's process, the caller's temp dir
            cli.main(args=args, prog_name="edgekit", standalone_mode=False)
        raise_if_ctrl_c_seen()  # a framework import or native loop swallowed the KeyboardInterrupt
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        interrupted = is_interrupt(exc) or isinstance(exc, click.exceptions.Abort)
        if not interrupted and isinstance(exc, click.ClickException):
            exc.show()
            _json_error(args, EdgekitError(exc.format_message()), exc.exit_code)
            sys.exit(exc.exit_code)
        if STATE.debug:
            import traceback

            traceback.print_exc()
        if interrupted:
            exc = EdgekitError(STATE.interrupted_note)
        elif not isinstance(exc, EdgekitError):
            exc = unexpected_error(exc)
        code = interrupt_exit_code() if interrupted else exc.exit_code
        _print_error(exc)
        _json_error(args, exc, code)
        sys.exit(code)


def unexpected_error(exc: BaseException) -> EdgekitError:
    """The EdgekitError shown for an exception edgekit did not raise on purpose.

    An OSError naming a file (disk full, a name too long, a folder where a file was expected,
    permission denied) is about a path the user gave or the disk it lives on: BadInput, exit 2,
    naming the file and the errno's meaning. Anything else is a bug: exit 1, asking for a rerun
    with --debug and a report."""
    import errno as errno_mod
    import os

    if isinstance(exc, OSError) and exc.errno is not None:
        from .errors import BadInput

        what = os.strerror(exc.errno)
        name = errno_mod.errorcode.get(exc.errno, str(exc.errno))
        files = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        where = f" on {files}" if files else ""
        hints = {
            errno_mod.ENOSPC: "Free disk space (or choose another folder with -o) and rerun; nothing partial was kept.",
            errno_mod.EDQUOT: "Free space within your quota (or choose another folder with -o) and rerun.",
            errno_mod.ENAMETOOLONG: "Choose a shorter path or file name (at most 255 bytes per name).",
            errno_mod.EISDIR: "Name a file, not a folder (e.g. -o FOLDER/model.tflite).",
            errno_mod.EACCES: "Choose a location you can write to, or fix the permissions.",
            errno_mod.EROFS: "The file system is read-only: choose another location with -o.",
        }
        return BadInput(f"{what} ({name}){where}.",
                        hints.get(exc.errno, "Check that path (and the disk it is on), then rerun."))
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    err = EdgekitError(f"edgekit hit an unexpected {type(exc).__name__}{detail}.",
                       "This is a bug: rerun with --debug for the traceback and report it.")
    err.exit_code = 1
    err.kind = "bug"
    return err


def _print_error(exc: EdgekitError) -> None:
    msg = f"error: {exc.message}"
    if exc.hint:
        msg += f"\n  {exc.hint}"
    click.echo(msg, err=True)


def _json_error(args: list, exc: EdgekitError, code: int) -> None:
    """With --json among ARGS, print {"error": {message, hint, exit_code, kind}} on stdout."""
    if "--json" not in args or STATE.json_emitted:  # a failed check after its result: the result says why
        return
    emit_json({"error": {"message": exc.message, "hint": exc.hint, "exit_code": code, "kind": exc.kind}})
