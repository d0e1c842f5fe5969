"""CPU time and memory of whole process groups, read from /proc (Linux).

Every server the test bed starts leads its own process group (`ManagedProcess` starts a new
session), so a group is one component: PostgreSQL with all its backends, Rasa with its workers.
Some servers move their children into sessions of their own (PostgreSQL's backends call
setsid()), so the descendants of the leader count as well.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after its closing one.
    return raw.rsplit(")", 1)[1].split()


def _group_members(pgid: int) -> list[tuple[str, list[str]]]:
    """The processes of group `pgid` and every descendant of its leader."""
    table: dict[str, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None:
                table[entry.name] = fields
    # fields[1] is the parent pid, fields[2] the process group (fields 4 and 5 of stat).
    members = {pid for pid, fields in table.items() if int(fields[2]) == pgid}
    frontier = set(members) | {str(pgid)}
    while frontier:
        children = {pid for pid, fields in table.items() if fields[1] in frontier}
        frontier = children - members
        members |= children
    return [(pid, table[pid]) for pid in members if pid in table]


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the living members of a process group (their reaped
    children's time included: cutime/cstime)."""
    total = 0
    for _pid, fields in _group_members(pgid):
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / _TICKS


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of the group (sum of the members' RSS; shared pages count once per
    process, so this is an upper bound for forked servers like PostgreSQL)."""
    total = 0
    for pid, _fields in _group_members(pgid):
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * _PAGE
    return total


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
