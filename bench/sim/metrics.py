"""metrics.py: what the simulation reports, computed from the driver's own records.

Every figure is in simulated seconds and computed the same way for every system:
  * Jain's fairness index on weighted service while tenants are backlogged: the run is cut
    into windows; in each, the tenants that had work waiting at every instant of the window
    are the backlogged ones; tenant i's service is the agent-seconds its tasks ran inside the
    window, x_i = service / weight; Jain = (sum x)^2 / (n * sum x^2), over windows with at
    least two backlogged tenants;
  * deadline miss rate: tasks with a deadline that finished after it;
  * p50 / p99 wait (arrival to claim) per priority;
  * agent utilisation: busy agent-seconds over agent-seconds available, over the whole run
    (until the last task finished) and over the overloaded phase;
  * affinity: of session tasks after a session's first, how many went to the agent that ran
    the session's previous task.
"""
from collections import defaultdict

import workload as wl


# A run whose driver fell further behind than this (simulated seconds, p99) was starved of CPU
# (other work on the machine): its timings are not those of the systems compared.
MAX_LAG = 5.0


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def jain(xs):
    s = sum(xs)
    q = sum(x * x for x in xs)
    return (s * s) / (len(xs) * q) if q > 0 else 1.0


def describe(w):
    return {
        "tasks": len(w.tasks),
        "agents": len(w.agents),
        "tenants": {t: {"weight": w.tenants[t], "arrival_share": round(w.shares[t], 3),
                        "tasks": sum(1 for k in w.tasks if k.tenant == t)} for t in sorted(w.tenants)},
        "phases": [{"from": s, "to": e, "load": l} for s, e, l in w.phases],
        "with_deadline": sum(1 for k in w.tasks if k.deadline is not None),
        "in_sessions": sum(1 for k in w.tasks if k.session),
        "priorities": {p: sum(1 for k in w.tasks if k.priority == p)
                       for p in ("critical", "high", "normal", "low")},
    }


def backlog_intervals(tasks, rec):
    """Per tenant, the intervals during which it had at least one task waiting."""
    events = defaultdict(list)
    for t in tasks:
        events[t.tenant].append((t.arrival, 1))
        claim = rec[t.task_id][0] if t.task_id in rec else float("inf")
        events[t.tenant].append((claim, -1))
    out = {}
    for tenant, ev in events.items():
        ev.sort(key=lambda e: (e[0], -e[1]))
        n, start, iv = 0, None, []
        for at, d in ev:
            if n == 0 and d > 0:
                start = at
            n += d
            if n == 0 and start is not None:
                iv.append((start, at))
                start = None
        out[tenant] = iv
    return out


def fairness(w, rec, window):
    tasks = w.tasks
    agents = {a.agent_id: a for a in w.agents}
    end = max(f for _, _, f in rec.values() if f is not None)
    iv = backlog_intervals(tasks, rec)
    runs = defaultdict(list)
    for t in tasks:
        if t.task_id in rec:
            c, a, f = rec[t.task_id]
            runs[t.tenant].append((c, f))

    def served(tenant, s, e):
        return sum(max(0.0, min(f, e) - max(c, s)) for c, f in runs[tenant])

    def backlogged(tenant, s, e):
        return any(a <= s and b >= e for a, b in iv.get(tenant, []))

    per_window = []
    s = 0.0
    while s + window <= end:
        e = s + window
        b = [t for t in w.tenants if backlogged(t, s, e)]
        if len(b) >= 2:
            xs = [served(t, s, e) / w.tenants[t] for t in b]
            per_window.append({"from": s, "to": e, "tenants": len(b), "jain": jain(xs),
                               "weighted_service": {t: round(x, 1) for t, x in zip(b, xs)}})
        s = e
    values = [x["jain"] for x in per_window]
    return {
        "windows": len(per_window),
        "jain_mean": sum(values) / len(values) if values else None,
        "jain_min": min(values) if values else None,
        "jain_p10": pct(values, 10),
        "backlogged_tenants_mean": (sum(x["tenants"] for x in per_window) / len(per_window)
                                    if per_window else 0),
        "per_window": per_window,
    }


def idle_with_work(w, rec):
    """Agent-seconds an agent sat idle while a task it could take was waiting (arrived, not
    yet claimed by anyone): what a work-conserving queue never does, but reservations
    (affinity) do on purpose, and polling delays do a little."""
    total = 0.0
    by_agent = defaultdict(list)
    for tid, (c, a, f) in rec.items():
        by_agent[a].append((c, f if f is not None else float("inf")))
    waiting = [(t.arrival, rec[t.task_id][0], t) for t in w.tasks if t.task_id in rec]
    for ag in w.agents:
        runs = sorted(by_agent[ag.agent_id])
        gaps, prev = [], 0.0
        for c, f in runs:
            if c > prev:
                gaps.append((prev, c))
            prev = max(prev, f)
        mine = sorted((a, c) for a, c, t in waiting if wl.may_take(ag, t))
        for g0, g1 in gaps:
            # The union of the waiting intervals of tasks this agent could take, within the gap.
            cur0 = cur1 = None
            for a, c in mine:
                if a >= g1:
                    break
                if c <= g0:
                    continue
                a, c = max(a, g0), min(c, g1)
                if cur1 is None or a > cur1:
                    if cur1 is not None:
                        total += cur1 - cur0
                    cur0, cur1 = a, c
                else:
                    cur1 = max(cur1, c)
            if cur1 is not None:
                total += cur1 - cur0
    return total


def compute(w, rec, window):
    agents = {a.agent_id: a for a in w.agents}
    done = [t for t in w.tasks if t.task_id in rec and rec[t.task_id][2] is not None]
    waits = defaultdict(list)
    for t in done:
        waits[t.priority].append(rec[t.task_id][0] - t.arrival)
    wait = {p: {"p50": pct(waits[p], 50), "p99": pct(waits[p], 99), "n": len(waits[p])}
            for p in ("critical", "high", "normal", "low")}
    by_tenant = defaultdict(list)
    for t in done:
        by_tenant[t.tenant].append(rec[t.task_id][0] - t.arrival)
    allw = [x for v in waits.values() for x in v]
    wait["all"] = {"p50": pct(allw, 50), "p99": pct(allw, 99), "n": len(allw)}

    dl = [t for t in w.tasks if t.deadline is not None]
    missed = [t for t in dl if t.task_id not in rec or rec[t.task_id][2] is None
              or rec[t.task_id][2] > t.deadline]
    burst = [t for t in dl if t.burst == "deadline-batch"]
    burst_missed = [t for t in missed if t.burst == "deadline-batch"]
    other = [t for t in dl if t.burst != "deadline-batch"]
    other_missed = [t for t in missed if t.burst != "deadline-batch"]

    end = max(rec[t.task_id][2] for t in done)
    busy = sum(rec[t.task_id][2] - rec[t.task_id][0] for t in done)
    o_start, o_end = w.phases[1][0], w.phases[1][1]
    busy_o = sum(max(0.0, min(rec[t.task_id][2], o_end) - max(rec[t.task_id][0], o_start)) for t in done)

    prev, hits, total = {}, 0, 0
    for t in sorted((t for t in done if t.session), key=lambda t: rec[t.task_id][0]):
        a = rec[t.task_id][1]
        if t.session in prev:
            total += 1
            hits += prev[t.session] == a
        prev[t.session] = a

    f = fairness(w, rec, window)
    idle_w = idle_with_work(w, rec)
    return {
        "completed": len(done),
        "makespan": end,
        "wait": wait,
        "deadline_tasks": len(dl),
        "deadline_missed": len(missed),
        "deadline_miss_rate": len(missed) / len(dl) if dl else None,
        "deadline_miss_rate_burst": len(burst_missed) / len(burst) if burst else None,
        "deadline_miss_rate_other": len(other_missed) / len(other) if other else None,
        "utilisation": busy / (len(agents) * end),
        "utilisation_overload": busy_o / (len(agents) * (o_end - o_start)),
        "affinity_hit_rate": hits / total if total else None,
        "idle_with_work": idle_w / (len(agents) * end),
        "wait_by_tenant": {t: {"p50": pct(v, 50), "p99": pct(v, 99)} for t, v in sorted(by_tenant.items())},
        "fairness": f,
    }


def lanes(w, rec, lane_of):
    """dispatch only: claims per lane, and how many urgent-lane claims could no longer make
    their deadline when claimed (claimed after deadline - est, the latest start time)."""
    out = defaultdict(int)
    for t in w.tasks:
        lane = lane_of.get(t.task_id)
        if lane is None:
            continue
        out[lane] += 1
        if lane == "urgent" and rec[t.task_id][0] > t.deadline - t.est:
            out["urgent_past_latest_start"] += 1
    return dict(out)


def summary_line(name, m):
    f = m["fairness"]
    return (f"  {name}: Jain mean {_fmt(f['jain_mean'], 'j')} (min {_fmt(f['jain_min'], 'j')}, "
            f"{f['windows']} windows), "
            f"deadline misses {m['deadline_missed']}/{m['deadline_tasks']} "
            f"({100 * m['deadline_miss_rate']:.1f}%), utilisation {100 * m['utilisation']:.1f}%, "
            f"{m['wall_seconds']} s wall")


def _fmt(x, kind):
    if x is None:
        return "–"
    if kind == "pct":
        return f"{100 * x:.1f}%"
    if kind == "s":
        return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"
    if kind == "j":
        return f"{x:.4f}"
    return str(x)


def table(results):
    names = list(results["systems"])
    S = results["systems"]
    rows = [
        ("Jain index, weighted service, backlogged tenants (mean of windows)",
         lambda m: _fmt(m["fairness"]["jain_mean"], "j")),
        ("Jain index, worst window", lambda m: _fmt(m["fairness"]["jain_min"], "j")),
        ("windows with ≥ 2 backlogged tenants (mean tenants)",
         lambda m: f"{m['fairness']['windows']} ({m['fairness']['backlogged_tenants_mean']:.1f})"),
        ("deadline miss rate, all deadline tasks",
         lambda m: f"{_fmt(m['deadline_miss_rate'], 'pct')} ({m['deadline_missed']}/{m['deadline_tasks']})"),
        ("  of which: the deadline burst", lambda m: _fmt(m["deadline_miss_rate_burst"], "pct")),
        ("  of which: the other deadline tasks", lambda m: _fmt(m["deadline_miss_rate_other"], "pct")),
    ]
    for p in ("critical", "high", "normal", "low", "all"):
        rows.append((f"wait p50 / p99, {p}",
                     lambda m, p=p: f"{_fmt(m['wait'][p]['p50'], 's')} / {_fmt(m['wait'][p]['p99'], 's')}"))
    rows += [
        ("agent utilisation, whole run", lambda m: _fmt(m["utilisation"], "pct")),
        ("agent utilisation, overloaded phase", lambda m: _fmt(m["utilisation_overload"], "pct")),
        ("agent time idle while work it could take waited", lambda m: _fmt(m["idle_with_work"], "pct")),
        ("session affinity (next task to the same agent)", lambda m: _fmt(m["affinity_hit_rate"], "pct")),
        ("makespan (last task done)", lambda m: _fmt(m["makespan"], "s")),
        ("driver lag behind the simulated clock, p50 / p99 (valid run: p99 ≤ 5 s)",
         lambda m: (f"{m['driver_lag']['p50']:.2f} s / {m['driver_lag']['p99']:.2f} s"
                    + ("" if m["driver_lag"]["p99"] <= MAX_LAG else " **too busy: not valid**")
                    if "driver_lag" in m else "–")),
    ]
    out = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, fn in rows:
        out.append(f"| {label} | " + " | ".join(fn(S[n]) for n in names) + " |")
    return "\n".join(out)


def tenant_table(results):
    """Per tenant: weight, share of arrivals, tasks, and p50 / p99 wait under each system."""
    names = list(results["systems"])
    S = results["systems"]
    out = ["| tenant | weight | share of arrivals | tasks | " +
           " | ".join(f"{n} wait p50 / p99" for n in names) + " |",
           "|---|---|---|---|" + "---|" * len(names)]
    for t, d in results["workload"]["tenants"].items():
        cells = [f"{_fmt(S[n]['wait_by_tenant'][t]['p50'], 's')} / {_fmt(S[n]['wait_by_tenant'][t]['p99'], 's')}"
                 for n in names]
        out.append(f"| {t} | {d['weight']:g} | {100 * d['arrival_share']:.1f}% | {d['tasks']} | "
                   + " | ".join(cells) + " |")
    return "\n".join(out)
