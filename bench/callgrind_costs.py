# callgrind_costs.py: imported by the callgrind benchmarks (callgrind_claim.sh, callgrind_pick.sh).
# inclusive(path, event): instructions (Ir), or another event of a run with --cache-sim=yes
# (DLmr: last-level cache read misses), per function, inclusive of its callees, from one
# callgrind dump read through callgrind_annotate. A function seen under several files or call
# contexts keeps its largest figure, so a recursive or inlined name is not counted twice.
import re
import subprocess


def events(path):
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                return line.split()[1:]
    return ["Ir"]


def inclusive(path, event="Ir"):
    txt = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          "--show=" + event, "--sort=" + event, path],
                         capture_output=True, text=True).stdout
    cost = {}
    for line in txt.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S+):(\S+) \[", line)
        if m:
            fn = m.group(3).split("'")[0]
            cost[fn] = max(cost.get(fn, 0), int(m.group(1).replace(",", "")))
    return cost
