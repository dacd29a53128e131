"""`edgekit worker --head HEAD:6379 --target T ...`: join a Ray cluster as a lab host, offering
the devices attached to it."""

from __future__ import annotations

import click

from .options import host_key_option


@click.command("worker")
@click.option("--head", required=True, metavar="HOST:PORT",
              help="The Ray head's GCS address (`ray start --head --port 6379` prints it).")
@click.option("--target", "targets", multiple=True, metavar="TARGET",
              help="A device attached here, as `edgekit profile --target` names it (repeatable); "
                   "checked first, then offered to the cluster with capacity 1.")
@click.option("--num-cpus", type=click.IntRange(0), metavar="N",
              help="CPUs this worker lends to builds (default: Ray's count of this machine's cores).")
@click.option("--object-store-memory", type=click.IntRange(78643200), metavar="BYTES",
              help="Ray object store size on this host (artifacts travel through it).")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Contact each target before offering it (as `edgekit devices check`).")
@host_key_option
def worker_command(head, targets, num_cpus, object_store_memory, check, accept_new_host_key):
    """Join the Ray cluster at HEAD, offering each --target as a device (runs until stopped).

    \b
    Each TARGET is checked as `edgekit devices check TARGET` does and becomes the Ray custom
    resource "edgekit:TARGET" of capacity 1 on this node: `edgekit run --cluster` measures it
    only here and never twice at once. Without --target the worker lends only its CPUs to builds.
    Exit 3 without Ray (pip install 'edgekit-ml[ray]'), 4 when a target does not answer.
    """
    import json
    import os
    import sys

    from edgekit import targets as registry
    from edgekit.cluster import device_resource, import_ray, probe
    from edgekit.errors import BadInput, TargetUnreachable

    from .output import console

    import_ray()
    names = [t.strip() for t in targets]
    if "" in names:
        raise BadInput("--target is empty: it would offer a device named '' that no pipeline can name.",
                       "Pass a target as `edgekit profile --target` names it, e.g. --target host.")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"--target {', '.join(twice)} is given more than once; a device is offered once "
                       "(capacity 1: one measurement at a time).", "Give each device once.")
    found = [registry.get(t, accept_new_host_key=accept_new_host_key) for t in targets]  # unknown: exit 2 now
    probe(head, "--head", client=False)  # a malformed head is exit 2, a silent one exit 4, both at once
    for t, target in zip(targets, found):
        if check:
            result = target.check()
            if not result.get("reachable", True):
                raise TargetUnreachable(f"{t} did not answer: {result.get('detail', '')}",
                                        "Fix the connection (`edgekit devices check TARGET` says how) or leave it out.")
        console().print(f"offering {t} to the cluster as the resource {device_resource(t)!r}")
    argv = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start", "--block",
            "--address", head, "--disable-usage-stats"]
    if targets:
        argv += ["--resources", json.dumps({device_resource(t): 1 for t in targets})]
    if num_cpus is not None:
        argv += ["--num-cpus", str(num_cpus)]
    if object_store_memory:
        argv += ["--object-store-memory", str(object_store_memory)]
    sys.stdout.flush(), sys.stderr.flush()
    os.execv(sys.executable, argv)  # Ray's own process from here: Ctrl-C and signals stop the worker
