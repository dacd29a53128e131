"""`edgekit report REPORT.json`: re-render a saved run report."""

from __future__ import annotations

import click

RENDERERS = {"md": "to_markdown", "html": "to_html", "json": "to_json"}  # --format → edgekit.report_files function


@click.command("report")
@click.argument("report_json", metavar="REPORT.json")
@click.option("--format", "fmt", type=click.Choice(list(RENDERERS)), default="md", show_default=True)
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout.")
def report_command(report_json, fmt, output):
    """Re-render a saved report.json as Markdown or HTML."""
    from edgekit import report_files
    from edgekit.errors import BadInput

    report = report_files.load_report(report_json)  # BadInput (exit 2) for a file that is not a report
    try:
        text = getattr(report_files, RENDERERS[fmt])(report)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BadInput(f"{report_json} is a run report with an unexpected structure ({type(exc).__name__}: {exc}).",
                       "Pass the report.json that `edgekit run` wrote, unedited.") from exc
    if output:
        from pathlib import Path

        from edgekit.artifacts import atomic_output, check_writable

        dest = Path(output).resolve()
        check_writable(dest)
        with atomic_output(dest) as tmp:
            tmp.write_text(text)
    else:
        click.echo(text, nl=False)
