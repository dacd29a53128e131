"""`edgekit run [PIPELINE]`: build, check and profile every build of an edgekit.yaml."""

from __future__ import annotations

import click

from .options import json_option, threads_warning
from .output import STATE, console, log_to, show


def _budgets_help() -> str:
    """The `run --help` epilog: the budget names edgekit.yaml accepts (pipeline_file.BUDGETS)."""
    from edgekit.pipeline_file import BUDGETS  # light: yaml loads when a file is read

    return "Budgets (edgekit.yaml `budgets:`): " + ", ".join(BUDGETS) + "."


@click.command("run", epilog=_budgets_help())
@click.argument("pipeline", required=False, default="edgekit.yaml", metavar="[PIPELINE]")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this build (repeatable).")
@click.option("-o", "--out", metavar="DIR", help="Output folder (default: edgekit-out/ beside the pipeline file).")
@click.option("--force", is_flag=True, help="Rebuild and re-measure even when nothing changed.")
@click.option("--cluster", metavar="ADDRESS",
              help="Run builds and measurements as Ray tasks: ray://HEAD:10001, HEAD:6379, auto, or local "
                   "(a throwaway cluster here). Devices come from `edgekit worker` on each lab host.")
@json_option("report")
def run_command(pipeline, only, out, force, cluster, as_json):
    """Build, check and profile every build of an edgekit.yaml; exit 1 when a budget fails.

    \b
    Writes OUT/<build>/ (artifact + manifest), OUT/report.json, report.md (for a CI job
    summary) and report.html. Unchanged inputs reuse what OUT already holds. With --cluster the
    same report comes from a Ray cluster (exit 3 without Ray, 4 when no worker offers a target).
    """
    from edgekit.errors import CheckFailed
    from edgekit.pipeline import run
    from edgekit.report import print_build_state, print_run

    STATE.interrupted_note = "Interrupted: the partial report in the output folder says what finished."

    def work(con):
        return run(pipeline, only=only or None, out=out, force=force, log=log_to(con), cluster=cluster,
                   on_build=lambda name, state: print_build_state(con, name, state))

    report = show(as_json, work, print_run, status="running the pipeline")
    for warning in _threads_warnings(report):
        console().print(f"[yellow]warning:[/] {warning}")
    if not report["passed"]:
        unmeasured = _failed_measurements(report)
        raise CheckFailed(
            f"{report['failed_budgets']} budget(s) failed"
            + (f", build(s) failed: {', '.join(report['failed_builds'])}" if report["failed_builds"] else "")
            + (f", measurement(s) failed: {'; '.join(unmeasured)}" if unmeasured else "") + ".",
            f"See {report['out']}/report.md.",
        )


def _failed_measurements(report: dict) -> list[str]:
    """"BUILD on TARGET (the error's first line)" for each profile of the run REPORT that has an
    error (an unreachable device fails the run with no budget failed: say why)."""
    return [f"{b['name']} on {prof.get('target')} ({prof['error'].get('message', '').splitlines()[0]})"
            for b in report.get("builds", []) for prof in b.get("profiles") or [] if prof.get("error")]


def _threads_warnings(report: dict) -> list[str]:
    """One warning per target where the pipeline's `threads:` exceeded the cores its profiles
    could use (see options.threads_warning), from the run REPORT's profile results."""
    out = []
    for build in report.get("builds", []):
        for prof in build.get("profiles", []):
            w = threads_warning(prof.get("threads"), prof, flag="threads:")
            if w and w not in out:
                out.append(w)
    return out
