"""The ligatures of French, written out wherever text is compared: « œ » and « æ » carry no accent to take away
(Unicode gives them no decomposition), so « cœur » and « coeur », typed on most keyboards, meet only this way."""

from __future__ import annotations

LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE"})
