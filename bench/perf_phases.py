#!/usr/bin/env python3
"""perf_phases.py: where a backend's CPU time goes per claim+complete, from `perf script` output.

Reads `perf script` (recorded with --call-graph dwarf on one backend running the dispatch side of
bench/claim_throughput) on stdin; attributes each sample to one phase of the claim path by the
functions on its stack; prints each phase's share and its CPU microseconds per task.

    perf_phases.py HZ TASKS < perf-script.txt
HZ: the sampling frequency used; TASKS: tasks claimed and completed while recording.
"""
import sys
from collections import Counter

# Phases inside dispatch_next, by the outermost matching frame below claim_one / dispatch_next.
CLAIM_PHASES = [
    ("agent_load", "agent row (SPI SELECT)"),
    ("agent_signatures", "agent's signature set"),
    ("qm_read_for_pick", "pick: read queue map"),
    ("probe_reserved", "pick: reserved probe"),
    ("probe_urgent", "pick: urgent probes"),
    ("probe_queue", "pick: ready-index probes"),
    ("pick_candidates", "pick: other"),
    ("lock_task", "lock winner (SKIP LOCKED)"),
    ("qm_charge_claim", "charge tenant (queue map)"),
    ("agent_take", "agent running+1 (SPI UPDATE)"),
    ("update_claimed", "task -> claimed (SPI UPDATE)"),
    ("remember_session", "session (SPI INSERT)"),
    ("candidate_factors", "factors jsonb text"),
    ("log_decision", "decision log (SPI INSERT)"),
    ("agent_seen", "agent last_seen (SPI UPDATE)"),
]
# Inside the probes: index vs heap.
PROBE_DETAIL = [("index_fetch_heap", "heap fetch"), ("index_getnext_tid", "index walk"),
                ("index_rescan", "index rescan"), ("_bt_first", "index descent")]
# Inside the SPI statements: what the executor spends it on.
SPI_DETAIL = [("GetCachedPlan", "plan cache"), ("ExecConstraints", "CHECK constraints"),
              ("ExecInsertIndexTuples", "index inserts"), ("dispatch_task_row", "row trigger"),
              ("heap_update", "heap update"), ("heap_insert", "heap insert"),
              ("ExecInitNode", "executor start"), ("standard_ExecutorStart", "executor start"),
              ("ExecScan", "scan"), ("nextval_internal", "sequence")]


def frames(block):
    out = []
    for line in block[1:]:
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        sym = parts[1].split(" (")[0]
        sym = sym.split("+0x")[0]
        out.append(sym)
    return out[::-1]  # outermost first


def classify(stack):
    s = set(stack)
    if "dispatch_next" in s or "dispatch_next_n" in s:
        top = "dispatch_next"
        sub = "dispatch_next: call overhead, SPI connect/finish"
        for fn, label in CLAIM_PHASES:
            if fn in s:
                sub = label
                break
        detail = ""
        if sub.startswith("pick: ready") or sub.startswith("pick: urgent") or sub.startswith("pick: reserved"):
            for fn, label in PROBE_DETAIL:
                if fn in s:
                    detail = label
                    break
        elif "SPI" in sub:
            for fn, label in SPI_DETAIL:
                if fn in s:
                    detail = label
                    break
        return top, sub, detail
    if "plpgsql_call_handler" in s:
        detail = "plpgsql and its statements"
        for fn, label in SPI_DETAIL:
            if fn in s:
                detail = label
                break
        if "agent_running" in s:
            detail = "trigger: agent running-1 (SPI UPDATE)"
        elif "dispatch_task_row" in s:
            detail = "trigger: other"
        return "complete()", "complete()", detail
    if "CommitTransactionCommand" in s:
        if "XLogFlush" in s:
            return "commit", "commit: WAL write + fsync", ""
        return "commit", "commit: other (callbacks, locks, stats)", ""
    for fn, label in [("pg_parse_query", "parse"), ("pg_analyze_and_rewrite_fixedparams", "parse"),
                      ("pg_plan_queries", "plan"), ("GetCachedPlan", "plan"),
                      ("StartTransactionCommand", "start transaction"),
                      ("pq_getbyte", "protocol"), ("pq_getmessage", "protocol"),
                      ("secure_read", "protocol"), ("secure_write", "protocol"),
                      ("pq_flush", "protocol"), ("socket_flush", "protocol")]:
        if fn in s:
            return "statement", "statement: " + label, ""
    return "statement", "statement: executor and other", ""


def main():
    hz = float(sys.argv[1])
    tasks = float(sys.argv[2])
    subs = Counter()
    details = Counter()
    tops = Counter()
    total = 0
    block = []
    for line in sys.stdin.read().split("\n") + [""]:
        if line.strip() == "":
            if block:
                top, sub, detail = classify(frames(block))
                tops[top] += 1
                subs[(top, sub)] += 1
                if detail:
                    details[(top, sub, detail)] += 1
                total += 1
            block = []
        else:
            block.append(line)
    if total == 0:
        print("no samples")
        return
    us = lambda n: n / hz / tasks * 1e6
    print(f"{total} samples at {hz:g} Hz over {tasks:g} tasks: "
          f"{us(total):.0f} us of backend CPU per claim+complete")
    print(f"{'phase':58s} {'share':>6s} {'us/task':>8s}")
    for top, n in tops.most_common():
        print(f"{top:58s} {100*n/total:5.1f}% {us(n):8.1f}")
        for (t, sub), m in sorted(subs.items(), key=lambda kv: -kv[1]):
            if t != top or m / total < 0.004:
                continue
            print(f"  {sub:56s} {100*m/total:5.1f}% {us(m):8.1f}")
            for (t2, s2, d), k in sorted(details.items(), key=lambda kv: -kv[1]):
                if t2 == top and s2 == sub and k / total >= 0.004:
                    print(f"    {d:54s} {100*k/total:5.1f}% {us(k):8.1f}")


if __name__ == "__main__":
    main()
