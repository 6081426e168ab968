"""Parity of the served policy with ``evaluate``, through a real server, by the documented
calling schedule.

An integrator written from docs/service.md ("The exact calling schedule") operates each
held-out day: its world is the day's simulator (the drivers set off, pick up and drop off
as planned; bookings become known and their windows close), and it calls ``POST /rl/round``
exactly when that text says: at the start of the day, then at the next of these moments, at
least one minute after the last round (at once after an answer that could not be carried
out):

- a booking becomes known;
- an open booking's window opens within 90 minutes;
- an open booking's window closes (its last chance);
- while a booking is open: a driver becomes free (its last planned drop-off is done) or a
  driver's shift starts.

Each answer's assignments are carried out in order (the first one that no longer can be
stops the rest, and a round follows at once; when that one's answer cannot be carried out
either, the bookings stay open until the schedule's next moment). The integrator never
looks at the env; it reads only what it sent and what it got back. Beside it, ``evaluate``'s
own play of the day (the in-process policy on :class:`DispatchEnv`) is recorded decision by
decision: each assignment as (minute, booking, driver), each wait as (minute, wait). The
bench reports the decisions that differ and compares each day's figures.

``--city other`` plays the held-out geneva days moved to another city with its own travel
model (30 km/h, detour 1.35, no rush hours, day starting at 7:00), each request carrying the
day's ``travel`` block. ``--preset geneva-mix`` plays the held-out patient-transport days
(shared rides, places by kind, ride limits, breaks): the requests carry plans of stops,
and each answer's pickup and drop-off positions are checked against where the world put
them; ``--fallbacks`` names the heuristics served (each one a server started with
``--fallback``). Usage::

    .venv/bin/python bench/service_parity.py --days 20 --json bench/service_parity.json
    .venv/bin/python bench/service_parity.py --city other --policies pairwise --days 20
    .venv/bin/python bench/service_parity.py --preset geneva-mix --policies heuristic \
        --fallbacks insertion,matching,nearest --days 20 --json bench/service_parity_mix.json
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from serve_latency import write_prototype_model
from serve_process import ADMIN_TOKEN, READ_TOKEN, ServeProcess

from rldispatch.agents.model_files import load_learned_model
from rldispatch.agents.pairwise.model_file import save_untrained_model
from rldispatch.domain import Scenario, TravelConfig
from rldispatch.env import DispatchEnv, EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.base import Policy
from rldispatch.policies.baselines import make_baseline
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, make_preset
from rldispatch.service.decisions.replay import state_body
from rldispatch.sim.simulator import CANCELLED, OPEN, UNRELEASED, DaySimulator
from rldispatch.sim.stop_simulator import StopDaySimulator, day_simulator
from rldispatch.sim.validator import check_played_day

VISIBLE_AHEAD_MIN = 90.0
"""A booking can be given once its window opens within this many minutes (docs)."""
MIN_STEP_MIN = 1.0
"""The least time between two rounds (docs), except after an answer not carried out."""
OTHER_CITY_TRAVEL = TravelConfig(
    speed_kmh=30.0, detour=1.35, start_hour=7.0, hourly_speed_factor=(1.0,) * 24
)
OTHER_CITY_SHIFT_DEG = (0.32, 0.49)
"""Geneva's days moved to about Lausanne (lat, lon degrees)."""


def other_city(day: Scenario) -> Scenario:
    """``day`` moved to another city with :data:`OTHER_CITY_TRAVEL`."""
    dlat, dlon = OTHER_CITY_SHIFT_DEG

    def moved(point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] + dlat, point[1] + dlon)

    return replace(
        day,
        name=f"other-{day.name}",
        travel=OTHER_CITY_TRAVEL,
        drivers=tuple(replace(d, start=moved(d.start)) for d in day.drivers),
        bookings=tuple(
            replace(b, pickup=moved(b.pickup), dropoff=moved(b.dropoff)) for b in day.bookings
        ),
    )


class Server(ServeProcess):
    """``rldispatch serve`` (of ``model``, when given) in a process of its own, with a
    client."""

    def __init__(self, data_dir: Path, model: Path | None, fallback: str = "insertion") -> None:
        options = ["--fallback", fallback]
        if model is not None:
            options += ["--model", str(model)]
        super().__init__(data_dir, *options)
        self.client = httpx.Client(base_url=self.url, timeout=120.0)

    def request(self, method: str, path: str, body: Any = None, token: str = READ_TOKEN) -> Any:
        response = self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
        return response.json()

    def stop(self) -> float:
        self.client.close()
        return super().stop()


# --- the integrator, as docs/service.md tells it ---------------------------------------------


def next_round_min(world: DaySimulator, last_round_min: float) -> tuple[float, str]:
    """The moment of the next round by the documented schedule and the event that sets it
    (inf: the day is over)."""
    now = world.now_min
    is_open = world.status == OPEN
    opens_within = world.earliest_min[is_open] - VISIBLE_AHEAD_MIN
    moments = {
        "a booking becomes known": world.release_min[world.status == UNRELEASED],
        "a window closes": world.latest_min[is_open],
        "a window opens within 90 min": opens_within[opens_within > now],
    }
    if is_open.any():
        free = world.driver_free_min()
        starts = world.shift_start_min
        moments["a driver becomes free"] = free[free > now]
        moments["a shift starts"] = starts[starts > now]
    firsts = {event: float(m.min()) for event, m in moments.items() if m.size}
    if not firsts:
        return math.inf, "the day is over"
    event = min(firsts, key=firsts.__getitem__)
    if firsts[event] < last_round_min + MIN_STEP_MIN:
        clamped = f"{event} at minute {firsts[event]:.2f} (the one-minute step)"
        return last_round_min + MIN_STEP_MIN, clamped
    return firsts[event], event


@dataclass
class Operated:
    """A day operated through the service: its decisions and figures."""

    decisions: list[tuple] = field(default_factory=list)
    rounds: int = 0
    not_carried_out: int = 0
    plan_index_mismatches: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    check: dict[str, int] = field(default_factory=dict)
    """The simulator's validator on the operated day: places of the wrong kind or too few,
    rides over their limit, breaks missed, and every problem it found."""


def operate_day(
    server: Server, day: Scenario, config: EnvConfig, with_travel: bool, trace: int = 0
) -> Operated:
    """Operate ``day`` through ``POST /rl/round`` by the documented schedule."""
    world = day_simulator(day, lookahead_min=config.lookahead_min)
    stops = isinstance(world, StopDaySimulator)
    start_min = day.travel.start_hour * 60.0
    ids = {b.id: k for k, b in enumerate(day.bookings)}
    drivers = {d.id: k for k, d in enumerate(day.drivers)}
    result = Operated()
    assigned = waits = 0
    last_round = -math.inf
    at, why = 0.0, "the day starts"
    retried = False
    while math.isfinite(at):
        world.advance_to(at)
        if world.done:
            break
        body = state_body(world, start_min, with_travel=with_travel)
        answer = server.request("POST", "/rl/round", body)
        result.rounds += 1
        result.sources[answer["source"]] = result.sources.get(answer["source"], 0) + 1
        last_round = world.now_min
        if result.rounds <= trace:
            print(trace_line(world, body, answer, start_min, why))
        carried_all = True
        for step in answer["assignments"]:
            booking, driver = ids[step["booking_id"]], drivers[step["driver_id"]]
            table = world.best_insertions(np.array([booking]))
            if world.status[booking] != OPEN or not table.feasible[driver, 0]:
                result.not_carried_out += 1
                carried_all = False
                break  # the rest was planned on top of it: ask again at once
            done = world.assign(driver, booking)
            if stops:
                where = (done.position, done.dropoff_position)
            else:
                where = (2 * done.position, 2 * done.position + 1)
            result.plan_index_mismatches += (
                step["plan_index"],
                step["dropoff_plan_index"],
            ) != where
            result.decisions.append((world.now_min, step["booking_id"], step["driver_id"]))
            assigned += 1
        if answer["ended"] == "wait" and carried_all:
            result.decisions.append((world.now_min, "wait"))
            waits += 1
        if carried_all or retried:
            # Twice in a row not carried out: the service sees the day otherwise (another
            # travel model?): the bookings stay open until the schedule's next moment.
            at, why = next_round_min(world, last_round)
            retried = False
        else:
            at, why = world.now_min, "an answer could not be carried out"
            retried = True
    world.finish()
    cancelled = int((world.status == CANCELLED).sum())
    reward = config.reward.day_reward(
        assigned, world.late_pickups, cancelled, world.distance_km, world.rides, waits
    )
    result.figures = world.metrics(reward, assigned + waits).as_dict()
    check = check_played_day(world)
    result.check = {
        "wrong_place": check.wrong_place,
        "over_ride_limit": check.max_ride_violations,
        "missed_breaks": check.missed_breaks,
        "problems": len(check.problems),
    }
    return result


def trace_line(world: DaySimulator, body: dict, answer: dict, start_min: float, why: str) -> str:
    clock = start_min + world.now_min
    given = ", ".join(f"{a['booking_id']}->{a['driver_id']}" for a in answer["assignments"])
    return (
        f"| {int(clock // 60):02d}:{clock % 60:05.2f} | {world.now_min:.2f} | {why} | "
        f"{len(body['open_bookings'])} | {given or '-'} | {answer['ended']} |"
    )


# --- evaluate's own decisions -----------------------------------------------------------------


def evaluate_day(policy: Policy, day: Scenario, config: EnvConfig) -> tuple[list, dict]:
    """``evaluate``'s play of ``day``: its decisions and figures."""
    env = DispatchEnv(preset=None, scenario=day, config=config)
    _, info = env.reset(options={"scenario": day})
    decisions: list[tuple] = []
    terminated = "metrics" in info  # a day with nothing anyone could serve is over at once
    while not terminated:
        action = int(policy.act(env))
        now = env.sim.now_min
        if action == 0:
            decisions.append((now, "wait"))
        else:
            driver, slot = divmod(action - 1, env.config.visible_slots)
            booking = int(env.visible[slot])
            decisions.append((now, day.bookings[booking].id, day.drivers[driver].id))
        _, _, terminated, _, _ = env.step(action)
    return decisions, env.metrics().as_dict()


def differing(first: list, second: list) -> int:
    """Decisions that differ position by position (and those one list has beyond the other)."""
    return sum(a != b for a, b in zip(first, second, strict=False)) + abs(len(first) - len(second))


def same_figures(a: dict, b: dict) -> bool:
    return all(math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-6) for key in a if key in b)


def parity(
    name: str,
    server: Server,
    policy: Policy,
    config: EnvConfig,
    days: list[Scenario],
    rl: bool,
    with_travel: bool,
    trace: int,
) -> dict[str, Any]:
    if rl:
        server.request("POST", "/rl/toggle", {"enabled": True, "ab_ratio": 1.0}, ADMIN_TOKEN)
    started = time.perf_counter()
    decisions = differ = rounds = not_carried = mismatched = same_days = 0
    sources: dict[str, int] = {}
    checks: dict[str, int] = {}
    occupancy = shared = 0.0
    served_reward = evaluated_reward = 0.0
    for index, day in enumerate(days):
        operated = operate_day(server, day, config, with_travel, trace if index == 0 else 0)
        expected, figures = evaluate_day(policy, day, config)
        decisions += len(expected)
        differ += differing(operated.decisions, expected)
        rounds += operated.rounds
        not_carried += operated.not_carried_out
        mismatched += operated.plan_index_mismatches
        same_days += same_figures(operated.figures, figures)
        served_reward += operated.figures["reward"]
        evaluated_reward += figures["reward"]
        occupancy += operated.figures.get("occupancy", 0.0)
        shared += operated.figures.get("shared_ride_share", 0.0)
        for key, count in operated.check.items():
            checks[key] = checks.get(key, 0) + count
        for source, count in operated.sources.items():
            sources[source] = sources.get(source, 0) + count
    elapsed = time.perf_counter() - started
    status = server.request("GET", "/rl/status")
    result = {
        "days": len(days),
        "decisions": decisions,
        "differing_decisions": differ,
        "rounds": rounds,
        "answers_not_carried_out": not_carried,
        "plan_index_mismatches": mismatched,
        "days_with_identical_metrics": same_days,
        "reward_per_day_served": served_reward / len(days),
        "reward_per_day_evaluate": evaluated_reward / len(days),
        "round_sources": sources,
        "travel_requests": status.get("travel", {}).get("requests"),
        "occupancy_served": occupancy / len(days),
        "shared_ride_share_served": shared / len(days),
        "validator_served": checks,
        "replay_s": elapsed,
    }
    print(
        f"{name:9s}: {decisions} decisions in {rounds} rounds, {differ} differing, "
        f"{mismatched} plan positions differing; identical day metrics on "
        f"{same_days}/{len(days)} days; reward/day served "
        f"{result['reward_per_day_served']:.1f} vs evaluate "
        f"{result['reward_per_day_evaluate']:.1f}; validator {checks} ({elapsed:.0f} s)"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--city", choices=["geneva", "other"], default="geneva")
    parser.add_argument(
        "--preset",
        choices=["geneva", "geneva-mix"],
        default="geneva",
        help="the held-out days played (geneva-mix: shared rides, places by kind, breaks)",
    )
    parser.add_argument(
        "--fallbacks",
        default="insertion",
        help="the heuristic run: the fallbacks served, comma separated (default insertion)",
    )
    parser.add_argument(
        "--policies", default="pairwise,flat,heuristic", help="comma separated (default all)"
    )
    parser.add_argument("--pairwise-model", type=Path)
    parser.add_argument("--flat-model", type=Path)
    parser.add_argument(
        "--without-travel",
        action="store_true",
        help="--city other: leave the travel block out of the requests (the service then "
        "plays its own travel model: what a client that does not send it gets)",
    )
    parser.add_argument("--trace", type=int, default=0, help="print the first N rounds of day 1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    days = [make_preset(args.preset, HELD_OUT_SEEDS.start + k) for k in range(args.days)]
    with_travel = args.city == "other" and not args.without_travel
    if args.city == "other":
        days = [other_city(day) for day in days]
    report: dict[str, Any] = {
        "preset": args.preset,
        "city": args.city,
        "travel": asdict(days[0].travel),
        "seeds": [HELD_OUT_SEEDS.start, args.days],
        "requests_carry_travel": with_travel,
    }
    wanted = args.policies.split(",")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        runs = []
        if "pairwise" in wanted:
            pairwise = args.pairwise_model or save_untrained_model(root / "pairwise.safetensors")
            runs.append(("pairwise", pairwise))
        if "flat" in wanted:
            runs.append(
                (
                    "flat",
                    args.flat_model
                    or write_prototype_model(root / "flat.safetensors", (64, 64), None),
                )
            )
        if "heuristic" in wanted:
            for fallback in args.fallbacks.split(","):
                runs.append(
                    ("heuristic" if fallback == "insertion" else f"heuristic-{fallback}", None)
                )
        for name, model in runs:
            fallback = (
                name.removeprefix("heuristic-") if name.startswith("heuristic-") else "insertion"
            )
            server = Server(root / name, model, fallback)
            try:
                if model is None:
                    policy = make_baseline(fallback)
                    config = EnvConfig(max_drivers=max(len(d.drivers) for d in days))
                else:
                    learned = load_learned_model(model)
                    policy, config = learned.policy, learned.env_config_for(days)
                report[name] = parity(
                    name, server, policy, config, days, model is not None, with_travel, args.trace
                )
                report[name]["model"] = None if model is None else str(model)
            finally:
                server.stop()
    report["load_average"] = os.getloadavg()
    if args.json:
        atomic_write_json(args.json, report)
    failed = any(
        report[name]["differing_decisions"]
        or report[name]["plan_index_mismatches"]
        or report[name]["days_with_identical_metrics"] != args.days
        for name, _ in runs
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
