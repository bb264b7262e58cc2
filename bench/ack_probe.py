"""Where the ~4 ms latency grid of ``mlflow models serve`` comes from: delayed ACK x Nagle.

For each server (caretflow under gunicorn; ``mlflow models serve`` with 2 workers, as the
benchmark runs it; the same with 1 worker as the control) and keep-alive on and off, a raw
socket client writes each request in one ``send`` (headers and body together, as ``wrk``
and ``ab`` do) and times the first and the last byte of every answer. A body that lands
~40 ms after its headers is a small second write held back by Nagle's algorithm until the
client's delayed ACK (Linux: at least 40 ms, counted in timer ticks, hence the grid).

It also checks the mechanism in-process: the socket uvicorn binds itself (``--workers`` > 1)
is created with protocol number 0, and asyncio only sets ``TCP_NODELAY`` on sockets whose
protocol is ``IPPROTO_TCP``; the socket asyncio binds (one worker) gets it.

    python -m bench.ack_probe --tracking-uri sqlite:////tmp/caretflow-bench/registry/mlflow.db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import payloads, servers

log = logging.getLogger("bench.ack_probe")
RESULTS = Path(__file__).parent / "results"


def _read_answer(sock: socket.socket, t0: float) -> tuple[float, float, bytes]:
    """(first byte ms, last byte ms, head) of one HTTP answer with a Content-Length."""
    buf, first = b"", None
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        first = first or time.perf_counter()
        buf += chunk
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            length = [int(v.split(b":")[1]) for v in head.split(b"\r\n")
                      if v.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    last = time.perf_counter()
    return (first - t0) * 1000, (last - t0) * 1000, buf.partition(b"\r\n\r\n")[0].lower()


def probe(url: str, body: bytes, keepalive: bool, requests: int) -> dict:
    """Time the first and last byte of ``requests`` answers (one ``send`` per request)."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    head = (f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {servers.BENCH_KEY}\r\nContent-Length: {len(body)}\r\n"
            + ("" if keepalive else "Connection: close\r\n") + "\r\n").encode()
    firsts, lasts, sock = [], [], None
    for _ in range(requests):
        sock = sock or socket.create_connection((host, int(port)), timeout=10)
        t0 = time.perf_counter()
        sock.sendall(head + body)
        first, last, answer_head = _read_answer(sock, t0)
        firsts.append(first)
        lasts.append(last)
        if not keepalive or b"connection: close" in answer_head:
            sock.close()
            sock = None
    if sock:
        sock.close()
    gaps = np.subtract(lasts, firsts)
    return {"keepalive": keepalive, "requests": requests,
            "first_byte_p50_ms": round(float(np.median(firsts)), 2),
            "last_byte_p50_ms": round(float(np.median(lasts)), 2),
            "gap_p50_ms": round(float(np.median(gaps)), 2),
            "share_gap_over_30ms": round(float(np.mean(gaps > 30)), 3)}


async def _nodelay_of(bind) -> bool:
    """TCP_NODELAY of a connection asyncio accepted on the socket ``bind()`` returns."""
    accepted = asyncio.get_running_loop().create_future()

    class Accepting(asyncio.Protocol):
        def connection_made(self, transport):
            if not accepted.done():
                accepted.set_result(transport)

    server = await bind(Accepting)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = await accepted
    flag = transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    writer.close()
    transport.close()
    server.close()
    return bool(flag)


def socket_check() -> dict:
    """TCP_NODELAY on accepted connections: uvicorn's own bound socket vs asyncio's."""
    import uvicorn

    loop, sock = asyncio.new_event_loop(), None

    def own(factory):
        nonlocal sock
        sock = uvicorn.Config("x:app", host="127.0.0.1", port=0).bind_socket()
        return loop.create_server(factory, sock=sock)

    try:
        nodelay_own = loop.run_until_complete(_nodelay_of(own))
        return {"uvicorn_bind_socket_proto": sock.proto,
                "nodelay_uvicorn_workers_socket": nodelay_own,
                "nodelay_asyncio_bound_socket": loop.run_until_complete(_nodelay_of(
                    lambda f: loop.create_server(f, "127.0.0.1", 0)))}
    finally:
        loop.close()


def run(tracking_uri: str, workdir: Path, requests: int, model: str = "churn") -> dict:
    """Start the three servers, probe each with keep-alive on and off, stop them."""
    body = payloads.dataframe_split(payloads.records(1, seed=1, dataset=model))
    running, rows = [], []
    try:
        running.append(servers.start_caretflow(tracking_uri, workdir, 2, True, 300, model=model,
                                               path="/invocations"))
        running.append(servers.start_mlflow(tracking_uri, workdir, 2, 300, model=model))
        running.append(servers.start_mlflow(tracking_uri, workdir, 1, 300, model=model,
                                            name="mlflow-serve-1-worker"))
        for s in running:
            probe(s.url, body, True, 5)  # warm-up
            for keepalive in (True, False):
                rows.append({"server": s.name, **probe(s.url, body, keepalive, requests)})
                log.info(json.dumps(rows[-1]))
    finally:
        for s in running:
            s.stop()
    return {"model": model, "rows": rows, "sockets": socket_check()}


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--requests", type=int, default=60, help="per server and keep-alive")
    parser.add_argument("--out", type=Path, default=RESULTS / "ack_probe.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="caretflow-ack-") as tmp:
        doc = run(args.tracking_uri, Path(tmp), args.requests)
    log.info("sockets: %s", json.dumps(doc["sockets"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
