"""A YAML file read for checking: the values, the line of every key, and the mistakes found so far.

`Located` reads the file with PyYAML's safe loader after refusing node graphs that loop or
expand past edgekit's limit, indexes the line of every key path, and collects problems so that a
checker can report every mistake of a file at once, in file order (as linters and `terraform
validate` do), instead of one per run. edgekit.pipeline_file is its user.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BadInput

SHOWN = 25  # problems listed in one error; a file with more has one mistake repeated (fix, rerun)


class Located:
    """The values of the YAML file PATH (`data`), the line of each key path (`lines`: {(key,
    index, ...): 1-based line}) and the problems recorded with `note`/`attempt`.

    Raises BadInput (exit 2) when the file cannot be read, is not YAML, nests too deeply, loops
    or expands past the `max_yaml_nodes` limit (those stop the check: nothing after is readable).
    """

    def __init__(self, path: Path):
        import yaml

        from .limits import regular_file

        self.path = path
        self.problems: list[BadInput] = []
        regular_file(path, "The pipeline file", "max_pipeline_bytes",
                     "Pass the edgekit.yaml itself (a few lines; see the README's pipeline section).")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"Cannot read the pipeline file {path}: {getattr(exc, 'strerror', None) or exc}.",
                           "Check the path; the file must be UTF-8 text.") from exc
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            check_graph(path, self.node)  # before anything walks it: aliases can loop or multiply
            self.data = yaml.safe_load(text)
        except RecursionError:  # PyYAML composes nested collections recursively
            raise BadInput(f"{path}: nested too deeply to read.", "Flatten the file (a few levels are enough).") from None
        except (ValueError, OverflowError) as exc:  # int()/date()/chr(): 5000 digits, 2001-13-45, "\U99999999"
            raise BadInput(f"{path}: a value cannot be read ({str(exc).split(';')[0]}).",
                           "Write numbers with a few digits, dates as real dates and \\U escapes as real code points (or quote the value).") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "somewhere"
            raise BadInput(f"{path}: {where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                           "Fix the syntax (indentation, colons, brackets).") from exc
        self.lines: dict[tuple, int] = {}
        if self.node is not None:
            self._index(self.node, ())

    def _index(self, node, at: tuple):
        """Record the line of every key path under NODE (bounded by _check_graph)."""
        import yaml

        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.lines[at + (k.value,)] = k.start_mark.line + 1
                self._index(v, at + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, at + (i,))

    def error(self, at: tuple, message: str, hint: str) -> BadInput:
        """A BadInput (exit 2) "FILE:LINE: KEY.PATH: MESSAGE" for the key path AT (its line, or
        its parent's), with HINT; its `line` attribute orders it among the file's problems."""
        line = self.lines.get(at) or self.lines.get(at[:-1]) or 1
        key = ".".join(str(p) for p in at) or "(top level)"
        exc = BadInput(f"{self.path}:{line}: {key}: {message}", hint)
        exc.line = line
        return exc

    def note(self, at: tuple, message: str, hint: str) -> None:
        """Record a problem at the key path AT and go on checking (see `error` for the form)."""
        self.problems.append(self.error(at, message, hint))

    def attempt(self, check, *args, default=None):
        """CHECK(*ARGS), or DEFAULT after recording the located BadInput it raised (one made by
        `error`); any other error propagates."""
        try:
            return check(*args)
        except BadInput as exc:
            if getattr(exc, "line", None) is None:
                raise
            self.problems.append(exc)
            return default

    def finish(self) -> None:
        """Raise the recorded problems, if any: one BadInput (exit 2) as it was, or one listing
        every problem in file order (by line, then as found) with each one's hint."""
        if not self.problems:
            return
        seen: set[str] = set()  # a bad matrix value is found once per combination: say it once
        found = [e for e in self.problems if not (e.message in seen or seen.add(e.message))]
        if len(found) == 1:
            raise found[0]
        found.sort(key=lambda e: e.line)  # stable: the same line keeps the order of the checks
        lines = [f"{self.path}: {len(found)} problems, in file order:"]
        for exc in found[:SHOWN]:
            lines.append(f"  {exc.message}")
            lines += [f"      {h}" for h in (exc.hint or "").splitlines()]
        if len(found) > SHOWN:
            lines.append(f"  ... and {len(found) - SHOWN} more after line {found[SHOWN - 1].line}.")
        raise BadInput("\n".join(lines), "Fix each line above, then rerun: edgekit checks the whole file "
                       "before it builds anything.")


def check_graph(path: Path, root) -> None:
    """Refuse a YAML node graph that loops (an alias inside its own anchor: `a: &a [*a]`) or
    whose aliases expand past the `max_yaml_nodes` limit (a "billion laughs" file: a few lines
    that PyYAML's safe loader accepts, since it shares aliased nodes, but that any walk over the
    values multiplies). Counts expanded nodes without expanding (memoized per node).
    Raises BadInput (exit 2) naming the line of the alias and the limit."""
    import yaml

    from .limits import LIMITS, limit

    bound, sizes, active = limit("max_yaml_nodes"), {}, set()

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise BadInput(f"{path}:{node.start_mark.line + 1}: an alias refers to the node that contains it "
                           "(a loop); edgekit cannot use a self-referring value.",
                           "Replace the alias (*name) by the values it stands for.")
        active.add(id(node))
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [c for kv in node.value for c in kv]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        n = 1
        for c in children:
            n += size(c)
            if n > bound:
                raise BadInput(f"{path}: its aliases expand to over {bound:,} values, edgekit's limit "
                               f"({LIMITS['max_yaml_nodes'][1]}).", "Write the values out instead of nesting aliases.")
        active.discard(id(node))
        sizes[id(node)] = n
        return n

    if root is not None:
        try:
            size(root)
        except RecursionError:
            raise BadInput(f"{path}: nested too deeply to read.", "Flatten the file (a few levels are enough).") from None
