"""The sync worker that closes promptly (``app.worker``): real sockets, then real gunicorn."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from gunicorn.http.body import Body, LengthReader

from app.worker import close_promptly, read_to_end
from tests.app_helpers import CLIENT, RECORD, copy_registry, start_gunicorn


class _Req:
    """What ``close_promptly`` reads of gunicorn's request: its body reader."""

    def __init__(self, unread: int):
        self.body = Body(LengthReader(None, unread))


@pytest.fixture
def connection():
    """(server side, client side) of a real loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    yield server, client
    server.close()
    client.close()


def test_a_clean_request_is_closed_at_once_and_the_client_gets_the_answer(connection):
    server, client = connection
    server.sendall(b"answer")
    assert close_promptly(_Req(0), server)
    assert server.fileno() == -1
    client.settimeout(2)
    got = b""
    while chunk := client.recv(64):
        got += chunk
    assert got == b"answer"  # then EOF: the FIN came with the answer


def test_bytes_still_waiting_in_the_socket_keep_the_graceful_close(connection):
    server, client = connection
    client.sendall(b"GET /next HTTP/1.1\r\n\r\n")
    time.sleep(0.05)
    assert not close_promptly(_Req(0), server)
    assert server.fileno() != -1  # left to gunicorn's lingering close


def test_an_unread_body_keeps_the_graceful_close(connection):
    server, _ = connection
    assert not read_to_end(_Req(5))
    assert not close_promptly(_Req(5), server)
    assert server.fileno() != -1


def _held_open_then_time_next(url: str) -> float:
    """Seconds the next request waits while a finished connection is left open by its client."""
    host, port = url.removeprefix("http://").split(":")
    held = socket.create_connection((host, int(port)))
    held.sendall(f"GET /ping HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    held.settimeout(5)
    assert held.recv(4096).startswith(b"HTTP/1.1 200")  # answered; the client stays silent
    start = time.perf_counter()
    r = requests.get(f"{url}/ping", timeout=10)
    waited = time.perf_counter() - start
    held.close()
    assert r.status_code == 200
    return waited


@pytest.mark.slow
def test_one_worker_serves_the_next_client_without_waiting_for_the_last_to_close(
        tiny_registry, tmp_path):
    uri = copy_registry(tiny_registry, tmp_path / "registry")
    prompt = start_gunicorn(tmp_path / "prompt", uri, workers=1)
    stock = start_gunicorn(tmp_path / "stock", uri, workers=1, WORKER_CLASS="sync")
    try:
        assert _held_open_then_time_next(prompt.url) < 0.5
        # The control: gunicorn's stock worker lingers (up to 2 s) for the silent client.
        assert _held_open_then_time_next(stock.url) > 1.0
        # A body the app never reads (no key: 401 first) still gets its whole answer.
        big = {"dataframe_records": [RECORD] * 2000}
        r = requests.post(f"{prompt.url}/invocations", json=big, timeout=10)
        assert r.status_code == 401 and r.json()["error"]
        # Answers under concurrency are complete (one segment, closed promptly).
        errors: list = []

        def post():
            try:
                for _ in range(25):
                    got = requests.post(f"{prompt.url}/invocations", timeout=10,
                                        json={"dataframe_records": [RECORD]},
                                        headers={"X-API-Key": CLIENT})
                    assert got.status_code == 200 and len(got.json()["predictions"]) == 1
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
    finally:
        prompt.stop()
        stock.stop()
