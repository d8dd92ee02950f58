"""What the conversation has learned: each turn's extraction merged into the context.

Whatever the caller says is kept, whenever they say it: the intent, their name, the patient's
name and relation when the appointment is for someone else, the preference, a phone number.
A later statement of the same kind replaces the earlier one ("jeudi", later "vendredi" →
Friday; "Inès" then "Inès Brossard"); exclusions accumulate ("pas lundi", later "pas le
matin" → neither); a day wanted again is no longer excluded, a day excluded no longer wanted.
"""

from __future__ import annotations

from typing import Any, TypeVar

from service.engine.frozen import replace
from service.engine.model import Context, Preference
from service.engine.nlu.extract import Extraction, PersonName

KEPT_INTENTS = frozenset({"book", "cancel", "modify"})
T = TypeVar("T")


def _days_given(pref: Preference) -> bool:
    return pref.day is not None or bool(pref.days) or bool(pref.weekdays)


def _span_given(pref: Preference) -> bool:
    return pref.period != "any" or pref.after is not None or pref.before is not None or bool(pref.windows)


def _no_preference(pref: Preference) -> bool:
    """"Pas de préférence", "peu importe": nothing wanted, nothing excluded."""
    return Preference(asap=pref.asap) == pref


def _union(old: tuple[T, ...], new: tuple[T, ...]) -> tuple[T, ...]:
    return old + tuple(v for v in new if v not in old)


def merge_preference(old: Preference | None, new: Preference) -> Preference:
    """``new`` stated after ``old``: wanted days and wanted spans replace theirs, exclusions
    add up, date bounds replace theirs; "peu importe" clears the wanted span of the day."""
    if old is None:
        return new
    days_from = new if _days_given(new) else old
    span_from = new if _span_given(new) or _no_preference(new) else old
    not_days = _union(old.not_days, new.not_days)
    not_weekdays = _union(old.not_weekdays, new.not_weekdays)
    if _days_given(new):
        # Asking for a day again lifts its earlier exclusion (unless this very turn excludes it).
        dates = {d for d in (new.day, *new.days) if d is not None}
        lifted = (set(new.weekdays) | {d.weekday() for d in dates}) - set(new.not_weekdays)
        not_days = tuple(d for d in not_days if d not in dates or d in new.not_days)
        not_weekdays = tuple(w for w in not_weekdays if w not in lifted)
    day = days_from.day
    # Excluding a day drops it from what is wanted.
    if day is not None and (day in not_days or day.weekday() in not_weekdays):
        day = None
    return Preference(
        period=span_from.period,
        day=day,
        after=span_from.after,
        before=span_from.before,
        days=tuple(d for d in days_from.days if d not in not_days and d.weekday() not in not_weekdays),
        weekdays=tuple(w for w in days_from.weekdays if w not in not_weekdays),
        not_days=not_days,
        not_weekdays=not_weekdays,
        windows=span_from.windows,
        not_windows=_union(old.not_windows, new.not_windows),
        from_day=new.from_day or old.from_day,
        until_day=new.until_day or old.until_day,
        asap=new.asap or (old.asap and not _days_given(new) and not _span_given(new)),
    )


def meaningful(pref: Preference | None) -> bool:
    """True when a preference says something about when (not a bare "pas de préférence")."""
    return pref is not None and not _no_preference(pref)


def merge_person(first: str | None, last: str | None, new: PersonName) -> tuple[str | None, str | None]:
    """A name heard after (``first``, ``last``): both parts replace both; a last name alone
    completes a first name alone ("Inès" … "Brossard"), and the other way round."""
    if new.first and new.last:
        return new.first, new.last
    if new.last:
        return (first if first and not last else None), new.last
    if new.first:
        return new.first, (last if last and not first else None)
    return first, last


def asking_patient(ctx: Context) -> bool:
    """True when the name still missing is the patient's (someone else's appointment)."""
    return ctx.for_someone_else and not ctx.patient_last


def learn(ctx: Context, x: Extraction, *, name_asked: bool, keep_preference: bool = True) -> Context:
    """``ctx`` with what ``x`` taught. ``name_asked``: the turn answers a name question, so a
    name alone is the patient's when it is the patient's name that is missing."""
    changes: dict[str, Any] = {}
    if x.intent in KEPT_INTENTS:
        changes["intent"] = x.intent
    relation, patient_first, patient_last = ctx.relation, ctx.patient_first, ctx.patient_last
    if x.relation is not None and x.relation != relation:
        # A new patient: the previous one's name no longer applies.
        relation, patient_first, patient_last = x.relation, None, None
        changes.update(relation=relation, patient_first=None, patient_last=None)
    if x.patient is not None:
        patient_first, patient_last = merge_person(patient_first, patient_last, x.patient)
        relation = relation or x.relation or "autre"
        changes.update(patient_first=patient_first, patient_last=patient_last, relation=relation)
    if x.name is not None:
        asking = (relation is not None or patient_last is not None or patient_first is not None) and not patient_last
        if name_asked and asking and x.patient is None:  # asking_patient(), on what is learned so far
            first, last = merge_person(patient_first, patient_last, x.name)
            changes.update(patient_first=first, patient_last=last)
        else:
            first, last = merge_person(ctx.first_name, ctx.last_name, x.name)
            changes.update(first_name=first, last_name=last)
    if keep_preference and x.preference is not None:
        changes["preference"] = merge_preference(ctx.preference, x.preference)
    if x.phone is not None:
        changes["phone"] = x.phone
    return replace(ctx, **changes) if changes else ctx
