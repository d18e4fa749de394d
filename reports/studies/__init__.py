"""The paper's studies (section 5), one module each, computing apart from rendering.

============================================  =================================================
module                                        study
============================================  =================================================
:mod:`reports.studies.synthetic_t1`           T1: the AIS gap predicts the value gap
:mod:`reports.studies.synthetic_t2`           T2: finite-sample behavior along T, p_handoff, rho
:mod:`reports.studies.routing`                routing on four graph families (exact observation)
:mod:`reports.studies.llm`                    the multi-LLM workflow (Table 1) on its calibrated model
:mod:`reports.studies.cpu`                    CPU programming with adaptable agents (modes)
:mod:`reports.studies.runner`                 running a study's campaign, its results file
============================================  =================================================

Every study is a campaign (:mod:`reports.campaign`) over its independent grid
points: ``<study>_campaign(seed, quick) -> Campaign`` (study names ``t1``,
``t2``, ``routing``, ``llm``, ``cpu``) and ``<study>_data(seed, quick, results)`` building the
study's frozen dataclass of JSON-ready numbers from the campaign's results
only, so the numbers are the same with ``jobs=1``, loky workers or a Dask
cluster, and after an interrupted run is resumed. ``compute_*(seed, quick,
...)`` runs the campaign (:func:`reports.studies.runner.run_study`) and builds
the data; a renderer ``render_*(ctx, data) -> Section`` draws the figures and
writes the text; the report section function (``synthetic_t1``,
``synthetic_t2``, ``routing``) composes the two with the campaign options of
its :class:`~reports.builder.ReportContext`. :mod:`reports.reproduce`
assembles them into ``icsmdp reproduce`` reports.
"""
__all__: list[str] = []
