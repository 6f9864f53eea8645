"""Which TCP addresses a process listens on, read from Linux's /proc (no ``ss`` needed).

A process's sockets are the ``socket:[inode]`` links in ``/proc/<pid>/fd``; the listening
ones are the rows of ``/proc/<pid>/net/tcp`` and ``tcp6`` in state ``0A`` with such an
inode. Addresses there are hex, each 32-bit word in host (little-endian) byte order.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

LISTEN = "0A"


def supported() -> bool:
    return sys.platform.startswith("linux") and Path("/proc/self/net/tcp").exists()


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def decode_address(hex_address: str) -> tuple[str, int]:
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    host = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(host)), int(port_hex, 16)


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(host, port) of every TCP socket ``pid`` listens on."""
    inodes = socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                found.append(decode_address(fields[1]))
    return found


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return False  # "*" = every interface
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
