"""Command line of the analysis library: ``python -m analysis <command> ...``.

Each command is a subparser with a ``handler``; adding one means adding a
``_add_<command>`` function and listing it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from analysis.io import (
    InputError,
    check_anchor,
    read_conditions,
    read_exclusions,
    read_votes,
    validate_conditions,
    validate_votes,
)
from analysis.types import SamplerSettings

#: Exit status: success.
EXIT_OK: Final = 0
#: Exit status: the outputs could not be written.
EXIT_WRITE: Final = 1
#: Exit status: bad input (the same status argparse uses for a bad command line).
EXIT_INPUT: Final = 2
#: Exit status under ``--strict`` when the fit did not converge.
EXIT_NOT_CONVERGED: Final = 3

#: Seed of the sampler when ``--seed`` is not given.
DEFAULT_SEED: Final = 0
#: Sampler settings when ``--draws``, ``--tune`` or ``--chains`` is not given.
DEFAULT_SAMPLER: Final = SamplerSettings()

#: Choices of ``--model``, ``--ties`` and ``--interp`` (spelled out here so that bad
#: input is reported without importing PyMC; tests check they match the enums).
MODEL_CHOICES: Final = ("bt", "bt-rater", "bt-image")
DEFAULT_MODEL_NAME: Final = "bt-rater"
TIE_CHOICES: Final = ("davidson", "half")
DEFAULT_TIES_NAME: Final = "davidson"
INTERP_CHOICES: Final = ("pchip", "akima", "cubic")
#: Number format of the ``bdrate`` output: enough digits to compare implementations.
BDRATE_FLOAT_FORMAT: Final = "%.10g"

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when the outputs cannot be written, 2 on bad input,
        3 under ``--strict`` when the fit did not converge.

    Raises
    ------
    SystemExit
        From argparse, on a malformed command line (status 2) or ``--help`` (status 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per command.

    Returns
    -------
    argparse.ArgumentParser

    Raises
    ------
    argparse.ArgumentError
        Never in practice; only if two commands register the same name.
    """
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Bayesian Elo and perceptual BD-rates from pairwise votes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def _add_fit(commands: Subparsers) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit Elo per condition and BD-rates against an anchor codec",
        description=(
            "Fit a Bradley-Terry model on the Elo scale to the votes and write elo.csv, "
            "bd_rate.csv, diagnostics.json and report.html to the output directory. "
            "Bad input stops with exit status 2 and writes nothing."
        ),
    )
    fit.add_argument("votes", metavar="VOTES", type=Path, help="votes.csv")
    fit.add_argument(
        "--conditions", required=True, type=Path, metavar="CONDITIONS", help="conditions.csv"
    )
    fit.add_argument(
        "--anchor", required=True, metavar="CODEC", help="codec the BD-rates are measured against"
    )
    fit.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    fit.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"sampler seed (default {DEFAULT_SEED})"
    )
    fit.add_argument(
        "--draws",
        type=_positive_int,
        default=DEFAULT_SAMPLER.draws,
        help=f"draws per chain (default {DEFAULT_SAMPLER.draws})",
    )
    fit.add_argument(
        "--tune",
        type=_positive_int,
        default=DEFAULT_SAMPLER.tune,
        help=f"warm-up iterations per chain (default {DEFAULT_SAMPLER.tune})",
    )
    fit.add_argument(
        "--chains",
        type=_positive_int,
        default=DEFAULT_SAMPLER.chains,
        help=f"number of chains, at least 2 (default {DEFAULT_SAMPLER.chains})",
    )
    fit.add_argument(
        "--model",
        choices=MODEL_CHOICES,
        default=DEFAULT_MODEL_NAME,
        help=f"model (default {DEFAULT_MODEL_NAME}; see docs/analysis.md)",
    )
    fit.add_argument(
        "--ties",
        choices=TIE_CHOICES,
        default=DEFAULT_TIES_NAME,
        help=f"Davidson tie parameter or half a win each (default {DEFAULT_TIES_NAME})",
    )
    fit.add_argument(
        "--position-bias",
        choices=("auto", "on", "off"),
        default="auto",
        help="left/right bias term; auto: on when pairs were shown in both orders",
    )
    fit.add_argument(
        "--fast",
        action="store_true",
        help="MAP plus Laplace approximation instead of NUTS (seconds; for previews)",
    )
    fit.add_argument(
        "--exclude-raters",
        type=Path,
        metavar="FILE",
        help="CSV with a rater column: their votes are left out (a bundle's exclusions.csv)",
    )
    fit.add_argument("--title", default=None, help="title of report.html")
    fit.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status {EXIT_NOT_CONVERGED} if the fit did not converge "
        "(outputs are still written)",
    )
    fit.set_defaults(handler=_run_fit)


def _run_fit(args: argparse.Namespace) -> int:
    votes_source, conditions_source = str(args.votes), str(args.conditions)
    try:
        conditions = validate_conditions(read_conditions(args.conditions), source=conditions_source)
        votes = validate_votes(
            read_votes(args.votes),
            conditions,
            source=votes_source,
            conditions_source=conditions_source,
        )
        check_anchor(conditions, args.anchor, source=conditions_source)
        excluded = read_exclusions(args.exclude_raters) if args.exclude_raters else []
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    if args.chains < 2:
        print("error: --chains must be at least 2 (R-hat compares chains)", file=sys.stderr)
        return EXIT_INPUT

    # Imported here so that bad input is reported without loading PyMC.
    from analysis.fit import fit_study, write_outputs
    from analysis.laplace import LaplaceError
    from analysis.report import DEFAULT_TITLE

    try:
        result = fit_study(
            votes,
            conditions,
            anchor=args.anchor,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            model=args.model,
            ties=args.ties,
            position_bias={"auto": None, "on": True, "off": False}[args.position_bias],
            fast=args.fast,
            exclude_raters=excluded,
            votes_source=votes_source,
            conditions_source=conditions_source,
        )
    except LaplaceError as error:
        print(f"error: --fast failed: {error}; fit without --fast", file=sys.stderr)
        return EXIT_NOT_CONVERGED
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    try:
        paths = write_outputs(result, args.out, title=args.title or DEFAULT_TITLE)
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_WRITE
    d = result.diagnostics
    print(
        f"fit {d['n_votes']} votes ({d['n_golden_excluded']} golden left out), "
        f"{d['n_conditions']} conditions, {d['n_codecs']} codecs in {d['seconds']:.1f} s; "
        f"R-hat max {_number(d['r_hat_max'], '.3f')}, "
        f"bulk ESS min {_number(d['ess_bulk_min'], '.0f')}, "
        f"{d['divergences']} divergences; model {d['model_name']} ({d['sampler']})"
    )
    for path in paths.values():
        print(path)
    if not d["converged"]:
        problems = "; ".join(d["convergence_problems"])
        print(f"warning: the fit did not converge: {problems}", file=sys.stderr)
        if args.strict:
            return EXIT_NOT_CONVERGED
    return EXIT_OK


def _add_bdrate(commands: Subparsers) -> None:
    bdrate = commands.add_parser(
        "bdrate",
        help="BD-rates of plain rate/quality curves (PSNR, Elo, ...)",
        description=(
            "Read CURVES.csv with columns codec,bpp,quality (higher quality is better; "
            "other columns ignored) and write the BD-rate of every codec against the "
            "anchor as CSV: codec,anchor,bd_rate,overlap,note. Curves without a BD-rate "
            "get an empty bd_rate and a note saying why."
        ),
    )
    bdrate.add_argument("curves", metavar="CURVES", type=Path, help="curves CSV")
    bdrate.add_argument("--anchor", required=True, metavar="CODEC", help="anchor codec")
    bdrate.add_argument(
        "--interp",
        choices=INTERP_CHOICES,
        default=INTERP_CHOICES[0],
        help="interpolation of ln(rate) against quality (default pchip)",
    )
    bdrate.add_argument("--out", type=Path, metavar="FILE", help="output CSV (default stdout)")
    bdrate.set_defaults(handler=_run_bdrate)


def _run_bdrate(args: argparse.Namespace) -> int:
    from analysis.curves import bd_rate_table, read_curves

    try:
        curves = read_curves(args.curves)
        table = bd_rate_table(
            curves, anchor=args.anchor, interp=args.interp, source=str(args.curves)
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    text = table.to_csv(
        index=False, float_format=BDRATE_FLOAT_FORMAT, na_rep="", lineterminator="\n"
    )
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_WRITE
    print(args.out)
    return EXIT_OK


def _add_import(commands: Subparsers) -> None:
    imp = commands.add_parser(
        "import",
        help="convert answers from elsewhere into votes.csv (and conditions.csv)",
        description=(
            "elo-rater: the CSV of Google's elo_rater_model (methodA,methodB,answerValue,"
            "answerer,isGolden[,modelProbability]); writes DIR/votes.csv. mucped23: the "
            "folder of Google's jpegli study (answers.csv, elo.csv); writes DIR/votes.csv "
            "and DIR/conditions.csv. answerValue names the loser in mucped23 and the "
            "winner (B, 1, true; A otherwise; draw) in elo_rater_model files."
        ),
    )
    imp.add_argument("format", choices=("elo-rater", "mucped23"), help="source format")
    imp.add_argument("source", type=Path, metavar="SOURCE", help="file or folder")
    imp.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    imp.set_defaults(handler=_run_import)


def _run_import(args: argparse.Namespace) -> int:
    from analysis.importers import read_elo_rater_csv, read_mucped23

    try:
        if args.format == "mucped23":
            votes, conditions = read_mucped23(args.source)
        else:
            votes, conditions = read_elo_rater_csv(args.source), None
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        written = [args.out / "votes.csv"]
        votes.to_csv(written[0], index=False, lineterminator="\n")
        if conditions is not None:
            written.append(args.out / "conditions.csv")
            conditions.to_csv(written[1], index=False, lineterminator="\n")
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_WRITE
    print(f"imported {len(votes)} answers")
    for path in written:
        print(path)
    return EXIT_OK


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


#: Functions that add one command each to the parser.
COMMANDS: Final[tuple[Callable[[Subparsers], None], ...]] = (_add_fit, _add_bdrate, _add_import)
