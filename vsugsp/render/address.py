"""Which running Ray cluster ``--address`` names, checked before Ray is asked to join it.

Ray's own join retries a wrong address for minutes, printing raw retry lines
(a closed port, a port out of range, an open port that is not Ray). Here the
address is parsed, ``auto`` is looked up, and the head is asked for an
HTTP/2 greeting (Ray's GCS is a gRPC server: it answers a client preface with
a SETTINGS frame at once) within :data:`CONNECT_TIMEOUT` seconds; anything
else is one line naming the address and what to check.

``auto`` means the cluster this machine's ``ray start`` recorded (or the
``RAY_ADDRESS`` environment variable), never another process's embedded
cluster: Ray's own ``auto`` falls back to any Ray processes it finds running,
which joins another render by accident.
"""
from __future__ import annotations

import os
import socket
import time

__all__ = ["CONNECT_TIMEOUT", "parse_address", "resolve_address", "check_reachable"]

#: Seconds to reach a cluster's head before giving up.
CONNECT_TIMEOUT = 15.0

# The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS = 0x04


def _error(address: str, what: str) -> ValueError:
    return ValueError(f"vsugsp: --address {address[:200]!r}: {what}")


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` or ``SCHEME://HOST:PORT`` (IPv6 hosts in brackets);
    ValueError naming the argument."""
    host, sep, port = address.strip().split("://", 1)[-1].rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise _error(address, "give HOST:PORT (the address 'ray start --head' printed), or 'auto'")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _error(address, "the port must be a number from 1 to 65535")
    return host, int(port)


def resolve_address(address: str, environ: "dict[str, str] | None" = None, recorded: str | None = None) -> str:
    """``address`` as HOST:PORT; ``auto`` → ``RAY_ADDRESS``, else ``recorded`` (the address
    ``ray start`` wrote on this machine, :func:`recorded_address` when None).

    Raises ValueError naming the argument when ``auto`` finds no cluster.
    """
    address = address.strip()
    if address != "auto":
        return address
    env = (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    found = recorded_address() if recorded is None else recorded
    if not found:
        raise _error(address, "no cluster started with 'ray start' on this machine (and RAY_ADDRESS is not "
                              "set); give its HOST:PORT, or leave --address out to use an embedded cluster")
    return found


def recorded_address() -> str:
    """The address of the cluster ``ray start`` last started on this machine ('' when none)."""
    try:
        from ray._private.utils import read_ray_address

        return (read_ray_address() or "").strip()
    except (ImportError, OSError):
        return ""


def check_reachable(address: str, timeout: float | None = None) -> None:
    """Raise ValueError naming ``address`` unless a gRPC (HTTP/2) server answers there
    within ``timeout`` seconds (None: :data:`CONNECT_TIMEOUT`)."""
    host, port = parse_address(address)
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    check = "check that the cluster is running ('ray status' on its head) and that this machine can reach it"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
                return  # a TLS head does not speak plain HTTP/2; the port is open, Ray takes it from here
            sock.sendall(_PREFACE)
            header = b""
            while len(header) < 9:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                part = sock.recv(9 - len(header))
                if not part:
                    break
                header += part
    except socket.gaierror as exc:
        raise _error(address, f"cannot resolve the host {host!r} ({exc.strerror or exc})") from None
    except socket.timeout:
        raise _error(address, f"no answer within {timeout:g} s; {check}") from None
    except OSError as exc:
        raise _error(address, f"cannot connect ({exc.strerror or exc}); {check}") from None
    if len(header) < 9 or header[3] != _SETTINGS:
        raise _error(address, "the port is open but is not a Ray cluster's head (its GCS port, "
                              "6379 by default); check the port")
