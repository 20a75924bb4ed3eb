"""The monthly report's executive summary: plain sentences written from the figures. Pure.

Written for a business owner, not an IT service manager: no process jargon. "Planned changes"
rather than RFCs, "the agreed times" rather than the SLA, "warnings from our monitoring"
rather than alerts breaching thresholds. Every sentence comes from a figure; a figure that is
zero or unknown either says so plainly or leaves its sentence out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Words a summary must never use (checked by the tests, and by `jargon_in`).
JARGON = ("RFC", "SLA", "ITIL", "CMDB", "CI ", "CIs", "P1", "KPI", "threshold", "known error")

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class SummaryFigures:
    customer_name: str
    month: str  # "YYYY-MM"
    incidents: int = 0
    urgent_incidents: int = 0  # critical priority
    response_met: int = 0
    response_measured: int = 0
    resolution_met: int = 0
    resolution_measured: int = 0
    incidents_open_at_end: int = 0
    alerts_received: int = 0
    alerts_acted_on: int = 0  # alerts that opened or joined an incident
    changes_completed: int = 0
    changes_open_at_end: int = 0
    changes_reversed: int = 0  # failed or backed out in the month
    patches_due: int | None = None  # None: patch compliance unknown
    patches_on_time: int | None = None
    problems_investigated: int = 0
    problems_solved: int = 0


def month_label(month: str) -> str:
    """ "2026-10" -> "October 2026"."""
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]} {int(year)}"


def percent(part: int, whole: int) -> int | None:
    """Whole percent, rounded down so 99.6 % never shows as a perfect 100 %; None for 0 of 0."""
    if whole <= 0:
        return None
    return (100 * part) // whole


def _count(n: int, singular: str, plural: str | None = None) -> str:
    word = singular if n == 1 else (plural or singular + "s")
    return f"{_number(n)} {word}"


def _number(n: int) -> str:
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if 0 <= n < len(words) else f"{n:,}"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _attainment(part: int, whole: int, done: str) -> str:
    """ "Eleven of twelve were answered within the agreed time (91 %)." and its variants."""
    where = "within the agreed time"
    if whole == 1:
        return f"It was {done} {where}." if part else f"It was not {done} {where}."
    if part == 0:
        if whole == 2:
            return f"Neither was {done} {where}."
        return f"None of the {_number(whole)} were {done} {where} (0 %)."
    if part == whole:
        return f"Both were {done} {where}." if whole == 2 else f"All {_number(whole)} were {done} {where} (100 %)."
    return f"{_number(part).capitalize()} of {_number(whole)} {_were(part)} {done} {where}{_share(part, whole)}."


def _share(part: int, whole: int) -> str:
    value = percent(part, whole)
    return f" ({value} %)" if value is not None else ""


def summary_sentences(figures: SummaryFigures) -> list[str]:
    """The executive summary as a list of sentences, most important first."""
    name = figures.customer_name
    when = month_label(figures.month)
    sentences: list[str] = []

    if figures.incidents == 0:
        sentences.append(f"In {when} there were no reported faults or interruptions on {name}'s systems.")
    else:
        opening = f"In {when} we handled {_count(figures.incidents, 'incident')} for {name}"
        if figures.urgent_incidents:
            urgent = figures.urgent_incidents
            opening += f", {_number(urgent)} of which {_were(urgent)} urgent (a service or site stopped working)"
        sentences.append(opening + ".")
        if figures.response_measured:
            sentences.append(_attainment(figures.response_met, figures.response_measured, "answered"))
        if figures.resolution_measured:
            sentences.append(_attainment(figures.resolution_met, figures.resolution_measured, "fixed"))
        if figures.incidents_open_at_end:
            n = figures.incidents_open_at_end
            sentences.append(f"{_number(n).capitalize()} {_were(n)} still being worked on at the end of the month.")

    if figures.alerts_received:
        text = f"Our monitoring sent {_count(figures.alerts_received, 'warning')} about your systems"
        if figures.alerts_acted_on:
            text += f"; {_number(figures.alerts_acted_on)} needed action from our engineers"
        else:
            text += "; none needed action"
        sentences.append(text + ".")

    if figures.changes_completed or figures.changes_open_at_end:
        n = figures.changes_open_at_end
        waiting = f"{_number(n)} {'is' if n == 1 else 'are'} under way or waiting for approval"
        if not figures.changes_completed:
            sentences.append(f"No planned changes were completed this month; {waiting}.")
        else:
            text = f"We completed {_count(figures.changes_completed, 'planned change')}"
            sentences.append(text + (f", and {waiting}." if n else "."))
    if figures.changes_reversed:
        n = figures.changes_reversed
        sentences.append(
            f"{_number(n).capitalize()} planned {'change' if n == 1 else 'changes'} did not work as expected "
            f"and {_were(n)} stopped or reversed safely."
        )

    if figures.patches_due:
        on_time = figures.patches_on_time or 0
        due = figures.patches_due
        if due == 1:
            done = "was" if on_time else "was not"
            sentences.append(
                f"The one security or software update due this month {done} tested and approved on schedule."
            )
        else:
            sentences.append(
                f"Of {_number(due)} security or software updates due this month, "
                f"{_number(on_time) if on_time else 'none'} {_were(on_time)} tested and approved on schedule"
                f"{_share(on_time, due)}."
            )

    if figures.problems_investigated:
        n = figures.problems_investigated
        sentences.append(
            f"We are looking into the underlying cause of {_count(n, 'recurring issue')}, "
            "so the same fault does not keep coming back."
        )
    if figures.problems_solved:
        n = figures.problems_solved
        sentences.append(f"We removed the cause of {_count(n, 'recurring issue')}.")
    return sentences


def summary_text(figures: SummaryFigures) -> str:
    return " ".join(summary_sentences(figures))


def jargon_in(text: str) -> list[str]:
    """The jargon words `text` contains (empty for a good summary)."""
    return [word for word in JARGON if word in text]


def month_bounds_local(month: str) -> tuple[dt.date, dt.date]:
    """The first day of `month` and the first day of the next month (local calendar dates)."""
    year, number = (int(part) for part in month.split("-"))
    first = dt.date(year, number, 1)
    following = dt.date(year + (number == 12), number % 12 + 1, 1)
    return first, following
