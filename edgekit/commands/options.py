"""Options shared by several commands, and choices read from the registries when click needs
them (so a converter, recipe or target added to its registry shows up without editing a
command). Imports only click; the registries it reads import nothing heavy."""

from __future__ import annotations

from typing import Callable, Sequence

import click


class RegistryChoice(click.Choice):
    """A click.Choice whose choices are read from a registry each time click asks.

    Args:
        source: `source() -> sequence of str`, e.g. `edgekit.converters.formats`.
    """

    def __init__(self, source: Callable[[], Sequence[str]], case_sensitive: bool = True):
        self._source = source
        super().__init__((), case_sensitive)

    @property
    def choices(self):  # noqa: D401 - click reads this attribute
        """The registry's current values, as a tuple."""
        return tuple(self._source())

    @choices.setter
    def choices(self, _value):
        """Ignored: click.Choice.__init__ assigns it; the registry is the source."""


class _LazyHelp:
    """`help` may be a callable returning the text, computed each time click shows it."""

    @property
    def help(self):
        """The help text: the callable's result, or the string given."""
        return self._help() if callable(self._help) else self._help

    @help.setter
    def help(self, value):
        self._help = value


class LazyHelpOption(_LazyHelp, click.Option):
    """A click.Option whose help text is computed when shown (`help=` may be a callable
    returning the text), so help that lists a registry stays current."""

    def __init__(self, *args, help=None, **kwargs):
        super().__init__(*args, **kwargs)  # click would cleandoc() a string only
        self._help = help


class LazyHelpCommand(_LazyHelp, click.Command):
    """A click.Command whose help text is computed when shown (`help=` may be a callable)."""


def _formats():
    from edgekit import converters

    return converters.formats()


def _recipes():
    from edgekit import quantization

    return quantization.names()


def _io_dtypes():
    from edgekit import quantization

    return quantization.io_dtypes()


def _presets():
    from edgekit import quantization

    return quantization.precisions()


def target_forms(default: str | None = "host") -> str:
    """The registered target forms for help texts, DEFAULT marked "(default)":
    "host (default), ssh://user@host[:port], ... or coral@ssh://user@host"."""
    from edgekit import targets

    forms = [t.form + (" (default)" if t.scheme == default else "") for t in targets.TARGETS]
    return ", ".join(forms[:-1]) + " or " + forms[-1] if len(forms) > 1 else "".join(forms)


to_option = click.option("--to", "to", type=RegistryChoice(_formats), default="tflite", show_default=True,
                         help="Target format.")
quantize_option = click.option("--quantize", type=RegistryChoice(_recipes), default="none", show_default=True,
                               help="Quantization recipe.")
io_dtype_option = click.option("--io-dtype", type=RegistryChoice(_io_dtypes), default="float32", show_default=True,
                               help="Type of the artifact's inputs and outputs (int8/uint8 need --quantize int8).")
preset_option = click.option("--preset", type=RegistryChoice(_presets),
                             help="Verdict preset (default: the candidate's precision, from its manifest or the file).")


def json_option(what: str = "result"):
    """`--json`: print the command's WHAT ("result", "report") as JSON on stdout."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print the {what} as JSON on stdout.")


host_key_option = click.option("--accept-new-host-key", is_flag=True,
                               help="SSH: trust an unknown host key and record it in known_hosts.")


def samples_option(what: str = "samples"):
    """`--samples N` (N ≥ 1): at most N of WHAT."""
    return click.option("--samples", type=click.IntRange(1), help=f"At most this many {what}.")


def input_shape_option(of: str = ""):
    """`--input-shape NAME=1x224x224x3`, repeatable; OF qualifies whose input (" of the reference model")."""
    return click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=1x224x224x3",
                        help=f"Fix a dynamic input shape{of} (repeat per input).")


def complete_targets(ctx, param, incomplete: str) -> list:
    """Shell completion of a TARGET: the user's named targets (their string as help), then the
    registered schemes ("host", "ssh://", "adb", "coral@ssh://" ...), those starting with INCOMPLETE."""
    from click.shell_completion import CompletionItem

    from edgekit import targets
    from edgekit.targets import names

    try:
        named = names.load()
    except Exception:  # a broken targets.toml: complete the schemes, say nothing while completing
        named = {}
    items = [CompletionItem(n, help=spec) for n, spec in named.items()]
    for t in targets.TARGETS:
        word = t.form.split("://", 1)[0] + "://" if "://" in t.form else t.scheme
        items.append(CompletionItem(word, help=t.what))
    return [i for i in items if i.value.startswith(incomplete)]


def target_option(default: str | None = "host", prefix: str = "Where to run: ", suffix: str = "."):
    """`--target/-t TARGET` whose help lists the registered targets (edgekit.targets.TARGETS)
    and named targets, completed by the shell (`complete_targets`).

    Args:
        default: the option's default (shown in help), or None for none.
        prefix, suffix: text around the list of target forms in the help.
    """
    return click.option("--target", "-t", default=default, show_default=default is not None, metavar="TARGET",
                        cls=LazyHelpOption, shell_complete=complete_targets,
                        help=lambda: prefix + target_forms(default) + ", or a named target" + suffix)


target_argument = click.argument("target", default="host", shell_complete=complete_targets)


def threads_warning(threads: int | None, result: dict, flag: str = "--threads") -> str | None:
    """The warning when THREADS (FLAG: --threads, or `threads:` of edgekit.yaml) exceeds the
    cores the measuring process could use on the target (RESULT, a profile result:
    device.usable_cores, the affinity mask, else device.cores): the runtime's threads then share
    cores and the timings are worse than the device can do. None when within, or unknown."""
    dev = result.get("device") or {}
    cores = dev.get("usable_cores") or dev.get("cores")
    if not threads or not isinstance(cores, int) or threads <= cores:
        return None
    return (f"{flag} {threads} is more than the {cores} core(s) {result.get('target') or 'the target'} lets it use: "
            f"threads share cores, so latency is worse than with {flag} {cores}.")


def within_limit(name: str):
    """A click callback refusing a count over limit NAME of edgekit.limits.LIMITS ("max_runs" ...)
    with BadInput (exit 2) naming the limit; None passes through."""
    def check(ctx, param, value):
        if value is None:
            return value
        from edgekit.limits import check_count

        return check_count(value, name, f"--{param.name} {value:,}")
    return check


# threshold option → (lowest, highest) accepted; None: unbounded on that side
THRESHOLD_RANGES = {"min_psnr": (None, None), "max_abs": (0.0, None), "min_cosine": (-1.0, 1.0),
                    "min_top1_agreement": (0.0, 1.0), "max_accuracy_drop": (0.0, 1.0)}


def check_threshold(ctx, param, value):
    """A click callback for a parity threshold: a finite number within THRESHOLD_RANGES (a
    cosine within [-1, 1], a share within [0, 1]); raises BadInput (exit 2) otherwise."""
    import math

    if value is None:
        return value
    lo, hi = THRESHOLD_RANGES.get(param.name, (None, None))
    flag = "--" + param.name.replace("_", "-")
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        from edgekit.errors import BadInput

        span = f"between {lo:g} and {hi:g}" if lo is not None and hi is not None else (
            f"at least {lo:g}" if lo is not None else "a finite number")
        raise BadInput(f"{flag} {value} is not a usable threshold: it must be {span}.",
                       f"e.g. {flag} {hi if hi is not None and hi <= 1 else 30}")
    return value
