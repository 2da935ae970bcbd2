"""A simulated Asterisk 22 speaking real AMI, driven by the municipality's traffic model.

``run_sim`` / :class:`Simulator` serve it over TCP (load mode or a working day);
``simulate_year`` gives a whole simulated year's figures without any network.
"""

from callcenter.sim.cli import Simulator, run_sim
from callcenter.sim.hooks import AnsweredCallEnd
from callcenter.sim.traffic import TrafficParams
from callcenter.sim.yearmodel import YearSummary, simulate_year

__all__ = [
    "AnsweredCallEnd",
    "Simulator",
    "TrafficParams",
    "YearSummary",
    "run_sim",
    "simulate_year",
]
