"""`edgekit report REPORT.json`: re-render a saved run report."""

from __future__ import annotations

import click

RENDERERS = ("md", "html", "json")  # edgekit.report_files: to_markdown, to_html, to_json


@click.command("report")
@click.argument("report_json", metavar="REPORT.json")
@click.option("--format", "fmt", type=click.Choice(RENDERERS), default="md", show_default=True)
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout.")
def report_command(report_json, fmt, output):
    """Re-render a saved report.json as Markdown or HTML."""
    from edgekit.report_files import load_report, to_html, to_json, to_markdown

    report = load_report(report_json)
    text = {"md": to_markdown, "html": to_html, "json": to_json}[fmt](report)
    if output:
        from pathlib import Path

        from edgekit.artifacts import atomic_output

        with atomic_output(Path(output).resolve()) as tmp:
            tmp.write_text(text)
    else:
        click.echo(text, nl=False)
