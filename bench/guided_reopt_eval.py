"""``guided-reopt`` against ``reopt``: training within a time box, then paired evaluation on
held-out geneva days and on overloaded days of a city no policy trained on.

    .venv/bin/python bench/guided_reopt_eval.py train --minutes 25 --jobs 2 \
        --out runs/guided_reopt
    .venv/bin/python bench/guided_reopt_eval.py eval \
        --model runs/guided_reopt/best_model.safetensors \
        --geneva-days 12 --lausanne-days 20 --jobs 2 --json runs/guided_reopt_eval.json

``train`` trains on geneva-style days of 5 to 10 drivers (the held-out size 7 left
out) with demand 0.8 to 1.6 times the preset's, so overloaded days (where not every booking
can be served) are in the training distribution; the model is selected on 4 tuning days.
``eval`` plays, on the same days, ``reopt``, the model with all its learned terms, and the
ablations (only the prizes, only the end values: the same network with the other head
switched off). ``reopt`` is also the untrained model (a zero network gives its decisions,
tested). The days: ``held_out_days`` (geneva, fleets 7, 13 and 24 in turn, ``HELD_OUT_SEEDS``)
and ``lausanne`` preset days (12 drivers, overloaded, from ``HELD_OUT_SEEDS``). It prints each
policy's mean reward, completion, the paired difference to ``reopt`` with its 95% CI (and
that of the service part of the reward alone: served, late, cancelled, km, without the
idle-wait penalty and the balance bonus), and decision times (p50, p99) against ``reopt``'s.
``--policies`` also takes ``reopt within T`` and ``reopt within T overloaded`` (``reopt``
holding planned bookings back until their pickup is T minutes ahead; with ``overloaded`` only
while its plan leaves a known booking out), and with ``--pairwise-model`` ``pairwise`` and
``lookahead N`` (that network with the lookahead expert on its N best pairs), and
``guided-reopt insertion`` and ``guided-reopt replan`` (the model with its taken bookings'
driver chosen by cheapest insertion or by a re-plan with the booking forced in), and
``guided-reopt+lookahead N`` (the model's own action against the known reward's N best
assignments, each played on: ``evaluate --lookahead N`` of a guided-reopt model), and
``guided-reopt+lookahead N ms B`` (the same within a wall-clock budget of B ms a decision,
its re-plan included, as ``serve --lookahead N --lookahead-budget-ms B`` plays it).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
from report_file import append_row, read_rows

from rldispatch.agents.guided_reopt.config import GuidedReoptConfig
from rldispatch.agents.guided_reopt.lookahead import GuidedLookaheadPolicy
from rldispatch.agents.guided_reopt.policy import TAKE_DRIVERS, GuidedReoptPolicy
from rldispatch.agents.kinds import agent_kind
from rldispatch.agents.model_files import load_learned_model
from rldispatch.cli.evaluate import lookahead_policy
from rldispatch.domain import Scenario
from rldispatch.env import EnvConfig
from rldispatch.files import atomic_write_json
from rldispatch.policies.baselines import make_baseline
from rldispatch.policies.reopt import ReoptPolicy
from rldispatch.reports.stats import mean_ci, paired_difference
from rldispatch.rewards import RewardConfig
from rldispatch.scenarios.fleet_days import FleetDayDistribution, held_out_days
from rldispatch.scenarios.presets import HELD_OUT_SEEDS, TUNING_SEEDS, make_lausanne
from rldispatch.training.days import FleetDays
from rldispatch.training.evaluation import PlayedDay, evaluate_policies
from rldispatch.training.threads import single_threaded_numerics
from rldispatch.training.train import RunSettings, train

TRAINING_FLEETS = (5, 6, 8, 9, 10)
TRAINING_DEMAND = (0.8, 1.6)
ES_DEMAND = (0.8, 2.5)


def _demand(text: str | None, default: tuple[float, float]) -> tuple[float, float]:
    if not text:
        return default
    low, high = (float(v) for v in text.split(","))
    return low, high


def run_training(args: argparse.Namespace) -> None:
    if args.trainer == "es":
        config = GuidedReoptConfig(
            terms="gate",
            trainer="es",
            es_jobs=args.jobs,
            es_pairs=args.es_pairs,
            es_batch_days=args.es_batch_days,
            es_sigma=args.es_sigma,
            es_step=args.es_step,
            es_features=args.es_features,
        )
        demand = _demand(args.demand, ES_DEMAND)
    else:
        config = GuidedReoptConfig(
            terms=args.terms,
            label_every=args.label_every,
            label_jobs=args.jobs,
            label_cache=str(Path(args.out).parent / "guided_reopt_labels"),
        )
        demand = _demand(args.demand, TRAINING_DEMAND)
    distribution = FleetDayDistribution(fleet_sizes=TRAINING_FLEETS, demand_factors=demand)
    settings = RunSettings(
        max_seconds=args.minutes * 60.0,
        eval_every_days=args.eval_every,
        checkpoint_every_days=args.checkpoint_every,
    )
    result = train(
        "guided-reopt",
        config,
        args.out,
        FleetDays(distribution, selection=args.selection_days),
        settings,
        progress=False,
        resume=args.resume,
    )
    print(result.summary())


def run_selection(args: argparse.Namespace) -> None:
    """``reopt`` and each model on the same tuning-seed days (never held-out ones), paired."""
    demand = _demand(args.demand, ES_DEMAND)
    distribution = FleetDayDistribution(fleet_sizes=TRAINING_FLEETS, demand_factors=demand)
    days = distribution.days(args.first_day, args.days, TUNING_SEEDS)
    policies = {"reopt": make_baseline("reopt")}
    for path in args.models.split(","):
        policies[path] = agent_kind("guided-reopt").load_model(path, name=path).policy
    env_config = EnvConfig(max_drivers=max(len(day.drivers) for day in days))
    results = evaluate_policies(policies, days, env_config, jobs=args.jobs)
    report = _report([day.name for day in days], results)
    _print(f"tuning days {args.first_day}..{args.first_day + args.days - 1}", report)
    if args.json:
        atomic_write_json(args.json, report)


def _ablation(policy: GuidedReoptPolicy, terms: tuple[str, ...], name: str) -> GuidedReoptPolicy:
    network = copy.deepcopy(policy.network)
    network.terms = terms
    return GuidedReoptPolicy(network, name=name, horizon_min=policy.horizon_min)


def _take_driver(policy: GuidedReoptPolicy, take_driver: str, name: str) -> GuidedReoptPolicy:
    """The same model with its taken bookings' driver chosen by ``take_driver``."""
    return GuidedReoptPolicy(
        policy.network,
        name=name,
        horizon_min=policy.horizon_min,
        floor_min=policy.floor_min,
        take_driver=take_driver,
    )


def _times(days: list) -> dict[str, float]:
    values = np.asarray([t for day in days for t in day.decision_ms])
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
    }


def _service(day: PlayedDay) -> float:
    """The day's reward from service alone: bookings served, late pickups, cancellations and
    km, without the idle-wait penalty and the workload-balance bonus."""
    weights = RewardConfig()
    late = round(day.late_pickup_rate * day.served)
    return (
        weights.assignment_bonus * day.served
        - weights.late_pickup_penalty * late
        - weights.cancellation_penalty * day.cancelled
        - weights.km_cost * day.distance_km
    )


def _report(days: list[str], results: dict, base: str = "reopt") -> dict:
    """Each policy's figures on ``days`` and its paired difference to ``base`` (under
    ``vs_reopt``, whatever ``base`` is)."""
    report = {"days": list(days), "against": base, "policies": {}, "vs_reopt": {}}
    for name, played in results.items():
        report["policies"][name] = {
            "reward": mean_ci([d.reward for d in played]),
            "completion_rate": float(np.mean([d.completion_rate for d in played])),
            "late_pickup_rate": float(np.mean([d.late_pickup_rate for d in played])),
            "decision_ms": _times(played),
            "per_day_reward": [d.reward for d in played],
        }
        if name != base and base in results:
            report["vs_reopt"][name] = paired_difference(
                [d.reward for d in played], [d.reward for d in results[base]]
            )
            report["vs_reopt"][name]["service"] = paired_difference(
                [_service(d) for d in played], [_service(d) for d in results[base]]
            )
    return report


def _print(label: str, report: dict) -> None:
    print(f"\n{label}: {len(report['days'])} days")
    for name, part in report["policies"].items():
        pair = report["vs_reopt"].get(name)
        diff = ""
        if pair is not None:
            low, high = pair["ci95"]
            diff = (
                f", - {report.get('against', 'reopt')} {pair['reward_diff_mean']:+.1f} "
                f"(95% CI {low:+.1f} to {high:+.1f})"
            )
            service = pair["service"]
            low, high = service["ci95"]
            diff += (
                f" [service only {service['reward_diff_mean']:+.1f} ({low:+.1f} to {high:+.1f})]"
            )
        ms = part["decision_ms"]
        print(
            f"  {name:>16}: reward {part['reward']['mean']:.1f}, completion "
            f"{part['completion_rate']:.1%}, late {part['late_pickup_rate']:.1%}{diff}; "
            f"decision p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms",
            flush=True,
        )


def _interleaved(
    geneva: int, lausanne: int, geneva_from: int = 0, lausanne_from: int = 0
) -> list[tuple[str, Scenario]]:
    """The evaluation days, the two sets interleaved (so a run cut short has both)."""
    sets = [
        [("geneva", day) for day in held_out_days(geneva, start=geneva_from)],
        [
            ("lausanne", make_lausanne(HELD_OUT_SEEDS[k]))
            for k in range(lausanne_from, lausanne_from + lausanne)
        ],
    ]
    days = []
    for k in range(max(len(part) for part in sets)):
        days += [part[k] for part in sets if k < len(part)]
    return days


def run_evaluation(args: argparse.Namespace) -> None:
    """Each day played by every policy in turn, in this process, one line of ``--log`` per
    day (a run stopped early keeps its days; a rerun skips the days already in the log)."""
    single_threaded_numerics(1)
    names = args.policies.split(",")
    policies = {}
    if "reopt" in names:
        policies["reopt"] = make_baseline("reopt")
    for name in names:
        if name.startswith("reopt within "):
            minutes, *overloaded = name.removeprefix("reopt within ").split(" ")
            policies[name] = ReoptPolicy(
                commit_within_min=float(minutes),
                hold_only_if_overloaded=bool(overloaded),
                overload_left_out=int(overloaded[1]) if len(overloaded) > 1 else 1,
            )
    env_configs = {}
    if args.pairwise_model:
        pairwise = load_learned_model(args.pairwise_model)
        if "pairwise" in names:
            policies["pairwise"] = pairwise.policy
            env_configs["pairwise"] = pairwise
        for name in names:
            if name.startswith("lookahead "):
                policies[name] = lookahead_policy(pairwise, int(name.removeprefix("lookahead ")))
                env_configs[name] = pairwise
    missing = [name for name in names if name not in policies and not args.model]
    if missing:
        raise SystemExit(
            f"--policies: {', '.join(missing)} need --model (guided-reopt) or --pairwise-model"
        )
    if args.model:
        guided = agent_kind("guided-reopt").load_model(args.model).policy
        if "guided-reopt" in names:
            policies["guided-reopt"] = guided
        for term in ("prize", "value"):
            if f"{term} only" in names:
                policies[f"{term} only"] = _ablation(guided, (term,), f"{term} only")
        for take_driver in TAKE_DRIVERS:
            name = f"guided-reopt {take_driver}"
            if name in names:
                policies[name] = _take_driver(guided, take_driver, name)
        for name in names:
            if name.startswith("guided-reopt+lookahead "):
                candidates, *budget = name.removeprefix("guided-reopt+lookahead ").split(" ms ")
                budget_s = float(budget[0]) / 1e3 if budget else None
                policies[name] = GuidedLookaheadPolicy(
                    guided, int(candidates), name=name, time_budget_s=budget_s
                )
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    done = {(row["day"], row["policy"]) for row in read_rows(log)}
    started = time.perf_counter()
    for label, day in _interleaved(
        args.geneva_days, args.lausanne_days, args.geneva_from, args.lausanne_from
    ):
        for name, policy in policies.items():
            if (day.name, name) in done:
                continue
            model = env_configs.get(name)
            if model is None:
                env_config = EnvConfig(max_drivers=len(day.drivers))
            else:
                env_config = model.env_config_for([day])
            played = evaluate_policies({name: policy}, [day], env_config)[name][0]
            row = {"set": label, "day": day.name, "policy": name, **played.as_dict()}
            row["decision_ms"] = list(played.decision_ms)
            row["routes"] = [list(route) for route in played.routes]
            append_row(log, row)
            print(
                f"{label} {day.name} {name}: {played.reward:.1f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )


def run_summary(args: argparse.Namespace) -> None:
    """Each policy against ``--against`` (``reopt``) on the days both played (paired)."""
    logs = args.log or ["runs/guided_reopt_eval.jsonl"]
    rows = [row for log in logs for row in read_rows(Path(log))]
    report = {"log": logs, "sets": {}}
    for label in ("geneva", "lausanne"):
        by_policy: dict[str, dict[str, PlayedDay]] = {}
        for row in rows:
            if row["set"] != label:
                continue
            fields = {k: v for k, v in row.items() if k not in ("set", "day", "policy")}
            fields["decision_ms"] = tuple(fields["decision_ms"])
            fields["routes"] = tuple(tuple(route) for route in fields.get("routes", ()))
            by_policy.setdefault(row["policy"], {})[row["day"]] = PlayedDay(**fields)
        base = args.against
        if base not in by_policy:
            continue
        report["sets"][label] = {}
        for name, days in by_policy.items():
            if name == base:
                continue
            common = sorted(set(days) & set(by_policy[base]))
            if len(common) < 2:
                continue
            results = {
                base: [by_policy[base][d] for d in common],
                name: [days[d] for d in common],
            }
            part = _report(common, results, base)
            report["sets"][label][name] = part
            _print(f"{label}, {name}", part)
    if args.json:
        atomic_write_json(args.json, report)
        print(f"report written to {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    training = verbs.add_parser("train")
    training.add_argument("--minutes", type=float, default=25.0)
    training.add_argument("--out", default="runs/guided_reopt")
    training.add_argument("--jobs", type=int, default=2)
    training.add_argument("--terms", default="prize,value")
    training.add_argument("--eval-every", type=int, default=10)
    training.add_argument("--label-every", type=int, default=8)
    training.add_argument("--selection-days", type=int, default=4)
    training.add_argument("--checkpoint-every", type=int, default=5)
    training.add_argument("--trainer", choices=("dagger", "es"), default="dagger")
    training.add_argument("--demand", help="low,high demand factors of the training days")
    training.add_argument("--es-pairs", type=int, default=2)
    training.add_argument("--es-batch-days", type=int, default=1)
    training.add_argument("--es-sigma", type=float, default=0.8)
    training.add_argument("--es-step", type=float, default=0.25)
    training.add_argument("--es-features", default="", help="features the search moves")
    training.add_argument("--resume", action="store_true")
    training.set_defaults(handler=run_training)
    selection = verbs.add_parser("select")
    selection.add_argument("--models", required=True, help="comma-separated model files")
    selection.add_argument("--days", type=int, default=12)
    selection.add_argument("--first-day", type=int, default=0)
    selection.add_argument("--demand", help="low,high demand factors of the tuning days")
    selection.add_argument("--jobs", type=int, default=2)
    selection.add_argument("--json")
    selection.set_defaults(handler=run_selection)
    evaluation = verbs.add_parser("eval")
    evaluation.add_argument("--model", help="the guided-reopt model file")
    evaluation.add_argument(
        "--policies",
        default="reopt,guided-reopt,prize only,value only",
        help="comma-separated: reopt, guided-reopt, 'prize only', 'value only', 'guided-reopt "
        "insertion' and 'guided-reopt replan' (the model with its taken bookings' driver chosen "
        "so, whatever its file says), 'reopt within T' (reopt committing a planned booking "
        "only once its pickup is T minutes ahead), "
        "'reopt within T overloaded [n]' (holding back only while its plan leaves n bookings, "
        "default 1, out), 'pairwise' and 'lookahead N' (the --pairwise-model's network, "
        "alone and with the lookahead expert on its N best pairs, as evaluate --lookahead N)",
    )
    evaluation.add_argument("--pairwise-model", help="the pairwise model file")
    evaluation.add_argument("--geneva-days", type=int, default=12)
    evaluation.add_argument(
        "--geneva-from",
        type=int,
        default=0,
        help="first geneva day (--geneva-days are played from it; days keep their names, so "
        "runs of parts of the set pair by day)",
    )
    evaluation.add_argument("--lausanne-days", type=int, default=20)
    evaluation.add_argument(
        "--lausanne-from", type=int, default=0, help="first lausanne day (as --geneva-from)"
    )
    evaluation.add_argument("--log", default="runs/guided_reopt_eval.jsonl")
    evaluation.set_defaults(handler=run_evaluation)
    summary = verbs.add_parser("summary")
    summary.add_argument(
        "--log",
        action="append",
        help="a per-day log (default runs/guided_reopt_eval.jsonl); may be repeated, the rows "
        "of every log are paired by day",
    )
    summary.add_argument("--json", default="runs/guided_reopt_eval.json")
    summary.add_argument(
        "--against", default="reopt", help="the policy every other is paired with (reopt)"
    )
    summary.set_defaults(handler=run_summary)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
