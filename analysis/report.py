"""A self-contained HTML report of a study fit: plot, tables, diagnostics, warnings."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any, Final

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

if TYPE_CHECKING:
    from analysis.fit import FitResult

#: Default title of the report.
DEFAULT_TITLE: Final = "Codec Arena: perceptual Elo and BD-rate"

#: Share of posterior draws unusable for a codec's BD-rate above which the report warns:
#: the BD-rate summary then rests on a visibly selected subset of the posterior.
UNUSABLE_SHARE_WARNING: Final = 0.05

#: Size of the Elo-vs-bpp figure, in inches.
FIGURE_SIZE: Final = (7.5, 4.8)

#: Opacity of the credible bands.
BAND_ALPHA: Final = 0.18
#: Raters listed in the report's table (those suggested for exclusion first).
MAX_LISTED_RATERS: Final = 30

#: Mantissas of the minor log-axis ticks that get a label.
MINOR_TICK_LABELS: Final = (2.0, 3.0, 5.0)

#: Salt of the ids matplotlib writes into SVG, fixed so the same fit gives the same file.
SVG_HASH_SALT: Final = "codec-arena"

_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #1b1b1b; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { padding: 0.75rem 1rem; border-radius: 4px; margin: 0.75rem 0; }
.banner.error { background: #fdecea; border: 1px solid #d93025; }
.banner.warning { background: #fff7e0; border: 1px solid #e0a800; }
.note { color: #555; font-size: 0.9rem; }
figure { margin: 1rem 0; } svg { max-width: 100%; height: auto; }
"""


def render_report(result: FitResult, *, title: str = DEFAULT_TITLE) -> str:
    """Render a fit as one self-contained HTML page.

    The page holds the Elo-vs-bpp plot with interval bars (inline SVG), the BD-rate and
    Elo tables, the convergence diagnostics and a summary of the data, with a warning
    banner when the fit did not converge or a BD-rate rests on few usable draws.

    Parameters
    ----------
    result : FitResult
        From :func:`analysis.fit.fit_study`.
    title : str
        Page title and heading.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    KeyError
        If ``result.diagnostics`` lacks an entry that :func:`analysis.fit.fit_study`
        writes.
    """
    diagnostics = result.diagnostics
    interval_pct = f"{diagnostics['interval_prob'] * 100:g}%"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(_lead(diagnostics))}</p>",
        *_banners(result),
        "<h2>Elo against bits per pixel</h2>",
        f"<figure>{_elo_plot_svg(result.elo, anchor=diagnostics['anchor'])}</figure>",
        f'<p class="note">Bars and bands: {interval_pct} posterior intervals. '
        f"{escape(diagnostics['anchoring'])}. bpp is the mean over images.</p>",
        f"<h2>BD-rate against {escape(diagnostics['anchor'])}</h2>",
        _bd_rate_table(result.bd_rate, diagnostics, interval_pct),
        '<p class="note">Negative: fewer bits than the anchor at equal Elo. Median and '
        "equal-tailed interval over the posterior draws in which both curves increase "
        "and overlap; overlap is the shared Elo range over the joint one.</p>",
        *_savings_section(result, interval_pct),
        *_matrix_section(result),
        "<h2>Elo per condition</h2>",
        _elo_table(result.elo, interval_pct),
        *_metrics_section(result),
        *_rater_section(result, interval_pct),
        "<h2>Convergence</h2>",
        _key_value_table(_convergence_rows(diagnostics)),
        "<h2>Data</h2>",
        _key_value_table(_data_rows(diagnostics)),
        "<h2>Settings and versions</h2>",
        _key_value_table(_settings_rows(diagnostics)),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _lead(diagnostics: dict[str, Any]) -> str:
    return (
        f"{diagnostics['n_votes']:,} votes by {diagnostics['n_raters']:,} raters on "
        f"{diagnostics['n_images']:,} images, {diagnostics['n_conditions']} conditions of "
        f"{diagnostics['n_codecs']} codecs; BD-rates against {diagnostics['anchor']}."
    )


def _banners(result: FitResult) -> list[str]:
    diagnostics = result.diagnostics
    banners: list[str] = []
    if not diagnostics["converged"]:
        problems = "; ".join(diagnostics["convergence_problems"])
        banners.append(
            _banner(
                "error",
                f"The fit did not converge ({problems}). Do not use these numbers; "
                "run longer (more draws and tuning) or check the data.",
            )
        )
    for codec, record in diagnostics["bd_rate_unusable"].items():
        if "note" in record:
            banners.append(_banner("warning", f"{codec}: {record['note']}."))
        elif record["share"] > UNUSABLE_SHARE_WARNING:
            banners.append(
                _banner(
                    "warning",
                    f"The BD-rate of {codec} rests on {1 - record['share']:.1%} of the "
                    "posterior draws; the rest had non-increasing or non-overlapping curves.",
                )
            )
    if diagnostics["conditions_without_votes"]:
        names = ", ".join(diagnostics["conditions_without_votes"])
        banners.append(
            _banner(
                "warning", f"No vote compares these conditions; their Elo is the prior: {names}."
            )
        )
    if diagnostics["comparison_graph_components"] > 1:
        banners.append(
            _banner(
                "warning",
                f"The conditions fall into {diagnostics['comparison_graph_components']} groups "
                "never compared with each other; Elo differences across groups rest on the prior.",
            )
        )
    return banners


def _banner(kind: str, text: str) -> str:
    return f'<div class="banner {kind}" role="alert">{escape(text)}</div>'


def _elo_plot_svg(elo: pd.DataFrame, *, anchor: str) -> str:
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    for codec_key, points in elo.groupby("codec", sort=False):
        codec = str(codec_key)
        points = points.sort_values("bpp")
        lower = (points["elo"] - points["elo_lo"]).clip(lower=0)
        upper = (points["elo_hi"] - points["elo"]).clip(lower=0)
        label = f"{codec} (anchor)" if codec == anchor else codec
        band = axes.fill_between(
            points["bpp"], points["elo_lo"], points["elo_hi"], alpha=BAND_ALPHA, linewidth=0
        )
        axes.errorbar(
            points["bpp"],
            points["elo"],
            yerr=[lower.to_numpy(), upper.to_numpy()],
            marker="o",
            markersize=4,
            capsize=3,
            linewidth=2.2 if codec == anchor else 1.4,
            label=label,
            color=_band_color(band),
        )
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axes.xaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
    axes.set_xlabel("bits per pixel (mean over images, log scale)")
    axes.set_ylabel("Elo (mean of all conditions = 0)")
    axes.grid(visible=True, which="both", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return _svg(figure)


def _minor_log_label(value: float, _position: int | None) -> str:
    """Label minor log ticks at 2, 3 and 5 times a power of ten only, to avoid crowding."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in MINOR_TICK_LABELS else ""


def _bd_rate_table(bd_rate: pd.DataFrame, diagnostics: dict[str, Any], interval: str) -> str:
    if bd_rate.empty:
        return '<p class="note">Only the anchor codec is present.</p>'
    rows = []
    for codec, median, lo, hi in zip(
        bd_rate["codec"].astype(str),
        bd_rate["bd_rate"].to_numpy(dtype=float),
        bd_rate["bd_rate_lo"].to_numpy(dtype=float),
        bd_rate["bd_rate_hi"].to_numpy(dtype=float),
        strict=True,
    ):
        record = diagnostics["bd_rate_unusable"].get(codec, {})
        share = record.get("share")
        overlap = (
            float(bd_rate.set_index("codec")["overlap"].astype("float64").loc[codec])
            if "overlap" in bd_rate.columns
            else float("nan")
        )
        rows.append(
            [
                escape(codec),
                _percent(float(median)),
                f"{_percent(float(lo))} to {_percent(float(hi))}" if _finite(float(lo)) else "",
                f"{overlap:.2f}" if _finite(overlap) else "",
                f"{share:.1%}" if share is not None else "",
            ]
        )
    return _table(["codec", "BD-rate", f"{interval} interval", "overlap", "draws unusable"], rows)


def _savings_section(result: FitResult, interval: str) -> list[str]:
    savings = result.savings
    if savings.empty or not savings["rate_ratio"].notna().any():
        return []
    anchor = str(result.diagnostics["anchor"])
    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    for codec_key, rows in savings.groupby("codec", sort=False):
        rows = rows[rows["rate_ratio"].notna()]
        if rows.empty:
            continue
        band = axes.fill_between(
            rows["anchor_bpp"],
            rows["rate_ratio_lo"],
            rows["rate_ratio_hi"],
            alpha=BAND_ALPHA,
            linewidth=0,
        )
        axes.plot(
            rows["anchor_bpp"],
            rows["rate_ratio"],
            label=str(codec_key),
            color=_band_color(band),
        )
    axes.axhline(1.0, color="#555", linewidth=0.8)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    axes.xaxis.set_minor_formatter(FuncFormatter(_minor_log_label))
    axes.set_xlabel(f"bits per pixel of {anchor} (log scale)")
    axes.set_ylabel(f"rate / rate of {anchor} at equal Elo")
    axes.grid(visible=True, which="both", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return [
        f"<h2>Savings against {escape(anchor)}</h2>",
        f"<figure>{_svg(figure)}</figure>",
        f'<p class="note">At each bitrate of {escape(anchor)}: the rate another codec needs '
        f"for the same Elo, as a ratio (0.7 = 30% fewer bits). Bands: {interval} posterior "
        "intervals; gaps where the curves do not overlap.</p>",
    ]


def _matrix_section(result: FitResult) -> list[str]:
    matrix = result.bd_rate_matrix
    if matrix.empty:
        return []
    codecs = list(pd.unique(result.elo["codec"]))
    lookup = {
        (str(codec), str(anchor)): float(value)
        for codec, anchor, value in zip(
            matrix["codec"], matrix["anchor"], matrix["bd_rate"].astype("float64"), strict=True
        )
    }
    rows = []
    for codec in codecs:
        cells = [escape(codec)]
        for anchor in codecs:
            value = lookup.get((codec, anchor))
            cells.append("" if codec == anchor else _percent(value) if value is not None else "")
        rows.append(cells)
    return [
        "<h2>BD-rate between every pair of codecs</h2>",
        _table(["codec \\ against", *codecs], rows),
        '<p class="note">Row codec against column codec, posterior median; intervals in '
        "bd_rate_matrix.csv.</p>",
    ]


def _metrics_section(result: FitResult) -> list[str]:
    if result.metrics.empty:
        return []
    per_condition = result.condition_metrics
    names = list(result.metrics["metric"])
    rows = [
        [
            escape(str(row["condition"])),
            escape(str(row["codec"])),
            f"{row['elo']:.0f}",
            *[f"{row[name]:.4g}" if _finite(row[name]) else "" for name in names],
        ]
        for _, row in per_condition.iterrows()
    ]
    correlations = [
        [
            escape(str(row.metric)),
            f"{row.spearman:+.3f}" if _finite(row.spearman) else "",
            f"{row.kendall:+.3f}" if _finite(row.kendall) else "",
            str(row.n_conditions),
        ]
        for row in result.metrics.itertuples(index=False)
    ]
    return [
        "<h2>Objective metrics beside human Elo</h2>",
        _table(["metric", "Spearman", "Kendall", "conditions"], correlations),
        '<p class="note">Rank correlation of each metric (mean over images) with the '
        "posterior median Elo over conditions; negative where lower is better.</p>",
        _table(["condition", "codec", "Elo", *names], rows),
    ]


def _rater_section(result: FitResult, interval: str) -> list[str]:
    raters = result.raters
    if raters.empty:
        return []
    flagged = raters[raters["exclude"] == 1]
    shown = pd.concat([flagged, raters[raters["exclude"] == 0]]).head(MAX_LISTED_RATERS)
    rows = [
        [
            escape(str(row.rater)),
            str(row.votes),
            f"{row.golden_accuracy:.0%} of {row.golden}" if _finite(row.golden_accuracy) else "",
            f"{row.lapse:.2f} ({row.lapse_lo:.2f} to {row.lapse_hi:.2f})"
            if _finite(row.lapse)
            else "",
            f"{row.p_random:.2f}" if _finite(row.p_random) else "",
            f"{row.median_response_ms:.0f}" if _finite(row.median_response_ms) else "",
            f"{row.left_share:.0%}" if _finite(row.left_share) else "",
            escape(str(row.reason)),
        ]
        for row in shown.itertuples(index=False)
    ]
    lead = (
        f"{len(raters):,} raters; {len(flagged):,} suggested for exclusion. The fit keeps "
        "every rater: under bt-rater, random answers are discounted by the model itself."
    )
    return [
        "<h2>Raters</h2>",
        f"<p>{escape(lead)}</p>",
        _table(
            [
                "rater",
                "votes",
                "golden right",
                f"random-answer probability ({interval})",
                "P(random type)",
                "median ms",
                "left",
                "suggested exclusion",
            ],
            rows,
        ),
        f'<p class="note">First {len(shown)} raters shown; all in raters.csv.</p>',
    ]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _elo_table(elo: pd.DataFrame, interval: str) -> str:
    rows = [
        [
            escape(str(row.condition)),
            escape(str(row.codec)),
            f"{row.bpp:.4g}",
            f"{row.elo:.0f}",
            f"{row.elo_lo:.0f} to {row.elo_hi:.0f}",
        ]
        for row in elo.itertuples(index=False)
    ]
    return _table(["condition", "codec", "bpp", "Elo", f"{interval} interval"], rows)


def _convergence_rows(diagnostics: dict[str, Any]) -> list[tuple[str, str]]:
    thresholds = diagnostics["thresholds"]
    return [
        ("converged", "yes" if diagnostics["converged"] else "NO"),
        (
            "largest R-hat",
            f"{_number(diagnostics['r_hat_max'], '.4f')} (limit {thresholds['r_hat_max']:g})",
        ),
        (
            "smallest bulk ESS",
            f"{_number(diagnostics['ess_bulk_min'], '.0f')} (limit {thresholds['ess_bulk_min']:g})",
        ),
        ("smallest tail ESS", _number(diagnostics["ess_tail_min"], ".0f")),
        ("divergent transitions", str(diagnostics["divergences"])),
        ("fit time", f"{diagnostics['seconds']:.1f} s"),
    ]


def _data_rows(diagnostics: dict[str, Any]) -> list[tuple[str, str]]:
    keys = [
        ("votes in the fit", "n_votes"),
        ("golden answers wrong", "n_golden_wrong"),
        ("votes in the table", "n_votes_total"),
        ("golden votes left out", "n_golden_excluded"),
        ("ties (half a win each)", "n_ties"),
        ("raters", "n_raters"),
        ("images", "n_images"),
        ("conditions", "n_conditions"),
        ("codecs", "n_codecs"),
        ("distinct ordered pairs", "n_pairs"),
    ]
    return [(label, f"{diagnostics[key]:,}") for label, key in keys]


def _settings_rows(diagnostics: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("model", diagnostics["model"]),
        *[
            (f"parameter {name}", _parameter_text(entry))
            for name, entry in diagnostics.get("parameters", {}).items()
        ],
        ("prior scale of Elo", f"{diagnostics['priors']['elo_sigma']:g}"),
        ("sampler", diagnostics["sampler"]),
        (
            "chains x draws (tuning)",
            f"{diagnostics['chains']} x {diagnostics['draws']} ({diagnostics['tune']})",
        ),
        ("seed", str(diagnostics["seed"])),
    ]
    rows.extend((name, version) for name, version in diagnostics["versions"].items())
    return rows


def _parameter_text(entry: dict[str, Any]) -> str:
    median, lo, hi = entry["median"], entry["lo"], entry["hi"]
    if isinstance(median, list):
        return ", ".join(
            f"{m:.3g} ({a:.3g} to {b:.3g})" for m, a, b in zip(median, lo, hi, strict=True)
        )
    return f"{median:.3g} ({lo:.3g} to {hi:.3g})"


def _key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    return _table(None, [[escape(key), escape(value)] for key, value in rows])


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """An HTML table from already-escaped cells; numeric-looking cells align right."""
    lines = ["<table>"]
    if header is not None:
        lines.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if _looks_numeric(cell) else f"<td>{cell}</td>"
            for cell in row
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "-+−")


def _percent(value: float) -> str:
    return f"{value:+.1f}%" if _finite(value) else "n/a"


def _number(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "n/a"


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _band_color(band: Any) -> tuple[float, ...]:
    """The RGB colour matplotlib gave a filled band, for the line drawn over it."""
    return tuple(float(c) for c in np.asarray(band.get_facecolor()).reshape(-1, 4)[0][:3])
