"""workload.py: the synthetic workload and fleet of the simulation, generated from one seed.

Everything here is in simulated seconds and is fixed before any system runs, so dispatch and
the baselines are fed exactly the same tasks at the same times, and a task takes the same time
on the same agent whichever system hands it out (open loop: nothing here depends on how a
system behaves).

The shape (doc/simulation.md has the numbers):
  * tenants with Zipf-skewed arrival rates and, independently, skewed fair-share weights;
  * a load profile: normal, then overloaded (so several tenants are backlogged), then light;
  * bursts: one tenant dumps a batch at once, another dumps a batch of deadline work;
  * priorities, deadlines (a share of tasks, with slack a few times their size), mixed
    capabilities and a clearance level, noisy estimates (actual = estimate x noise);
  * sessions: conversations whose next task arrives every minute or two, for affinity.
"""
from dataclasses import dataclass, field
import math
import random


@dataclass
class Task:
    task_id: int
    arrival: float          # s
    tenant: str
    priority: str           # critical | high | normal | low
    requires: list          # capability labels
    sensitivity: int
    est: float              # s, what the submitter estimates (est_duration)
    actual: float           # s on a speed-1 agent
    deadline: float = None  # absolute s, or None
    session: str = None
    burst: str = None       # which burst it belongs to, if any


@dataclass
class Agent:
    agent_id: str
    capabilities: list
    clearance: int
    speed: float


@dataclass
class Workload:
    seed: int
    duration: float                         # s of arrivals
    tenants: dict                           # tenant -> weight
    shares: dict                            # tenant -> share of the background arrivals
    phases: list                            # (start, end, load factor)
    agents: list
    tasks: list = field(default_factory=list)


PRIORITIES = [("critical", 0.03), ("high", 0.12), ("normal", 0.55), ("low", 0.30)]
# requires sets and how often tasks need them; the fleet below covers each.
REQUIRES = [((), 0.70), (("gpu",), 0.20), (("gpu", "long"), 0.05), ((), 0.05)]


def fleet():
    """24 agents: 12 general, 6 with a GPU, 4 with GPU and long runs (faster), 2 cleared."""
    agents = []
    for i in range(12):
        agents.append(Agent(f"gen{i:02d}", [], 0, 1.0))
    for i in range(6):
        agents.append(Agent(f"gpu{i:02d}", ["gpu"], 0, 1.0))
    for i in range(4):
        agents.append(Agent(f"big{i:02d}", ["gpu", "long"], 0, 1.5))
    for i in range(2):
        agents.append(Agent(f"sec{i:02d}", [], 2, 1.0))
    return agents


def pick(rng, weighted):
    x = rng.random()
    for value, p in weighted:
        x -= p
        if x < 0:
            return value
    return weighted[-1][0]


def make(seed=1, duration=7200.0, ntenants=10, zipf_s=1.0):
    rng = random.Random(seed)
    agents = fleet()
    names = [f"t{i:02d}" for i in range(1, ntenants + 1)]

    # Arrival shares: Zipf over the tenants in name order. Weights: Zipf too, over a shuffled
    # order, rounded to 1..6, so the heaviest senders are not the heaviest weights.
    raw = [1 / (k ** zipf_s) for k in range(1, ntenants + 1)]
    shares = {n: r / sum(raw) for n, r in zip(names, raw)}
    order = names[:]
    rng.shuffle(order)
    weights = {n: float(max(1, round(6 / (k ** 0.8)))) for k, n in enumerate(order, start=1)}

    # Load profile over the fleet's capacity (agent-seconds per second, speeds included).
    phases = [(0, 0.25 * duration, 0.7), (0.25 * duration, 0.70 * duration, 1.35),
              (0.70 * duration, duration, 0.45)]
    w = Workload(seed, duration, weights, shares, phases, agents)

    mean_actual = 45.0 * math.exp(0.6 ** 2 / 2) * math.exp(0.25 ** 2 / 2)
    capacity = sum(a.speed for a in agents)
    tasks = []

    def new_task(at, tenant, session=None, burst=None, deadline_p=0.25):
        est = min(600.0, max(5.0, rng.lognormvariate(math.log(45.0), 0.6)))
        actual = est * rng.lognormvariate(0.0, 0.25)
        req = pick(rng, REQUIRES)
        sens = 2 if (req == () and rng.random() < 0.05) else 0
        deadline = None
        if rng.random() < deadline_p:
            deadline = at + est * rng.uniform(1.5, 4.0) + rng.uniform(30.0, 300.0)
        tasks.append(Task(0, at, tenant, pick(rng, PRIORITIES), list(req), sens, est, actual,
                          deadline, session, burst))

    # Sessions: 20 conversations, each a task every 60-180 s over the whole run.
    sessions = []
    for i in range(20):
        tenant = pick(rng, list(shares.items()))
        t = rng.uniform(0, 180)
        while t < duration:
            sessions.append((t, tenant, f"s{i:02d}"))
            t += rng.uniform(60, 180)
    session_rate = len(sessions) / duration

    # Background arrivals: Poisson, rate = load x capacity / mean size, minus the sessions.
    for start, end, load in phases:
        rate = max(0.0, load * capacity / mean_actual - session_rate)
        t = start
        while True:
            t += rng.expovariate(rate)
            if t >= end:
                break
            new_task(t, pick(rng, list(shares.items())))
    for t, tenant, s in sessions:
        new_task(t, tenant, session=s)

    # Bursts, in the overloaded phase: a batch of ordinary work, and a batch of deadline work.
    b1, b2 = names[5], names[8]
    for _ in range(150):
        new_task(0.35 * duration, b1, burst="batch")
    for _ in range(150):
        new_task(0.45 * duration, b2, burst="deadline-batch", deadline_p=1.0)

    tasks.sort(key=lambda k: (k.arrival, k.tenant))
    for i, k in enumerate(tasks, start=1):
        k.task_id = i
    w.tasks = tasks
    return w


def run_time(task, agent):
    """Seconds the agent takes: the task's actual size over the agent's speed."""
    return task.actual / agent.speed


def may_take(agent, task):
    return set(task.requires) <= set(agent.capabilities) and task.sensitivity <= agent.clearance
