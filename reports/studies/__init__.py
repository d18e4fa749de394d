"""The paper's studies (section 5), one module each, computing apart from rendering.

============================================  =================================================
module                                        study
============================================  =================================================
:mod:`reports.studies.synthetic_t1`           T1: the AIS gap predicts the value gap
:mod:`reports.studies.synthetic_t2`           T2: finite-sample behavior along T, p_handoff, rho
:mod:`reports.studies.routing`                routing on four graph families (exact observation)
:mod:`reports.studies.workers`                the forked worker pool the full studies share
============================================  =================================================

Each study module has a computation ``compute_*(seed, quick)`` returning a
frozen dataclass of JSON-ready numbers (no matplotlib), a renderer
``render_*(ctx, data) -> Section`` that draws the figures and writes the
text, and the report section function (``synthetic_t1``, ``synthetic_t2``,
``routing``) composing the two. :mod:`reports.reproduce` assembles them into
``icsmdp reproduce`` reports.
"""
__all__: list[str] = []
