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
from .errors import EdgekitError, interrupt_exit_code, is_interrupt, watch_ctrl_c

# command name → (module in edgekit.commands, short help shown by `edgekit --help`)
ROUTES = {
    "convert": ("convert", "Convert MODEL to an on-device format, quantize it, and check it against the original."),
    "devices": ("devices", "Check the devices edgekit can run on."),
    "emulator": ("emulator", "Emulated boards for running artifacts on ARM without hardware."),
    "inspect": ("inspect", "Inspect a .tflite: with --edgetpu, whether and how much of it will run on a Coral Edge TPU."),
    "profile": ("profile", "Measure ARTIFACT where it will run: latency distribution, init, first inference, peak "
                           "memory, delegate coverage, per-operator times where the runtime gives them."),
    "report": ("report", "Re-render a saved report.json as Markdown or HTML."),
    "run": ("run", "Build, check and profile every build of an edgekit.yaml; exit 1 when a budget fails."),
    "validate": ("validate", "Check that CANDIDATE (an artifact) computes what REFERENCE computes."),
}

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
        """The click command for CMD_NAME (its module imported now), or None when unknown."""
        return load_command(cmd_name) if cmd_name in ROUTES else None

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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show tracebacks and framework logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="More detail on stderr.")
def cli(debug, quiet, verbose):
    """Quantize, convert, verify and profile models for edge devices.

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
    failed (CheckFailed), 2 usage or bad input (BadInput, click usage errors), 3 a missing
    dependency, 4 an unreachable target, 128+signal when interrupted (130 Ctrl-C, 143 SIGTERM,
    129 SIGHUP). Errors print as
    "error: MESSAGE" plus a hint on stderr; --debug adds the traceback. Exceptions that are not
    edgekit's propagate (a bug)."""
    watch_ctrl_c()
    try:
        cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        interrupted = is_interrupt(exc) or isinstance(exc, click.exceptions.Abort)
        if not interrupted and isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if not interrupted and not isinstance(exc, EdgekitError):
            raise
        if STATE.debug:
            import traceback

            traceback.print_exc()
        if interrupted:
            exc = EdgekitError(STATE.interrupted_note)
        _print_error(exc)
        sys.exit(interrupt_exit_code() if interrupted else exc.exit_code)


def _print_error(exc: EdgekitError) -> None:
    msg = f"error: {exc.message}"
    if exc.hint:
        msg += f"\n  {exc.hint}"
    click.echo(msg, err=True)
