"""The shape of the code (README "Architecture"): imports only go down the layers, no
import cycle anywhere (imports inside functions included), and a Server is a value —
two of them in one process share nothing."""

import ast
import asyncio
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from conftest import ROOT, free_port

PACKAGE = ROOT / "vermilion"


def test_import_linter_contract_holds():
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        lint = shutil.which("lint-imports")
    assert lint, "import-linter is not installed: pip install -e '.[test]'"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports, wherever the import statement is."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(c for c in candidates if c in modules and c != name)
    return graph


def _cycles(graph) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_counting_imports_inside_functions():
    graph = _import_graph()
    assert len(graph) > 50  # the walk did find the package
    assert _cycles(graph) == []


def test_two_servers_in_one_process_are_independent(tmp_path):
    """Config, clients, command statistics, keyspace and pub/sub belong to their Server:
    two of them on one event loop answer as two processes would."""
    from vermilion import listeners
    from vermilion.cli import build_config
    from vermilion.server import Server

    def config(name, *extra):
        workdir = tmp_path / name
        workdir.mkdir()
        return build_config(["--port", str(free_port()), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(workdir), *extra])

    async def scenario():
        first = Server(config("a", "--rename-command", "flushall", ""))
        second = Server(config("b", "--maxmemory-policy", "allkeys-lru"))
        for server in (first, second):
            server.loop = asyncio.get_running_loop()
            server._stopping = server.loop.create_future()
            await listeners.listen_at_startup(server)
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, _exercise, first.tcp_port, second.tcp_port)
            assert first.commands.get(b"incr").calls == 3
            assert second.commands.get(b"incr").calls == 0
        finally:
            for server in (first, second):
                for listener in server.listeners:
                    listener.close()
                for session in list(server.clients.values()):
                    session.close()

    asyncio.run(scenario())


def _exercise(port_a: int, port_b: int) -> None:
    a = redis.Redis(port=port_a, decode_responses=True)
    b = redis.Redis(port=port_b, decode_responses=True)
    # keyspace
    a.set("k", "in a")
    assert b.get("k") is None
    assert (a.dbsize(), b.dbsize()) == (1, 0)
    # config, and rename-command applied to one command table only
    assert a.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert b.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    a.config_set("hz", 50)
    assert b.config_get("hz") == {"hz": "10"}
    with pytest.raises(redis.ResponseError, match="unknown command"):
        a.flushall()
    assert b.flushall() is True
    # command statistics
    for _ in range(3):
        a.execute_command("INCR", "n")  # (redis-py's incr() sends INCRBY)
    assert "cmdstat_incr" in a.info("commandstats")
    assert "cmdstat_incr" not in b.info("commandstats")
    # clients
    extra = [redis.Redis(port=port_b) for _ in range(3)]
    for client in extra:
        client.ping()
    assert len(a.client_list()) == 1
    assert len(b.client_list()) == 4
    # pub/sub and keyspace notifications
    a.config_set("notify-keyspace-events", "KEA")
    listener = b.pubsub()
    listener.psubscribe("__key*__:*")
    listener.get_message(timeout=1)
    a.set("x", "1")
    b.set("y", "1")  # b has notifications off
    assert listener.get_message(timeout=0.2) is None
    assert a.pubsub_numpat() == 0 and b.pubsub_numpat() == 1
    for client in (a, b, listener, *extra):
        client.close()
