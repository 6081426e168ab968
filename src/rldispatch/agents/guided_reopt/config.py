"""Every hyperparameter of ``guided-reopt`` in one validated, frozen object
(``docs/guided_reopt.md`` explains the learning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rldispatch.agents.config_fields import ConfigError, HyperparameterConfig, hyperparameter
from rldispatch.agents.guided_reopt.gate import LINEAR_GATE_FEATURES
from rldispatch.agents.guided_reopt.network import TAKE_TERM, TERMS
from rldispatch.agents.guided_reopt.policy import TAKE_DRIVERS

TERM_CHOICES = ("all", *TERMS, "prize,value", "prize,gate", "value,gate", TAKE_TERM)
ES_TERMS = ("gate", TAKE_TERM)
"""The terms evolution strategies learn (``trainer="es"``): the linear gate or the take head."""


@dataclass(frozen=True)
class GuidedReoptConfig(HyperparameterConfig):
    """Hyperparameters of the guided re-optimiser and of its learning."""

    prefix: ClassVar[str] = "guided-reopt"

    terms: str = hyperparameter(
        "the learned terms: 'prize' (per open booking) and 'value' (where and when each plan "
        "leaves its driver) in the solver's objective, 'gate' (commit a planned booking now "
        "or hold it open); one, two joined by a comma, or 'all' (the gate is off by default: "
        "trained on full-information labels it lost reward, docs/guided_reopt.md); or 'take' "
        "(take a booking the plan leaves out where reopt would wait; trainer 'es' only)",
        "prize,value",
        kind="choice",
        choices=TERM_CHOICES,
    )
    hidden: int = hyperparameter("width of each head's hidden layers", 32, kind="int", low=1)
    term_scale: float = hyperparameter(
        "the bound of each learned term, in reward units (term_scale * tanh(output))",
        15.0,
        low=0.0,
        low_open=True,
    )
    learning_rate: float = hyperparameter("Adam step size", 1e-3, low=0.0, high=1.0, low_open=True)
    weight_decay: float = hyperparameter("Adam weight decay", 1e-4, low=0.0, high=1.0)
    noise: float = hyperparameter(
        "standard deviation of the Gaussian perturbation of each term in the Fenchel-Young "
        "loss, in reward units (0: the structured perceptron)",
        2.0,
        low=0.0,
    )
    label_every: int = hyperparameter(
        "one re-plan in this many is a labelled state", 8, kind="int", low=1
    )
    label_time_limit_s: float = hyperparameter(
        "wall-clock cap of a state's full-information plan, in seconds",
        2.0,
        low=0.0,
        low_open=True,
    )
    label_solution_limit: int = hyperparameter(
        "guided local search solutions of a state's full-information plan (the budget that "
        "makes labels the same on any machine, unless the cap is reached first)",
        60,
        kind="int",
        low=1,
    )
    label_jobs: int = hyperparameter(
        "processes that compute labels at the end of a training day", 1, kind="int", low=1
    )
    label_cache: str = ""
    """Folder of the labels' disk cache ('': none)."""
    updates_per_day: int = hyperparameter(
        "gradient steps at the end of each training day, each on one labelled state of all "
        "the days so far (DAgger's aggregated data), re-solved with the current network",
        48,
        kind="int",
        low=0,
    )
    gate_floor_min: float = hyperparameter(
        "the gate commits every planned booking whose pickup is at most this many minutes "
        "ahead, whatever its score",
        15.0,
        low=0.0,
    )
    gate_steps_per_day: int = hyperparameter(
        "full-batch gradient steps of the gate's weighted cross-entropy at the end of each "
        "training day, on the gate rows of every day so far",
        40,
        kind="int",
        low=0,
    )
    gate_hold_weight: float = hyperparameter(
        "weight of a 'hold' label against a 'commit' label in the gate's cross-entropy",
        1.0,
        low=0.0,
        low_open=True,
    )
    trainer: str = hyperparameter(
        "how the model learns: 'dagger' (Fenchel-Young steps on full-information plans of "
        "visited states) or 'es' (evolution strategies on the day's reward: a linear commit "
        "gate with terms 'gate', or the take head's last layer with terms 'take')",
        "dagger",
        kind="choice",
        choices=("dagger", "es"),
    )
    es_sigma: float = hyperparameter(
        "es: standard deviation of the Gaussian perturbation of each searched weight",
        0.8,
        low=0.0,
        low_open=True,
    )
    es_step: float = hyperparameter(
        "es: step size of an update, in units of the perturbation (the estimate is divided by "
        "es_scale)",
        0.25,
        low=0.0,
        low_open=True,
    )
    es_scale: str = hyperparameter(
        "es: the update's normaliser: 'pair_rms' (root mean square of the pairs' reward "
        "differences) or 'reward_std' (standard deviation of all the twins' rewards)",
        "pair_rms",
        kind="choice",
        choices=("pair_rms", "reward_std"),
    )
    es_pairs: int = hyperparameter(
        "es: antithetic pairs of perturbations played on each training day (each pair on "
        "the same days: common random numbers)",
        2,
        kind="int",
        low=1,
    )
    es_batch_days: int = hyperparameter(
        "es: training days one update's pairs play (the same directions on each)",
        1,
        kind="int",
        low=1,
    )
    es_features: str = ""
    """es: the linear gate's features the search may move, comma-separated names of
    ``LINEAR_GATE_FEATURES`` ('': all of them); the others keep weight 0."""
    es_jobs: int = hyperparameter(
        "es: processes that play a day's perturbations and reopt", 1, kind="int", low=1
    )
    take_driver: str = hyperparameter(
        "take: who gets a taken booking: 'insertion' (the driver of its cheapest insertion), "
        "'replan' (the driver a re-plan with the booking forced in gives it) or 'known-reward' "
        "(the assignment with the best known reward, booking and driver)",
        "insertion",
        kind="choice",
        choices=TAKE_DRIVERS,
    )
    horizon_min: float = hyperparameter(
        "plan the open bookings whose window opens within this many minutes (as reopt)",
        120.0,
        low=0.0,
        low_open=True,
    )

    def check(self) -> None:
        if not isinstance(self.label_cache, str) or "\0" in self.label_cache:
            raise ConfigError("guided-reopt.label_cache: must be a folder name")
        if not isinstance(self.es_features, str):
            raise ConfigError("guided-reopt.es_features: must be a string of feature names")
        self.es_mask()
        if self.trainer == "es" and self.terms not in ES_TERMS:
            raise ConfigError(
                "guided-reopt.trainer: 'es' learns the commit gate or the take head alone; set "
                f"terms to 'gate' or 'take' (got {self.terms!r})"
            )
        if self.trainer != "es" and TAKE_TERM in self.term_names():
            raise ConfigError(
                "guided-reopt.terms: 'take' has no label to imitate; it needs trainer 'es'"
            )
        if self.es_features and self.terms != "gate":
            raise ConfigError("guided-reopt.es_features: limits the linear gate's search alone")

    def es_mask(self) -> tuple[float, ...]:
        """1 for each linear gate feature the search may move, else 0."""
        names = [n for n in self.es_features.split(",") if n] if self.es_features else None
        unknown = sorted(set(names or ()) - set(LINEAR_GATE_FEATURES))
        if unknown:
            raise ConfigError(
                f"guided-reopt.es_features: unknown {unknown}; choose from "
                f"{', '.join(LINEAR_GATE_FEATURES)}"
            )
        return tuple(float(names is None or n in names) for n in LINEAR_GATE_FEATURES)

    @property
    def gate_form(self) -> str:
        """The commit gate's form: linear for evolution strategies, else a perceptron."""
        return "linear" if self.trainer == "es" else "mlp"

    def term_names(self) -> tuple[str, ...]:
        """The learned terms, by name."""
        return TERMS if self.terms == "all" else tuple(self.terms.split(","))
