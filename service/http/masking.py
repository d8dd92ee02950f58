"""Timelines as readers without the operator token see them (``RDV_LOG_PII=false``): nothing
that names or reaches the caller.

* what the caller said (turn texts) and what Vapi wrote down (transcript, summary, last
  messages) is masked word by word, keeping each word's first letter and length and hiding
  every digit, so dictated numbers, spelt names and free text are gone but the shape stays;
* the assistant's own sentences (replies, slot messages) keep their wording: only the
  caller's names (known from the conversation and its bookings) and phone numbers in them are
  masked, lengths kept (``Jean`` → ``J***``);
* name fields like the logs (``J*** D***``), phone fields like everywhere (``+336******78``),
  and the recording's URL is withheld.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from service.engine.model import Conversation
from service.phones import mask
from telemetry.logs import mask_name, mask_phone

PHONE_KEYS = frozenset({"caller_phone", "phone"})
NAME_KEYS = frozenset({"name", "first_name", "last_name", "patient_first", "patient_last", "patient"})
SPOKEN_KEYS = frozenset({"message"})  # assistant sentences inside events (SlotsSent)
REPORT_FREE_TEXT = ("summary", "transcript")
HIDDEN = "[masked]"
_WORD = re.compile(r"\w+")


def mask_words(text: str) -> str:
    """Free text with each word reduced to its first letter (digits all hidden), lengths and
    punctuation kept: ``"06 12 Jean"`` → ``"** ** J***"``."""

    def hide(match: re.Match[str]) -> str:
        word = match.group(0)
        if word[0].isdigit():
            return "*" * len(word)
        return word[0] + "".join("*" if c.isalnum() else c for c in word[1:])

    return _WORD.sub(hide, text)


def _hide_word(match: re.Match[str]) -> str:
    word = match.group(0)
    return word[0] + "*" * (len(word) - 1)


class Masker:
    """Masks one conversation's timeline, knowing the caller's names."""

    def __init__(self, names: Iterable[str]) -> None:
        words = sorted({w for n in names for w in _WORD.findall(n) if len(w) > 1}, key=len, reverse=True)
        self._names = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)
            if words else None
        )

    def spoken(self, text: str) -> str:
        """An assistant sentence with the caller's names and phone numbers masked."""
        if self._names is not None:
            text = self._names.sub(_hide_word, text)
        return mask_phone(text)

    def value(self, key: str, value: Any) -> Any:
        """One field of an event, a booking or the conversation, masked by what it holds."""
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(key, v) for v in value]
        if not isinstance(value, str):
            return value
        if key in PHONE_KEYS:
            return mask(value)
        if key in NAME_KEYS:
            return mask_name(value)
        if key in SPOKEN_KEYS:
            return self.spoken(value)
        return value

    def report(self, report: dict[str, Any]) -> dict[str, Any]:
        """Vapi's end-of-call report: free text masked word by word, recording withheld."""
        out = dict(report)
        for key in REPORT_FREE_TEXT:
            if isinstance(out.get(key), str):
                out[key] = mask_words(out[key])
        if "recordingUrl" in out:
            out["recordingUrl"] = HIDDEN
        if isinstance(out.get("messages"), list):
            out["messages"] = [
                {**m, "message": mask_words(m["message"])} if isinstance(m.get("message"), str) else m
                for m in out["messages"] if isinstance(m, dict)
            ]
        return out

    def timeline(self, timeline: Mapping[str, Any]) -> dict[str, Any]:
        """The whole timeline answer, masked."""
        out = {k: self.value(k, v) for k, v in timeline.items() if k not in ("turns", "events", "call_report")}
        out["turns"] = [
            {**t, "text": mask_words(t["text"]), "reply": self.spoken(t["reply"])} for t in timeline.get("turns", [])
        ]
        out["events"] = [{**e, "data": self.value("data", e["data"])} for e in timeline.get("events", [])]
        report = timeline.get("call_report")
        out["call_report"] = self.report(report) if isinstance(report, dict) else report
        return out


def caller_names(conv: Conversation, timeline: Mapping[str, Any]) -> list[str]:
    """Every name of the caller the conversation knows: parsed, booked, found, confirmed."""
    ctx = conv.context
    names = [n for n in (ctx.first_name, ctx.last_name, ctx.patient_first, ctx.patient_last) if n]
    if ctx.lookup is not None and ctx.lookup.patient:
        names.append(ctx.lookup.patient)
    names += [ref.name for ref in (ctx.booked, ctx.modifying, ctx.target, *ctx.found) if ref is not None and ref.name]
    names += [b["name"] for b in timeline.get("bookings", []) if isinstance(b.get("name"), str)]
    names += [e["data"]["name"] for e in timeline.get("events", [])
              if isinstance(e.get("data"), dict) and isinstance(e["data"].get("name"), str)]
    return names


def masked_timeline(conv: Conversation, timeline: Mapping[str, Any]) -> dict[str, Any]:
    """``timeline`` of ``conv`` as a reader without the operator token may see it."""
    return Masker(caller_names(conv, timeline)).timeline(timeline)
