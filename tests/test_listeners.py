"""CONFIG SET bind "" (listenToPort() with no address): the server stops listening on
TCP and keeps serving its unix socket, then listens again when bind is set back —
beside redis-server."""

import redis
import pytest

from conftest import start_redis, start_vermilion


@pytest.mark.parametrize("which", ["vermilion", "redis"])
def test_an_empty_bind_listens_nowhere_on_tcp(tmp_path, which):
    start = start_vermilion if which == "vermilion" else start_redis
    sock_path = str(tmp_path / "s.sock")
    server = start(tmp_path, ["--unixsocket", sock_path])
    try:
        tcp = server.client()
        assert tcp.config_set("bind", "") is True
        local = redis.Redis(unix_socket_path=sock_path)
        assert local.config_get("bind") == {"bind": ""}
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=server.port, retry=None).ping()
        assert local.config_set("bind", "127.0.0.1") is True
        assert server.client().ping() is True
        local.close()
    finally:
        server.stop()
