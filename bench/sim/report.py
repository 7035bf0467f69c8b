"""report.py: print the tables of one or more finished runs again, from their results files.

The workload is generated again from the seed and duration stored in the file, and every
metric is recomputed from the recorded claims (claim time, agent, finish time per task), so a
change to metrics.py applies to old runs without running them again.

Usage: report.py results/seed-1.json [results/seed-2.json ...]
"""
import json
import sys

import metrics
import workload as wl


def main():
    for path in sys.argv[1:]:
        with open(path) as f:
            r = json.load(f)
        w = wl.make(r["seed"], r["duration"])
        for name, m in r["systems"].items():
            rec = {int(t): (c, a, fin) for t, (c, a, fin) in m["records"].items()}
            fresh = metrics.compute(w, rec, r["window"])
            for k in ("claims_by_lane", "wall_seconds", "records", "driver_lag"):
                if k in m:
                    fresh[k] = m[k]
            r["systems"][name] = fresh
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
