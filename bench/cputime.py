#!/usr/bin/env python3
"""CPU time used so far by processes and their threads, from /proc/PID/task/TID/stat.

Usage: bench/cputime.py PID...   Prints one line per thread name: `NAME SECONDS`, summed over
the threads of that name in all the given processes (a thread's name is its comm: Gatehouse
names its event loops gh-loop-N and its usage writer gh-usage; the rest keep the program's
name). bench/run takes one snapshot before and one after a wrk run and divides the difference
by the requests served: CPU per request per thread, which the load of other work on the
machine disturbs far less than throughput."""
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")
totals = {}
for pid in sys.argv[1:]:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        continue
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended between listdir and open
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")].replace(" ", "_")
        fields = stat[stat.rindex(")") + 2:].split()
        # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
        totals[name] = totals.get(name, 0) + int(fields[11]) + int(fields[12])
for name, ticks in sorted(totals.items()):
    print(name, f"{ticks / TICKS:.2f}")
