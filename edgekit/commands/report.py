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

    text = getattr(report_files, RENDERERS[fmt])(report_files.load_report(report_json))
    if output:
        from pathlib import Path

        from edgekit.artifacts import atomic_output

        with atomic_output(Path(output).resolve()) as tmp:
            tmp.write_text(text)
    else:
        click.echo(text, nl=False)
