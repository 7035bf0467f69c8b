"""sim.py: drive dispatch and two baselines with the same simulated fleet and workload.

The clock is compressed, not virtual: the server runs in real time, and one simulated second
is 1/speedup of a real one (default 100: a 60 s task runs for 0.6 s). Every duration the
systems see is scaled the same way (est_duration, deadlines, and for dispatch every
time-valued policy weight and the worker's naptime), and all of dispatch's scoring is linear in
seconds, so it makes the same decisions it would make at speedup 1. What does not scale is
the cost of the calls themselves (a claim is about a millisecond, i.e. 0.1 simulated seconds
at speedup 100): that is small next to tasks of tens of seconds, and the same for every system.

One driver plays every agent through one psql session (a coprocess speaking a line
protocol): each step it completes the tasks whose time is up, submits the tasks that have
arrived, and lets each free agent claim (in a seeded random order). An agent that got nothing
asks again when new work arrives, and every `poll` simulated seconds in any case. Times are
recorded in simulated seconds by the driver, so all systems are measured the same way.

Usage: sim.py --host DIR --port N --db NAME [--seed 1] [--speedup 100] [--duration 7200]
              [--systems dispatch,fifo,priority] [--json FILE]
"""
import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import time

import metrics
import workload as wl

PRIO_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}


class Psql:
    """A psql coprocess: send a batch of statements, read its output up to a marker."""

    def __init__(self, psql, host, port, db):
        self.p = subprocess.Popen(
            [psql, "-h", host, "-p", str(port), "-d", db, "-U", "postgres",
             "-XAtq", "-F", "|", "-v", "ON_ERROR_STOP=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1)
        self.n = 0

    def run(self, stmts):
        self.n += 1
        mark = f"__batch_{self.n}__"
        self.p.stdin.write("\n".join(stmts) + f"\n\\echo {mark}\n")
        self.p.stdin.flush()
        out = []
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line == mark:
                return out
            if "ERROR:" in line or "FATAL:" in line:
                raise RuntimeError(f"psql: {line}")
            out.append(line)
        raise RuntimeError("psql exited")

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def lit(s):
    return "NULL" if s is None else "'" + str(s).replace("'", "''") + "'"


def arr(xs):
    return "'{" + ",".join(xs) + "}'"


class Dispatch:
    """The extension: dispatch_next, complete, the background worker ticking."""
    name = "dispatch"

    def __init__(self, speedup, policy_overrides=None):
        self.s = speedup
        self.overrides = policy_overrides or {}

    def policy(self):
        # Every key that is a number of seconds, scaled; fair_weight and urgent_slack are ratios.
        s = self.s
        p = {"priority_bonus": {"critical": 3600 / s, "high": 600 / s, "normal": 60 / s, "low": 0},
             "default_cost": 60 / s, "urgent_weight": 600 / s, "affinity_weight": 30 / s,
             "affinity_wait": 30 / s, "match_weight": 60 / s, "max_age_credit": 300 / s,
             "assign_hold": max(1.0, 60 / s)}  # (not used here; its floor is 1 s)
        for k, v in self.overrides.items():
            p[k] = v / s if k in p and k != "priority_bonus" else v
        return p

    def setup(self, db, w):
        db.run([
            "TRUNCATE dispatch.tasks, dispatch.sessions, dispatch.decisions;",
            "DELETE FROM dispatch.agents;",
            "DELETE FROM dispatch.tenants;",
            f"SELECT dispatch.set_policy({lit(json.dumps(self.policy()))}, 'simulation') \\g /dev/null",
        ] + [f"INSERT INTO dispatch.tenants (tenant, weight) VALUES ({lit(t)}, {wt});"
             for t, wt in w.tenants.items()]
          + [f"SELECT FROM dispatch.register_agent({lit(a.agent_id)}, capabilities => {arr(a.capabilities)}, "
             f"capacity => 1, clearance => {a.clearance}, speed => {a.speed});" for a in w.agents]
          + ["SELECT dispatch.rebuild_queue_map() \\g /dev/null"])

    def submit(self, tasks, epoch0):
        rows = []
        for t in tasks:
            dl = "NULL" if t.deadline is None else f"to_timestamp({epoch0 + t.deadline / self.s:.6f})"
            rows.append(f"({t.task_id}, {lit(t.tenant)}, 'sim', {lit(t.priority)}, {arr(t.requires)}, "
                        f"{t.sensitivity}, make_interval(secs => {t.est / self.s:.6f}), {dl}, {lit(t.session)})")
        return ("INSERT INTO dispatch.tasks (task_id, tenant, kind, priority, requires, sensitivity, "
                "est_duration, deadline, session_ref) VALUES " + ", ".join(rows) + ";")

    def claim(self, a):
        return f"SELECT 'C', {lit(a.agent_id)}, (dispatch.dispatch_next({lit(a.agent_id)})).task_id;"

    def complete(self, task_id):
        return f"SELECT FROM dispatch.complete({task_id});"

    def report(self, db):
        rows = db.run(["SELECT task_id, factors ->> 'lane' FROM dispatch.decisions WHERE kind = 'claim';"])
        return {"lanes": {int(r.split("|")[0]): r.split("|")[1] for r in rows if "|" in r}}


class Baseline:
    """A plain SKIP LOCKED queue: FIFO, or strict priority then FIFO."""

    def __init__(self, order):
        self.name = order
        self.fn = "base.fifo_next" if order == "fifo" else "base.priority_next"

    def setup(self, db, w):
        db.run(["TRUNCATE base.tasks;"])

    def submit(self, tasks, epoch0):
        rows = []
        for t in tasks:
            rows.append(f"({t.task_id}, {lit(t.tenant)}, {PRIO_RANK[t.priority]}, {arr(t.requires)}, "
                        f"{t.sensitivity})")
        return ("INSERT INTO base.tasks (task_id, tenant, prio, requires, sensitivity) VALUES "
                + ", ".join(rows) + ";")

    def claim(self, a):
        return (f"SELECT 'C', {lit(a.agent_id)}, {self.fn}({lit(a.agent_id)}, {arr(a.capabilities)}, "
                f"{a.clearance});")

    def complete(self, task_id):
        return f"SELECT FROM base.complete({task_id});"

    def report(self, db):
        return {}


def simulate(system, w, db, speedup, poll, seed, log):
    """Run the workload through one system; returns {task_id: (claim, agent_id, finish)}."""
    system.setup(db, w)
    agents = {a.agent_id: a for a in w.agents}
    tasks = {t.task_id: t for t in w.tasks}
    arrivals = w.tasks
    rng = random.Random(seed)
    rec = {}
    busy = []                                   # (finish, agent_id, task_id)
    free = set(agents)
    wants = set(agents)                         # free agents that should ask now
    last_null = {a: float("-inf") for a in agents}
    last_arrival = float("-inf")
    nxt = 0
    limit = 3 * w.duration + 3600
    next_log = 0.0
    lag = []                                    # how late the driver acted on each event
    slowest = [0.0, 0]                          # the slowest batch: real seconds, statements

    t0 = time.monotonic()
    epoch0 = time.time()
    while True:
        now = (time.monotonic() - t0) * speedup
        stmts = []
        while busy and busy[0][0] <= now:
            finish, a, tid = heapq.heappop(busy)
            lag.append(now - finish)
            stmts.append(system.complete(tid))
            rec[tid] = rec[tid][:2] + (finish,)
            free.add(a)
            wants.add(a)
        batch = []
        while nxt < len(arrivals) and arrivals[nxt].arrival <= now:
            lag.append(now - arrivals[nxt].arrival)
            batch.append(arrivals[nxt])
            nxt += 1
        if batch:
            stmts.append(system.submit(batch, epoch0))
            last_arrival = now
        askers = sorted(a for a in free
                        if a in wants or last_null[a] < last_arrival or now - last_null[a] >= poll)
        rng.shuffle(askers)
        stmts += [system.claim(agents[a]) for a in askers]
        if stmts:
            sent = time.monotonic()
            out = db.run(stmts)
            took = time.monotonic() - sent
            if took > slowest[0]:
                slowest[:] = [took, len(stmts)]
            at = (time.monotonic() - t0) * speedup
            for line in out:
                if not line.startswith("C|"):
                    continue
                _, a, tid = line.split("|")
                wants.discard(a)
                if tid == "":
                    last_null[a] = at
                    continue
                tid = int(tid)
                rec[tid] = (at, a, None)
                free.discard(a)
                heapq.heappush(busy, (at + wl.run_time(tasks[tid], agents[a]), a, tid))
        if nxt == len(arrivals) and not busy and len(rec) == len(arrivals):
            break
        if now > limit:
            log(f"  {system.name}: stopped at the time limit with {len(arrivals) - len(rec)} tasks unclaimed")
            break
        if now >= next_log:
            log(f"  {system.name}: t={now:7.0f} s  submitted {nxt}  claimed {len(rec)}  running {len(busy)}")
            next_log += 900
        # Sleep until the next thing that can happen.
        wake = [now + poll]
        if nxt < len(arrivals):
            wake.append(arrivals[nxt].arrival)
        if busy:
            wake.append(busy[0][0])
        if free:
            wake.append(min(last_null[a] for a in free) + poll)
        delay = (min(wake) - (time.monotonic() - t0) * speedup) / speedup
        if delay > 0:
            time.sleep(min(delay, 0.05))
    extra = system.report(db)
    lag.sort()
    extra["driver_lag"] = {"p50": lag[len(lag) // 2], "p99": lag[int(len(lag) * 0.99)], "max": lag[-1],
                           "slowest_batch_ms": round(1000 * slowest[0], 1), "slowest_batch_statements": slowest[1]}
    return rec, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speedup", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=7200.0, help="simulated seconds of arrivals")
    ap.add_argument("--poll", type=float, default=10.0, help="simulated seconds between polls of an idle agent")
    ap.add_argument("--window", type=float, default=600.0, help="simulated seconds per fairness window")
    ap.add_argument("--systems", default="dispatch,fifo,priority")
    ap.add_argument("--policy", default="{}", help="dispatch policy overrides, JSON, in simulated seconds")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    w = wl.make(args.seed, args.duration)
    log(f"workload: seed {args.seed}, {len(w.tasks)} tasks over {args.duration:.0f} s, "
        f"{len(w.agents)} agents, speedup {args.speedup:g}")
    db = Psql(args.psql, args.host, args.port, args.db)
    results = {"seed": args.seed, "speedup": args.speedup, "duration": args.duration,
               "poll": args.poll, "window": args.window, "policy": json.loads(args.policy),
               "workload": metrics.describe(w), "systems": {}}
    for name in args.systems.split(","):
        system = Dispatch(args.speedup, json.loads(args.policy)) if name == "dispatch" else Baseline(name)
        log(f"running {name}")
        started = time.monotonic()
        rec, extra = simulate(system, w, db, args.speedup, args.poll, args.seed, log)
        m = metrics.compute(w, rec, args.window)
        m["driver_lag"] = extra["driver_lag"]
        if "lanes" in extra:
            m["claims_by_lane"] = metrics.lanes(w, rec, extra["lanes"])
        m["wall_seconds"] = round(time.monotonic() - started, 1)
        m["records"] = {tid: [round(c, 3), a, round(f, 3)] for tid, (c, a, f) in sorted(rec.items())}
        results["systems"][name] = m
        log(metrics.summary_line(name, m))
    db.close()
    print(metrics.table(results))
    print()
    print(metrics.tenant_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
