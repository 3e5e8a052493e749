"""Real job-queue libraries run unchanged on Vermilion (GitHub issue 8).

RQ and Celery are used exactly as applications use them: jobs are enqueued by a client,
executed by the library's own worker process, results and failures read back. Each
flow talks TCP to a dedicated vermilion-server (and, as a control, to a real
redis-server); every subprocess is bounded in time and killed in a finally block.
"""

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import start_redis, start_vermilion

BIN = Path(sys.executable).parent

# The job functions live in a module the worker subprocess imports from PYTHONPATH,
# as an application's tasks module would.
RQ_JOBS = textwrap.dedent('''
    from rq import get_current_job

    def add(a, b):
        return a + b

    def shout(text):
        return text.upper()

    def boom():
        raise ValueError("boom from rq")

    def flaky():
        # Fails on the first two attempts, succeeds on the third: counts in Redis
        # through the worker's own connection.
        job = get_current_job()
        attempt = job.connection.incr("flaky:attempts")
        if attempt < 3:
            raise RuntimeError("attempt %d" % attempt)
        return attempt

    def always_fails():
        job = get_current_job()
        job.connection.incr("doomed:attempts")
        raise RuntimeError("never works")
''')


def _env(path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(path) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(argv, path, timeout):
    """Runs a worker subprocess to completion, killing it if it overruns."""
    proc = subprocess.Popen(argv, cwd=path, env=_env(path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode(errors="replace")


# The same flows also run against the real redis-server: a difference in outcome
# then points at Vermilion, not at the test.
@pytest.fixture(params=[start_vermilion, start_redis], ids=["vermilion", "redis"])
def server(request, tmp_path):
    srv = request.param(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_rq_jobs_results_failures_and_retry(server, tmp_path, protocol):
    from rq import Queue, Retry
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    (tmp_path / "rqjobs.py").write_text(RQ_JOBS)
    conn = server.client(protocol=protocol)
    queue = Queue("default", connection=conn)
    jobs = [queue.enqueue("rqjobs.add", i, i * 10) for i in range(5)]
    text_job = queue.enqueue("rqjobs.shout", "vermilion")
    bad = queue.enqueue("rqjobs.boom")
    flaky = queue.enqueue("rqjobs.flaky", retry=Retry(max=2))
    doomed = queue.enqueue("rqjobs.always_fails", retry=Retry(max=2))
    # A dependent job waits in the deferred registry until its parent finishes.
    child = queue.enqueue("rqjobs.add", 1, 2, depends_on=jobs[0])
    assert queue.count == 9
    assert child.get_status() == JobStatus.DEFERRED
    # A job scheduled for now sits in the scheduled registry (a sorted set) until the
    # worker's scheduler takes its lock and moves due jobs onto the queue.
    scheduled = queue.enqueue_at(datetime.now(timezone.utc), "rqjobs.shout", "later")
    assert scheduled.get_status() == JobStatus.SCHEDULED
    assert queue.count == 9

    url = f"redis://127.0.0.1:{server.port}/0?protocol={protocol}"
    code, out = _run([str(BIN / "rq"), "worker", "--burst", "--with-scheduler", "--url", url,
                      "default"], tmp_path, timeout=40)
    assert code == 0, out

    for i, job in enumerate(jobs):
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED, out
        assert job.return_value() == i * 11
    assert text_job.return_value() == "VERMILION"

    # The failing job lands in the failed registry with its traceback.
    bad.refresh()
    assert bad.get_status() == JobStatus.FAILED
    failed = FailedJobRegistry(queue=queue)
    assert bad.id in failed.get_job_ids()
    assert "boom from rq" in bad.latest_result().exc_string

    # Retry(max=2): two failures were retried, the third attempt succeeded.
    flaky.refresh()
    assert conn.get("flaky:attempts") == b"3"
    assert flaky.get_status() == JobStatus.FINISHED
    assert flaky.return_value() == 3
    assert flaky.id not in failed.get_job_ids()
    # Retries exhausted: one attempt plus two retries, then the failed registry.
    doomed.refresh()
    assert conn.get("doomed:attempts") == b"3"
    assert doomed.get_status() == JobStatus.FAILED
    assert doomed.id in failed.get_job_ids()
    assert sorted(failed.get_job_ids()) == sorted([bad.id, doomed.id])
    child.refresh()
    assert child.get_status() == JobStatus.FINISHED
    assert child.return_value() == 3
    finished = FinishedJobRegistry(queue=queue).get_job_ids()
    assert set(j.id for j in jobs) <= set(finished)
    scheduled.refresh()
    assert scheduled.return_value() == "LATER"
    assert queue.count == 0
    conn.close()


CELERY_APP = textwrap.dedent('''
    import os
    from celery import Celery

    URL = os.environ["VERMILION_URL"]
    app = Celery("celeryapp", broker=URL, backend=URL)
    app.conf.update(broker_connection_retry_on_startup=True, result_expires=600,
                    task_serializer="json", result_serializer="json",
                    accept_content=["json"])

    @app.task
    def add(a, b):
        return a + b

    @app.task
    def total(values):
        return sum(values)

    @app.task
    def describe(name, **fields):
        return {"name": name, "fields": fields}

    class Refused(Exception):
        pass

    @app.task
    def refuse(reason):
        raise Refused(reason)
''')


def test_celery_tasks_results_and_errors(server, tmp_path, monkeypatch):
    url = f"redis://127.0.0.1:{server.port}/0"
    (tmp_path / "celeryapp.py").write_text(CELERY_APP)
    monkeypatch.setenv("VERMILION_URL", url)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("celeryapp", None)
    import celeryapp

    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "celeryapp", "worker", "--pool=solo",
         "--concurrency=1", "-l", "info"],
        cwd=tmp_path, env=_env(tmp_path), stdout=open(tmp_path / "worker.log", "wb"),
        stderr=subprocess.STDOUT)
    try:
        sums = [celeryapp.add.delay(i, i) for i in range(5)]
        assert [r.get(timeout=20) for r in sums] == [0, 2, 4, 6, 8]
        assert celeryapp.total.delay([1, 2, 3, 4]).get(timeout=20) == 10
        assert celeryapp.describe.delay("v", colour="red", n=3).get(timeout=20) == {
            "name": "v", "fields": {"colour": "red", "n": 3}}

        # The task's exception travels back through the result backend.
        failing = celeryapp.refuse.delay("no thanks")
        with pytest.raises(Exception) as info:
            failing.get(timeout=20)
        assert type(info.value).__name__ == "Refused"
        assert "no thanks" in str(info.value)
        assert failing.state == "FAILURE"
        assert all(r.state == "SUCCESS" for r in sums)

        # Canvas: a group's results come back in order; a chord's header results are
        # counted in the backend (INCR + a sorted set) and fed to its callback.
        from celery import chord, group
        assert group(celeryapp.add.s(i, 1) for i in range(4))().get(timeout=20) == [1, 2, 3, 4]
        assert chord((celeryapp.add.s(i, i) for i in range(4)),
                     celeryapp.total.s())().get(timeout=20) == 12

        # apply_async with a countdown: the ETA message is held and still delivered.
        later = celeryapp.add.apply_async((20, 22), countdown=1)
        assert later.get(timeout=20) == 42
        # Remote control goes through the broker's fanout (PUBLISH/SUBSCRIBE) and a
        # reply queue: the worker answers a ping and reports its registered tasks.
        replies = celeryapp.app.control.ping(timeout=1)
        assert len(replies) == 1 and list(replies[0].values()) == [{"ok": "pong"}]
        registered = celeryapp.app.control.inspect(timeout=1).registered()
        assert "celeryapp.refuse" in list(registered.values())[0]
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        celeryapp.app.close()
        sys.modules.pop("celeryapp", None)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "celery@" in log and "ready" in log, log
