"""``rldispatch promote``: gate a challenger model against the champion, record and hand over.

Both models play the latest ``--holdout`` dates of a folder of scenario days (paired: the
same days, each model in its own env shape, both scored with the champion's reward weights).
The challenger is promoted only when the 95% confidence interval of the paired reward
difference (challenger − champion) lies wholly above ``--margin``; otherwise it is refused
(exit code 1) with the figures. Every decision, refusals included, is recorded in the model
registry of the service's database (:mod:`rldispatch.service.models.registry`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rldispatch.cli import VERBS, CliError
from rldispatch.cli.common import (
    Days,
    RewardChoice,
    add_jobs_argument,
    add_reward_argument,
    add_road_network_argument,
    add_uncertainty_arguments,
    choose_reward,
    env_config_for,
    finite_float,
    on_road_network,
    positive_int,
    road_network_from_args,
    say_road_network_differences,
    uncertainty_from_args,
    uncertainty_report,
)
from rldispatch.env import EnvConfig
from rldispatch.policies.base import Policy
from rldispatch.rewards_file import reward_to_dict
from rldispatch.sim.noise import Uncertainty

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from rldispatch.service.client import ServiceClient

EXIT_REFUSED = 1
DEFAULT_HOLDOUT = 5

EXAMPLES = """examples:
  # the challenger against the model a running service serves, on the last 7 days;
  # promoted, the service swaps its champion at once (no restart)
  rldispatch promote --challenger models/new.safetensors --days days/ --holdout 7 \\
      --service http://127.0.0.1:8000 --token "$ADMIN_TOKEN"

  # against a model file, promoted only if it gains more than 50 reward per day
  rldispatch promote --challenger new.safetensors --champion old.safetensors \\
      --days days/ --margin 50 --json decision.json

  # promoted, serve it beside the champion for 20% of the rl arm (A/B by model version)
  rldispatch promote --challenger new.safetensors --days days/ \\
      --service http://127.0.0.1:8000 --as-challenger 0.2

exit codes: 0 promoted, 1 refused (the figures say why), 2 bad input.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "promote",
        help=VERBS["promote"],
        description=(
            "Play a challenger model and the champion on the latest held-out days of a folder "
            "of scenario days (paired) and promote the challenger only when the 95% CI of "
            "the reward difference (challenger - champion) lies above --margin. The champion "
            "is --champion (a model file, or a baseline name), --champion-version (from the "
            "registry), or what --service serves (its fallback heuristic when it serves no "
            "model), else the registry's latest champion. Every decision is recorded in the "
            "model registry (table rl_model_registry of the service's database)."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--challenger", type=Path, required=True, help="the new model file (.safetensors)"
    )
    champion = parser.add_mutually_exclusive_group()
    champion.add_argument(
        "--champion",
        help="the champion: a model file, or a baseline's name (e.g. insertion)",
    )
    champion.add_argument(
        "--champion-version", help="the champion: a version promoted before (from the registry)"
    )
    parser.add_argument(
        "--days", type=Path, required=True, help="folder of scenario files named by date"
    )
    parser.add_argument(
        "--holdout",
        type=positive_int,
        default=DEFAULT_HOLDOUT,
        help=f"play the last N dates of the folder, by file name (default {DEFAULT_HOLDOUT}; "
        "no confidence interval below 5 days, so fewer are always refused)",
    )
    parser.add_argument(
        "--margin",
        type=finite_float,
        default=0.0,
        help="reward per day the CI's lower end must exceed (default 0)",
    )
    parser.add_argument(
        "--service",
        help="URL of a running service: its champion is the default champion, and a promoted "
        "model is handed to it (PUT /rl/models/champion or /challenger)",
    )
    parser.add_argument(
        "--token",
        help="the service's admin token (env RLDISPATCH_ADMIN_TOKENS, else the local admin "
        "token in the data folder)",
    )
    parser.add_argument(
        "--as-challenger",
        type=_ratio,
        metavar="RATIO",
        help="promote as a challenger answering this share of the rl arm, beside the champion",
    )
    parser.add_argument(
        "--write-switch-row",
        action="store_true",
        help="without --service: write the promoted model to the switch row in the database; "
        "every service on it loads the file within a second (if it lies in its --models-dir)",
    )
    parser.add_argument(
        "--database-url",
        help="registry database (env RLDISPATCH_DATABASE_URL; default the SQLite file of serve)",
    )
    parser.add_argument("--data-dir", help="data folder, as serve's (env RLDISPATCH_DATA_DIR)")
    parser.add_argument("--by", help="who promotes, in the registry (default: the OS user)")
    add_reward_argument(parser)
    add_road_network_argument(parser)
    add_uncertainty_arguments(parser)
    add_jobs_argument(parser)
    parser.add_argument("--json", help="write the decision report here ('-': print it)")
    parser.set_defaults(handler=run)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


@dataclass(frozen=True)
class Contender:
    """A model (or a baseline) in the match: its policy, version and file."""

    role: str
    policy: Policy
    version: str
    kind: str
    path: Path | None = None
    env_config: EnvConfig | None = None
    training_summary: dict[str, Any] | None = None
    sha256: str | None = None

    def play_config(self, days: Sequence[Any], reward_of: Contender) -> EnvConfig:
        """Its env shape for ``days``, scored with ``reward_of``'s reward weights."""
        from rldispatch.agents.kinds import agent_kind

        if self.env_config is None:
            own = env_config_for(list(days))
        else:
            own = agent_kind(self.kind).play_env_config(self.env_config, days)
        yardstick = reward_of.env_config or own
        return replace(own, reward=yardstick.reward)

    @property
    def road_network(self) -> str | None:
        """The road network file it was trained on (None: the travel formula)."""
        from rldispatch.agents.serving import trained_road_network

        return trained_road_network(self.training_summary)

    def info(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class HeldOutDays:
    days: Days
    training_dates: list[str]


def held_out_days(folder: Path, holdout: int) -> HeldOutDays:
    """The files of the last ``holdout`` dates of ``folder`` (by the date ending each file
    name), loaded, and the dates before them."""
    from rldispatch.scenarios.days import day_of
    from rldispatch.scenarios.files import load_scenario, scenario_paths

    paths = scenario_paths(folder)
    dated = sorted((day_of(path), path) for path in paths)
    dates = sorted({day for day, _ in dated})
    if holdout > len(dates):
        raise CliError(
            f"--holdout {holdout}: {folder} holds only {len(dates)} dates "
            f"({dates[0]} to {dates[-1]})"
        )
    cutoff = dates[-holdout]
    chosen = [path for day, path in dated if day >= cutoff]
    days = Days(
        str(folder),
        [load_scenario(path) for path in chosen],
        [path.stem for path in chosen],
        held_out=[path.stem for path in chosen],
        folder_days=len(paths),
    )
    return HeldOutDays(days, [day.isoformat() for day in dates if day < cutoff])


def load_contender(path: Path, role: str) -> Contender:
    from rldispatch.agents.model_files import ModelFileError, load_learned_model
    from rldispatch.service.models.registry import file_sha256

    if path.suffix.lower() == ".onnx":
        raise CliError(
            f"{role}: {path} is an ONNX export; give its .safetensors model file (the ONNX "
            "file is for serving only)"
        )
    try:
        model = load_learned_model(path, name=role)
    except ModelFileError as error:
        raise CliError(f"{role}: {error}") from error
    return Contender(
        role=role,
        policy=model.policy,
        version=model.version,
        kind=model.kind,
        path=path.resolve(),
        env_config=model.env_config,
        training_summary=model.training_summary,
        sha256=file_sha256(path),
    )


def baseline_contender(name: str) -> Contender:
    from rldispatch.policies.baselines import make_baseline

    return Contender("champion", make_baseline(name), f"baseline:{name}", "baseline")


def resolve_champion(
    args: argparse.Namespace, client: ServiceClient | None, engine: Engine
) -> Contender:
    """The champion named by the options (see ``--help``)."""
    from rldispatch.policies.baselines import BASELINES
    from rldispatch.service.models.registry import current_champion, find_version

    if args.champion:
        if args.champion in BASELINES and not Path(args.champion).exists():
            return baseline_contender(args.champion)
        return load_contender(Path(args.champion), "champion")
    if args.champion_version:
        entry = find_version(engine, args.champion_version)
        if entry is None:
            raise CliError(
                f"--champion-version: {args.champion_version} was never promoted "
                "(the registry holds no champion or challenger of that version)"
            )
        return _registered(entry.path, entry.version, entry.sha256)
    if client is not None:
        models = client.models()
        served = models["champion"]
        if not served.get("loaded"):
            fallback = client.status()["fallback_policy"]
            return baseline_contender(fallback)
        path = Path(served["path"])
        if not path.is_file():
            raise CliError(
                f"champion: the service serves {path}, which is not readable here; give "
                "--champion FILE (a copy of it)"
            )
        champion = load_contender(path, "champion")
        if served.get("version") and champion.version != served["version"]:
            raise CliError(
                f"champion: {path} holds version {champion.version}, the service serves "
                f"{served['version']} (the file changed since it was loaded)"
            )
        return champion
    entry = current_champion(engine)
    if entry is None:
        raise CliError(
            "champion: give --champion FILE (or a baseline name), --champion-version or "
            "--service URL; the registry holds no champion yet"
        )
    return _registered(entry.path, entry.version, entry.sha256)


def _registered(path: str, version: str, sha256: str) -> Contender:
    if not Path(path).is_file():
        raise CliError(f"champion: the registry's file of {version}, {path}, is missing")
    champion = load_contender(Path(path), "champion")
    if champion.sha256 != sha256:
        raise CliError(
            f"champion: {path} changed since {version} was registered (its SHA-256 differs)"
        )
    return champion


def check_not_trained_on(challenger: Contender, held: HeldOutDays) -> None:
    """Refuse a challenger whose model file says it trained or was selected on a held-out
    day: the match would not be on days it never saw."""
    summary = challenger.training_summary or {}
    seen = set(summary.get("training_days") or ()) | set(summary.get("selection_days") or ())
    overlap = sorted(seen & {day.name for day in held.days.scenarios})
    if overlap:
        raise CliError(
            f"challenger: it was trained or selected on held-out days ({', '.join(overlap)}); "
            "hold out later days (--holdout) or retrain on the earlier ones"
        )


def decide(pair: dict[str, Any], margin: float) -> tuple[bool, str]:
    """Promote only when the paired CI lies above ``margin``; the reason either way."""
    ci = pair.get("ci95")
    if ci is None:
        return False, f"no confidence interval: {pair.get('reason', 'too few days')}"
    low, high = ci
    if low > margin:
        return True, f"the 95% CI [{low:.2f}, {high:.2f}] lies above the margin {margin:g}"
    return False, (
        f"the 95% CI [{low:.2f}, {high:.2f}] does not lie above the margin {margin:g} "
        "(the challenger is not shown better)"
    )


def training_days_of(challenger: Contender, held: HeldOutDays, folder: Path) -> dict[str, Any]:
    """The challenger's training days: from its model file when it records them, else the
    folder's dates before the held-out days."""
    summary = challenger.training_summary or {}
    if summary.get("training_days"):
        return {"source": "model file", "days": list(summary["training_days"])}
    return {"source": "days folder", "folder": str(folder), "days": held.training_dates}


def measure(
    challenger: Contender,
    champion: Contender,
    held: HeldOutDays,
    margin: float,
    jobs: int = 1,
    reward: RewardChoice | None = None,
    uncertainty: Uncertainty | None = None,
) -> dict[str, Any]:
    """Play both on the held-out days (paired) and decide; the decision report. Both are
    scored under ``reward`` (default: the champion's weights), on the same uncertain day
    when ``uncertainty`` is given (None: the certain day)."""
    from rldispatch.reports.report import build_report
    from rldispatch.training.evaluation import evaluate_policies

    scenarios = held.days.scenarios
    try:
        configs = {
            "challenger": challenger.play_config(scenarios, champion),
            "champion": champion.play_config(scenarios, champion),
        }
    except ValueError as error:
        raise CliError(str(error)) from error
    if reward is not None and reward.source != "model":
        configs = {name: replace(config, reward=reward.weights) for name, config in configs.items()}
    configs = {name: replace(config, uncertainty=uncertainty) for name, config in configs.items()}
    results = evaluate_policies(
        {"challenger": challenger.policy, "champion": champion.policy},
        scenarios,
        configs,
        progress=True,
        jobs=jobs,
    )
    report = build_report(
        held.days.name,
        held.days.labels,
        results,
        [("challenger", "champion")],
        extra={**held.days.report_fields(), **uncertainty_report(uncertainty)},
    )
    pair = report["paired"]["challenger_vs_champion"]
    promoted, reason = decide(pair, margin)
    return {
        "decision": "promoted" if promoted else "refused",
        "reason": reason,
        "margin": margin,
        "reward_diff_mean": pair["reward_diff_mean"],
        "ci95": pair["ci95"],
        "p_value": pair["p_value"],
        "days": len(scenarios),
        "held_out_days": held.days.labels,
        "reward_weights": "the champion's"
        if reward is None or reward.source == "model"
        else reward_to_dict(reward.weights),
        **({"reward": reward.report_fields()} if reward is not None else {}),
        **uncertainty_report(uncertainty),
        **{key: value for key, value in report.items() if key == "road_network"},
        "challenger": {
            **challenger.info(),
            "mean_reward": report["policies"]["challenger"]["reward"]["mean"],
        },
        "champion": {
            **champion.info(),
            "mean_reward": report["policies"]["champion"]["reward"]["mean"],
        },
        "evaluation": report,
    }


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from rldispatch.database_url import mask_database_url
    from rldispatch.service.client import ServiceClient, ServiceError, admin_token
    from rldispatch.service.config import ServiceConfig
    from rldispatch.service.log.store import create_store_engine
    from rldispatch.service.log.tables import ensure_schema
    from rldispatch.service.models.registry import record_decision

    # With the report on stdout (--json -), the lines for people go to stderr.
    out = sys.stderr if args.json == "-" else sys.stdout
    if args.write_switch_row and args.service:
        raise CliError("--write-switch-row: not with --service (the service swaps it itself)")
    config = ServiceConfig.from_env(database_url=args.database_url, data_dir=args.data_dir)
    url = config.resolved_database_url
    road_network = road_network_from_args(args)
    held = held_out_days(args.days, args.holdout)
    held = replace(
        held, days=replace(held.days, scenarios=on_road_network(held.days.scenarios, road_network))
    )
    challenger = load_contender(args.challenger, "challenger")
    client = None
    if args.service:
        token = admin_token(args.token, os.environ, config.data_dir)
        client = ServiceClient(args.service, token)
    engine = create_store_engine(url)
    try:
        ensure_schema(engine)  # a registry that does not answer fails before the match
        check_not_trained_on(challenger, held)
        champion = resolve_champion(args, client, engine)
        if champion.version == challenger.version:
            raise CliError(f"challenger: it is the champion already (version {challenger.version})")
        print(
            f"challenger {challenger.version} against champion {champion.version} on "
            f"{len(held.days.scenarios)} held-out days of {args.days}: "
            f"{', '.join(held.days.labels)}",
            file=out,
        )
        weights = {
            name: contender.env_config.reward
            for name, contender in (("champion", champion), ("challenger", challenger))
            if contender.env_config is not None
        }
        reward = choose_reward(args, weights, out=out)
        roads = say_road_network_differences(
            {
                name: contender.road_network
                for name, contender in (("champion", champion), ("challenger", challenger))
                if contender.env_config is not None
            },
            held.days.scenarios,
            out=out,
        )
        uncertainty = uncertainty_from_args(args)
        decision = measure(challenger, champion, held, args.margin, args.jobs, reward, uncertainty)
        if roads:
            decision["road_network_override"] = roads
        role = "challenger" if args.as_challenger is not None else "champion"
        promoted = decision["decision"] == "promoted"
        decision["role"] = role if promoted else None
        print(format_decision(decision), file=out)
        handed: dict[str, Any] | None = None
        if promoted and client is not None:
            try:
                answer = client.swap(role, challenger.path, args.as_challenger)
            except ServiceError as error:
                raise CliError(f"{error} (nothing recorded in the registry)") from error
            handed = {"service": args.service, "state_version": answer.get("state_version")}
            print(f"the service at {args.service} now serves it as the {role}", file=out)
        elif promoted and args.write_switch_row:
            handed = {"switch_row": write_switch_row(engine, challenger, role, args)}
            print(
                f"written to the switch row (version {handed['switch_row']}): services on "
                f"{mask_database_url(url)} load it within a second if it lies in their "
                "--models-dir",
                file=out,
            )
        decision["handed_to"] = handed
        status = role if promoted else "refused"
        entry = record_decision(
            engine,
            version=challenger.version,
            parent_version=champion.version,
            path=challenger.path,
            sha256=challenger.sha256 or "",
            kind=challenger.kind,
            status=status,
            training_days=training_days_of(challenger, held, args.days),
            report=_json_safe(decision),
            promoted_by=args.by or getpass.getuser(),
        )
        decision["registry"] = {"database": mask_database_url(url), **entry.summary()}
        print(f"recorded in the registry as {status} (entry {entry.id})", file=out)
    except ServiceError as error:
        raise CliError(str(error)) from error
    except SQLAlchemyError as error:
        raise CliError(
            f"database-url: {mask_database_url(url)} did not answer ({type(error).__name__})"
        ) from error
    finally:
        engine.dispose()
    if args.json == "-":
        print(json.dumps(_json_safe(decision), indent=2))
    elif args.json:
        from rldispatch.files import atomic_write_json

        atomic_write_json(args.json, _json_safe(decision))
        print(f"decision report written to {args.json}", file=out)
    return 0 if promoted else EXIT_REFUSED


def write_switch_row(
    engine: Engine, challenger: Contender, role: str, args: argparse.Namespace
) -> int:
    """Name the challenger in the switch row (compare-and-set); the row's new version."""
    from datetime import UTC, datetime

    from rldispatch.service.decisions.ab import ToggleState
    from rldispatch.service.log import switch_row

    who = args.by or getpass.getuser()

    def change(current: ToggleState) -> ToggleState:
        stamp = {"updated_at": datetime.now(UTC), "updated_by": who}
        if role == "champion":
            return replace(
                current,
                champion_path=str(challenger.path),
                champion_version=challenger.version,
                **stamp,
            )
        return replace(
            current,
            challenger_path=str(challenger.path),
            challenger_version=challenger.version,
            challenger_ratio=args.as_challenger,
            **stamp,
        )

    return switch_row.compare_and_set(engine, change).version


def format_decision(decision: dict[str, Any]) -> str:
    """The decision in a few lines: each model's mean reward, the difference, the verdict."""
    ci = decision["ci95"]
    ci_text = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "none"
    p_text = f"{decision['p_value']:.3g}" if decision["p_value"] is not None else "none"
    return "\n".join(
        [
            f"  mean reward per day: challenger {decision['challenger']['mean_reward']:.2f}, "
            f"champion {decision['champion']['mean_reward']:.2f} "
            f"({decision['days']} days)",
            f"  difference (challenger - champion): {decision['reward_diff_mean']:+.2f}, "
            f"95% CI {ci_text}, p = {p_text}, margin {decision['margin']:g}",
            f"{decision['decision']}: {decision['reason']}",
        ]
    )


def _json_safe(value: Any) -> Any:
    """The report as plain JSON data (paths and times as text)."""
    return json.loads(json.dumps(value, default=str))
