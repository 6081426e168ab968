"""OR-Tools routing search code shared by the hindsight solver and re-optimisation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.util import optional_boolean_pb2

GLS_LAMBDA = 0.5
"""Guided local search penalty weight (OR-Tools' default is 0.1; 0.5 escapes the tight
local optima of the larger Cordeau instances more often)."""
FIRST_SOLUTION_SHARE = 0.15
"""Share of the time limit spent comparing first-solution strategies (greedy descent each)."""
NO_TIME_LIMIT_S = 24 * 3600.0
"""The wall-clock limit of a search that stops on its solution limit instead."""


def search_cut_short(routing: Any) -> bool:
    """Whether ``routing``'s last search stopped on a limit (time or solutions) before it
    reached a local optimum."""
    status = routing_enums_pb2.RoutingSearchStatus
    return routing.status() == status.ROUTING_PARTIAL_SUCCESS_LOCAL_OPTIMUM_NOT_REACHED


def search_parameters(
    time_limit_s: float | None,
    first_solution: str,
    metaheuristic: str = "GUIDED_LOCAL_SEARCH",
    solution_limit: int | None = None,
    light_pair_relocate: bool = False,
) -> Any:
    """Routing search parameters: a first-solution strategy, then ``metaheuristic`` until
    ``time_limit_s`` (wall clock) or ``solution_limit`` solutions, whichever comes first.

    With ``time_limit_s=None`` only the solution limit stops the search, which makes it
    deterministic (OR-Tools' routing search is single-threaded and draws nothing at random).
    ``light_pair_relocate`` swaps OR-Tools' pair relocation for its light version (see
    ``LIGHT_PAIR_RELOCATE_FROM_REQUESTS`` in :mod:`rldispatch.policies.hindsight_cordeau`).
    """
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, first_solution
    )
    params.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic
    )
    params.guided_local_search_lambda_coefficient = GLS_LAMBDA
    limit_s = NO_TIME_LIMIT_S if time_limit_s is None else min(time_limit_s, NO_TIME_LIMIT_S)
    params.time_limit.FromMilliseconds(max(1, int(limit_s * 1000)))
    if solution_limit is not None:
        params.solution_limit = int(solution_limit)
    if light_pair_relocate:
        operators = params.local_search_operators
        operators.use_light_relocate_pair = optional_boolean_pb2.BOOL_TRUE
        operators.use_relocate_pair = optional_boolean_pb2.BOOL_FALSE
    return params


def status_name(routing: Any) -> str:
    return routing_enums_pb2.RoutingSearchStatus.Value.Name(routing.status())


def solve_portfolio(
    routing: Any,
    time_limit_s: float,
    first_solutions: Sequence[str],
    initial: Any | None = None,
    light_pair_relocate: bool = False,
) -> tuple[Any, str]:
    """Best first solution (each polished by greedy descent), then guided local search.

    With a single strategy the whole time limit goes to guided local search from it. An
    ``initial`` assignment (a warm start) joins the comparison as one more candidate.
    """
    deadline = time.monotonic() + time_limit_s
    if len(first_solutions) == 1 and initial is None:
        params = search_parameters(
            time_limit_s, first_solutions[0], light_pair_relocate=light_pair_relocate
        )
        return routing.SolveWithParameters(params), status_name(routing)
    candidates = len(first_solutions) + (initial is not None)
    probe_s = time_limit_s * FIRST_SOLUTION_SHARE / candidates
    best = None
    for strategy in ([None] if initial is not None else []) + list(first_solutions):
        params = search_parameters(
            probe_s,
            strategy or first_solutions[0],
            "GREEDY_DESCENT",
            light_pair_relocate=light_pair_relocate,
        )
        if strategy is None:
            solution = routing.SolveFromAssignmentWithParameters(initial, params)
        else:
            solution = routing.SolveWithParameters(params)
        if solution is not None and (best is None or solution.ObjectiveValue() < best[0]):
            best = (solution.ObjectiveValue(), routing.solver().Assignment(solution))
    remaining_s = max(0.1, deadline - time.monotonic())
    params = search_parameters(
        remaining_s, first_solutions[0], light_pair_relocate=light_pair_relocate
    )
    if best is None:
        return routing.SolveWithParameters(params), status_name(routing)
    solution = routing.SolveFromAssignmentWithParameters(best[1], params)
    return solution, status_name(routing)


def vehicle_nodes(routing: Any, manager: Any, solution: Any) -> list[list[int]]:
    """The visited nodes of each vehicle, depots excluded."""
    routes = []
    for vehicle in range(manager.GetNumberOfVehicles()):
        index = solution.Value(routing.NextVar(routing.Start(vehicle)))
        nodes = []
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        routes.append(nodes)
    return routes
