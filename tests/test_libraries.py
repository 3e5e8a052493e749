"""Real job-queue libraries run unchanged on Vermilion (GitHub issue 8).

RQ and Celery are used exactly as applications use them: jobs are enqueued by a client,
executed by the library's own worker process, results and failures read back. Each
flow talks TCP to a dedicated vermilion-server; every subprocess is bounded in time
and killed in a finally block.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from conftest import start_vermilion

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


@pytest.fixture
def server(tmp_path):
    srv = start_vermilion(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


def test_rq_jobs_results_failures_and_retry(server, tmp_path):
    from rq import Queue, Retry
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    (tmp_path / "rqjobs.py").write_text(RQ_JOBS)
    conn = server.client()
    queue = Queue("default", connection=conn)
    jobs = [queue.enqueue("rqjobs.add", i, i * 10) for i in range(5)]
    text_job = queue.enqueue("rqjobs.shout", "vermilion")
    bad = queue.enqueue("rqjobs.boom")
    flaky = queue.enqueue("rqjobs.flaky", retry=Retry(max=2))
    assert queue.count == 8

    code, out = _run([str(BIN / "rq"), "worker", "--burst", "--url",
                      f"redis://127.0.0.1:{server.port}", "default"], tmp_path, timeout=40)
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
    finished = FinishedJobRegistry(queue=queue).get_job_ids()
    assert set(j.id for j in jobs) <= set(finished)
    assert queue.count == 0
    conn.close()
