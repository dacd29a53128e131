"""The `edgekit` subcommands, one module each (`edgekit.commands.<name>` defines
`<name>_command`). edgekit/cli.py routes to them lazily: a command's module is imported only
when that command runs or shows its help, and each imports its heavy parts inside the function.
Shared options live in `options.py`, the one way to show a result (terminal or `--json`) in
`output.py`; the tables themselves are drawn by edgekit/report.py."""
