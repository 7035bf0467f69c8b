"""report.py: print the tables of one or more finished runs again, from their results files.

The workload is generated again from the seed and duration stored in the file, and every
metric is recomputed from the recorded claims (claim time, agent, finish time per task), so a
change to metrics.py applies to old runs without running them again.

Usage: report.py results/seed-1.json [results/seed-2.json ...]
       report.py --summary FILE...   one line per run and system, the key figures
"""
import json
import sys

import metrics
import workload as wl


def load(path):
    with open(path) as f:
        r = json.load(f)
    w = wl.make(r["seed"], r["duration"])
    for name, m in r["systems"].items():
        rec = {int(t): (c, a, fin) for t, (c, a, fin) in m["records"].items()}
        fresh = metrics.compute(w, rec, r["window"])
        for k in ("claims_by_lane", "wall_seconds", "driver_lag"):
            if k in m:
                fresh[k] = m[k]
        r["systems"][name] = fresh
    return r


def summary(paths):
    print("| run | system | Jain mean / worst | deadline misses: all / burst / other | "
          "critical wait p99 | utilisation | affinity | driver lag p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        r = load(path)
        label = f"seed {r['seed']}" + (f", speedup {r['speedup']:g}" if r["speedup"] != 100 else "") + \
            (f", {json.dumps(r['policy'])}" if r["policy"] else "")
        for name, m in r["systems"].items():
            f = m["fairness"]
            lag = m.get("driver_lag", {}).get("p99")
            valid = lag is None or lag <= metrics.MAX_LAG
            print(f"| {label} | {name} | {f['jain_mean']:.4f} / {f['jain_min']:.4f} | "
                  f"{100 * m['deadline_miss_rate']:.1f}% / {100 * m['deadline_miss_rate_burst']:.1f}% / "
                  f"{100 * m['deadline_miss_rate_other']:.1f}% | {m['wait']['critical']['p99']:.0f} s | "
                  f"{100 * m['utilisation']:.1f}% | {100 * m['affinity_hit_rate']:.1f}% | "
                  + (f"{lag:.2f} s" if lag is not None else "–") + ("" if valid else " (not valid)") + " |")


def main():
    if sys.argv[1:2] == ["--summary"]:
        summary(sys.argv[2:])
        return
    for path in sys.argv[1:]:
        r = load(path)
        print(f"## {path}: seed {r['seed']}, speedup {r['speedup']:g}, policy {json.dumps(r['policy'])}\n")
        print(metrics.table(r))
        print()
        print(metrics.tenant_table(r))
        for name, m in r["systems"].items():
            if "claims_by_lane" in m:
                print(f"\n{name} claims by lane: {json.dumps(m['claims_by_lane'], sort_keys=True)}")
        print()


if __name__ == "__main__":
    main()
