"""Network namespaces of the real node, and the TCP relays that join them to the host's loopback.

The node (containerd, kubelet, kube-proxy and every pod) lives in a network namespace of its own
that has no link to the host at all: no veth, no route out, no default route. Traffic crosses only
through the relays below, which are ordinary sockets opened in one namespace or the other:

- `--forward LISTEN=CONNECT` accepts on one side and dials on the other, e.g. the kube-apiserver
  (host 127.0.0.1) seen from the node at its own address, or a pod Service seen from a test;
- `--egress-uds PATH` is the kube-apiserver's "cluster" egress proxy (HTTP CONNECT over a unix
  socket): the API server reaches kubelets and pods only through it, so a node or pod address is
  never routed by the host. It dials node addresses inside the namespace, loopback ones on the
  host, and refuses anything else.

A side is written `host` or the path of a namespace (e.g. /run/netns/NAME).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
HOST = "host"
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    """A network namespace could not be created, entered or removed."""


def netns_path(name: str) -> Path:
    return Path("/run/netns") / name


def create_netns(name: str) -> Path:
    """A named namespace with its loopback up (`ip netns add`, so `ip netns exec` works too)."""
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    return netns_path(name)


def delete_netns(name: str) -> None:
    """Removes the namespace; every interface, route and iptables rule in it goes with it."""
    if netns_path(name).exists():
        _ip("netns", "delete", name)


def ip_in(name: str, *args: str) -> None:
    _ip("-n", name, *args)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(errno)}")


@contextlib.contextmanager
def entered(side: str) -> Iterator[None]:
    """Runs the block in the namespace `side` (this thread only), then comes back."""
    if side == HOST:
        yield
        return
    with Path("/proc/thread-self/ns/net").open("rb") as origin, Path(side).open("rb") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(origin.fileno())


@dataclass(frozen=True)
class Endpoint:
    side: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        side, host, port = text.rsplit(":", 2)
        return cls(side, host, int(port))

    def __str__(self) -> str:
        return f"{self.side}:{self.host}:{self.port}"


def _socket_in(side: str) -> socket.socket:
    with entered(side):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _open(
    side: str, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = _socket_in(side)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()


def _listening_socket(listen: Endpoint) -> socket.socket:
    sock = _socket_in(listen.side)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((listen.host, listen.port))
    sock.listen(128)
    return sock


def _unix_socket(path: Path) -> socket.socket:
    """The API server's side: a socket file only root may use."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    path.chmod(0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _serve_forward(
    sock: socket.socket, listen: Endpoint, connect: Endpoint
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await _open(connect.side, connect.host, connect.port)
        except OSError as error:
            print(f"relay {listen} -> {connect}: {error}", file=sys.stderr, flush=True)
            writer.close()
            return
        await _splice((reader, writer), upstream)

    return await asyncio.start_server(handle, sock=sock)


@dataclass(frozen=True)
class EgressPolicy:
    """Which side an API server connection goes to: node networks inside, loopback on the host."""

    netns: str
    node_networks: tuple[ipaddress.IPv4Network, ...]

    def side_for(self, host: str) -> str | None:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        if address.is_loopback:
            return HOST
        if any(address in network for network in self.node_networks):
            return self.netns
        return None


async def _serve_egress(sock: socket.socket, policy: EgressPolicy) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        host, _, port = target.rpartition(":")
        side = policy.side_for(host.strip("[]")) if method == "CONNECT" else None
        if side is None:
            print(f"egress: refused {method} {target}", file=sys.stderr, flush=True)
            writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            writer.close()
            return
        try:
            upstream = await _open(side, host, int(port))
        except OSError as error:
            writer.write(f"HTTP/1.1 502 Bad Gateway\r\n\r\n{error}".encode())
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)

    return await asyncio.start_unix_server(handle, sock=sock)


async def _run(
    forwards: Sequence[tuple[socket.socket, Endpoint, Endpoint]],
    egress: tuple[socket.socket, EgressPolicy] | None,
    ready_file: Path | None,
) -> None:
    servers = [await _serve_forward(*forward) for forward in forwards]
    if egress is not None:
        servers.append(await _serve_egress(*egress))
    if ready_file is not None:
        # The parent polls for this file: every socket listens once it exists.
        await asyncio.to_thread(ready_file.write_text, "ready\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--forward",
        action="append",
        default=[],
        metavar="SIDE:HOST:PORT=SIDE:HOST:PORT",
        help="accept on the left, dial the right",
    )
    parser.add_argument("--egress-uds", type=Path, help="serve the API server's egress proxy here")
    parser.add_argument("--egress-netns", help="the node's namespace, for --egress-uds")
    parser.add_argument(
        "--egress-network",
        action="append",
        default=[],
        help="a network (CIDR) that lives in --egress-netns",
    )
    parser.add_argument("--ready-file", type=Path, help="written once every socket listens")
    args = parser.parse_args(argv)
    forwards = []
    for spec in args.forward:
        listen, connect = (Endpoint.parse(side) for side in spec.split("=", 1))
        forwards.append((_listening_socket(listen), listen, connect))
    egress = None
    if args.egress_uds is not None:
        networks = tuple(ipaddress.IPv4Network(n) for n in args.egress_network)
        egress = (_unix_socket(args.egress_uds), EgressPolicy(args.egress_netns, networks))
    asyncio.run(_run(forwards, egress, args.ready_file))


if __name__ == "__main__":
    main()
