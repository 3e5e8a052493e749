"""CLUSTER, READONLY, READWRITE and ASKING of a server without cluster support
(cluster.c): Vermilion runs standalone only, as Redis does with cluster-enabled no.
The commands are in the table all the same (COMMAND LIST / INFO / DOCS show them, with
every CLUSTER subcommand), and each answers what clusterCommand() and its siblings
answer when server.cluster_enabled is 0."""

from ..protocol.errors import CommandError
from .registry import command
from .spec import redis_metadata

CLUSTER_DISABLED = "ERR This instance has cluster support disabled"


def _cluster_disabled(client, argv):
    raise CommandError(CLUSTER_DISABLED)


for _name in ("readonly", "readwrite", "asking"):
    command(_name)(_cluster_disabled)

# Every subcommand Redis's table lists: the arity check and an unknown subcommand's
# error come from the table, as for any container.
for _full in redis_metadata():
    if _full.startswith("CLUSTER "):
        command(_full.lower())(_cluster_disabled)
