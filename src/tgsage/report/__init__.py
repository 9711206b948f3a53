"""Reports: PNG figures (no display needed) and one self-contained HTML page.

``build_search_report(records, out_dir, teacher=...)`` writes the standard search figures and
``report.html``; ``build_predictivity_report(pool_records, out_dir)`` does the same for a
predictivity pool; ``report_search_run(run)`` reports a stored search. The single plot/drawing functions each write one PNG and return its path.
"""

from tgsage.report.builders import (
    build_predictivity_report,
    build_search_report,
    cost_rows,
    leaderboard_rows,
)
from tgsage.report.drawings import draw_cell, draw_layer_network, draw_spec
from tgsage.report.html import Section, image_html, table_html, write_html_report
from tgsage.report.plots import (
    plot_alpha_sweep,
    plot_best_so_far,
    plot_predictivity,
    plot_predictivity_panels,
    plot_rdm_heatmap,
    plot_scatter,
    plot_similarity_matrix,
)
from tgsage.report.run import RunReport, report_search_run

__all__ = [
    "RunReport",
    "Section",
    "build_predictivity_report",
    "build_search_report",
    "cost_rows",
    "draw_cell",
    "draw_layer_network",
    "draw_spec",
    "image_html",
    "leaderboard_rows",
    "plot_alpha_sweep",
    "plot_best_so_far",
    "plot_predictivity",
    "plot_predictivity_panels",
    "plot_rdm_heatmap",
    "plot_scatter",
    "plot_similarity_matrix",
    "report_search_run",
    "table_html",
    "write_html_report",
]
