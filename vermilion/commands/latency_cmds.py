"""LATENCY and its subcommands (latency.c latencyCommand): the events the server
samples (server.latency), the doctor's report, and per-command histograms.
"""

import time

from ..protocol.encode import Verbatim
from ..protocol.errors import CommandError
from .registry import command


LATENCY_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram "
    "for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
]

DOCTOR_DISABLED = (
    "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
    "instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in "
    "order to enable it. If we weren't in a deep space mission I'd suggest to take a look "
    "at https://redis.io/topics/latency-monitor.\n"
)
DOCTOR_NO_SPIKES = (
    "Dave, no latency spike was observed during the lifetime of this Redis instance, not "
    "in the slightest bit. I honestly think you ought to sit down calmly, take a stress "
    "pill, and think things over.\n"
)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@command("latency latest")
def latency_latest(client, argv):
    return client.server.latency.latest()


@command("latency history")
def latency_history(client, argv):
    return client.server.latency.history(_text(argv[2]))


@command("latency reset")
def latency_reset(client, argv):
    names = [_text(a) for a in argv[2:]] if len(argv) > 2 else None
    return client.server.latency.reset(names)


@command("latency graph")
def latency_graph(client, argv):
    event = _text(argv[2])
    samples = client.server.latency.history(event)
    if not samples:
        raise CommandError("ERR No samples available for event '%s'" % event)
    ev = client.server.latency.events[event]
    values = [ms for _, ms in samples]
    header = "%s - high %d ms, low %d ms (all time high %d ms)\n" % (
        event, max(values), min(values), ev["max"])
    return Verbatim((header + "-" * 80 + "\n" + _sparkline(samples)).encode())


def _sparkline(samples) -> str:
    # A compact rendition of latency.c's graph: one column per sample, its height the
    # sample relative to the highest, then the age of each sample.
    now = int(time.time())
    top = max(ms for _, ms in samples) or 1
    rows = []
    for level in range(4, 0, -1):
        rows.append("".join("#" if ms * 4 >= level * top else " " for _, ms in samples))
    rows.append("".join(_age_label(now - ts) for ts, _ in samples))
    return "\n".join(rows) + "\n"


def _age_label(seconds: int) -> str:
    return "s" if seconds < 60 else "m" if seconds < 3600 else "h"


@command("latency doctor")
def latency_doctor(client, argv):
    server = client.server
    if not server.config["latency-monitor-threshold"] and not server.latency.events:
        return Verbatim(DOCTOR_DISABLED.encode())
    if not server.latency.events:
        return Verbatim(DOCTOR_NO_SPIKES.encode())
    lines = ["Dave, I have observed latency spikes in this Redis instance. "
             "You don't mind talking about it, do you Dave?", ""]
    for i, (name, ev) in enumerate(server.latency.events.items(), 1):
        values = [ms for _, ms in ev["samples"]]
        avg = sum(values) // len(values) if values else 0
        lines.append("%d. %s: %d latency spikes (average %dms). Worst all time event %dms."
                     % (i, name, len(values), avg, ev["max"]))
    return Verbatim(("\n".join(lines) + "\n").encode())


@command("latency histogram")
def latency_histogram(client, argv):
    from .introspection import every_spec, handled_subcommands, lookup_by_name

    if len(argv) == 2:
        specs = list(every_spec(client.server.commands))
    else:
        specs = []
        for name in argv[2:]:
            spec = lookup_by_name(client.server.commands, name)
            if spec is not None:
                # A container stands for its subcommands.
                specs.extend(handled_subcommands(spec) if spec.subcommands else [spec])
    return {spec.fullname.encode(): {b"calls": spec.calls, b"histogram_usec": _histogram(spec)}
            for spec in specs if spec.calls}


def _histogram(spec) -> dict:
    # Redis keeps an HDR histogram per command (buckets of powers of 2 µs, cumulative
    # counts). Only calls and total time are kept here, so every call is placed in the
    # bucket of the mean duration: an approximation with Redis's reply shape.
    mean = spec.usec / spec.calls
    bucket = 1
    while bucket < mean:
        bucket *= 2
    return {bucket: spec.calls}


@command("latency help")
def latency_help(client, argv):
    return LATENCY_HELP

