"""A valid instance refused because of round-off in an internal construction (issue 11, item 1).

``draw_icsmdp(NumpyChoices(22), agents=(1, 3), latent=1, interface=(1, 3), private=1,
observation="injective")`` (saved here as JSON) gives an AIS-induced kernel ``D_hat`` with an
entry of ``-6.9e-17``; before the fix the toolkit's own user-input validator rejected it, so
``icsmdp gaps`` exited 2 on a valid instance that ``icsmdp solve`` accepts.
"""
from pathlib import Path

from estimators.ais import ais_smdp
from estimators.gaps import gap_report
from icsmdp_theory.io import load_instance
from reports.cli import main

CASE = Path(__file__).with_name("roundoff_negative_d_hat.json")


def test_ais_model_of_the_case_builds_and_its_gaps_vanish():
    model = load_instance(CASE)
    ais = ais_smdp(model)
    assert ais.end_kernel.data.min() >= 0.0
    rep = gap_report(model, minimax=False)      # injective maps, nX = 1, no private states
    assert rep.epsilon_phi <= 1e-9 and rep.delta_phi <= 1e-9 and rep.max_q_gap <= 1e-8


def test_icsmdp_gaps_accepts_the_case(capsys):
    assert main(["gaps", str(CASE), "--no-minimax", "--no-mixing", "--json"]) == 0
    assert capsys.readouterr().err == ""
