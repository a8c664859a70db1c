"""The status report as people and scripts read it: an aligned text table with the key
section and advice, or the JSON object documented in docs/encryption_status.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from authhero_encrypt.conf import conf
from authhero_encrypt.envelope.format import AWS_KMS, LOCAL
from authhero_encrypt.inventory import NO_KEY_ID
from authhero_encrypt.status.envelopes import envelope_kek
from authhero_encrypt.status.report import KeyStatus, StatusReport, Tally

__all__ = ["render_json", "render_text"]

Write = Callable[[str], None]


def render_json(report: StatusReport) -> str:
    """The report as ``--format json`` prints it."""
    return json.dumps(report.as_json(), indent=2, cls=DjangoJSONEncoder)


def render_text(report: StatusReport) -> list[str]:
    """The report as the lines of its text form, the left-out models last."""
    lines: list[str] = []
    _text(report, lines.append)
    lines.extend(f"Left out {e.model_label}: {e.reason}." for e in report.excluded)
    return lines


def _text(report: StatusReport, write: Write) -> None:
    tallies, keys, verify = report.tallies, report.keys, report.verified
    totals = report.totals()
    if not tallies:
        write("No encrypted fields found in the selected models.")
    else:
        write(f"Encrypted values in database {report.database!r}:\n")
        # "of which empty" counts the plaintext values that are "": they are in Plaintext too.
        # "No value": SQL NULL, or for a JSON path no string there (key missing, null, ...).
        header = ["Model", "Field", "Path", "Encrypted", "Plaintext", "of which empty"]
        header.append("No value")
        if verify:
            header.append("Failed")
        header.append("Encrypted, by key id")
        rows = [header]
        for t in tallies:
            row = [
                t.target.model_label,
                t.target.field.name,
                t.target.path_label or "-",
                *(str(n) for n in (t.encrypted, t.plaintext, t.empty, t.null)),
            ]
            if verify:
                row.append(str(t.failed))
            row.append(_by_key_text(t.by_key))
            rows.append(row)
        total_row = [f"Total ({len(tallies)} fields)", "", ""]
        total_row += [str(totals[k]) for k in ("encrypted", "plaintext", "empty", "no_value")]
        if verify:
            total_row.append(str(totals["verify"]["failed"]))
        total_row.append(_by_key_text(Counter(totals["by_key"])))
        rows.append(total_row)
        numeric = range(3, len(header) - 1)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for n, r in enumerate(rows):
            if n == len(rows) - 1:
                write("  ".join("-" * w for w in widths[:-1]))
            cells = [
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ]
            write("  ".join(cells).rstrip())
    write("")
    _key_text(keys, write)
    if any(t.target.is_envelope for t in tallies):
        kek = envelope_kek(keys.ring)
        if kek["provider"] is None:
            write(f"Envelope: the provider setting is invalid: {kek['error']}")
        else:
            key_id = kek["key_id"]
            if key_id is None:
                write(f"Envelope: {kek['provider']} has no key to wrap new data keys with.")
            else:
                shown = key_id if key_id == NO_KEY_ID else f"id {key_id}"
                write(f"Envelope: new data keys are wrapped by {kek['provider']} key {shown}.")
    unreadable = totals["unreadable"]
    if unreadable:
        write(
            f"{unreadable} encrypted value(s) cannot be read with the configured keys "
            "(no key, invalid key settings, a key id that is not configured, or a malformed "
            "value)."
        )
    if verify:
        _verify_text(tallies, keys, write)
    _active_key_text(report, write)
    _advice(totals, keys, write)
    _index_text(report, write)


def _active_key_text(report: StatusReport, write: Write) -> None:
    other, unattributed = report.off_active()
    if not other and not unattributed:
        return
    write("")
    if other:
        write(
            f"{other} encrypted value(s) are under another key than the active one: run "
            "`manage.py encryption_migrate` before a key is dropped."
        )
    if unattributed:
        write(
            f"{unattributed} encrypted value(s) have no key id, and fallback keys are "
            "configured: only --verify tells whether the active key opens them."
        )


def _key_text(keys: KeyStatus, write: Write) -> None:
    ring = keys.ring
    if ring is None:
        write("Key: the key settings are invalid, so nothing can be encrypted or read:")
        for error in keys.errors:
            write(f"  - {error}")
        return
    if ring.active is None:
        write("Key: ENCRYPTION_KEY is not set; new values are stored as plaintext.")
    else:
        active_id = ring.active.id
        written = f"with key id {active_id!r}" if active_id else f"without one, {NO_KEY_ID}"
        write(f"Key: configured; new values are written {written}.")
    write(f"  {len(ring.fallbacks)} fallback key(s).")
    for role, key in keys.roles():
        write(f"  {role:<8}  key id {key.id or NO_KEY_ID:<16}  fingerprint {key.fingerprint}")


def _verify_text(tallies: Sequence[Tally], keys: KeyStatus, write: Write) -> None:
    checked = sum(t.checked for t in tallies)
    failed = [t for t in tallies if t.failed]
    write("")
    write(
        f"Verify: decrypted {checked} encrypted value(s); {sum(t.failed for t in failed)} failed."
    )
    for t in failed:
        pks = ", ".join(repr(pk) for pk in t.failed_pks)
        more = ", ..." if t.failed > len(t.failed_pks) else ""
        write(f"  {t.target}: {t.failed} failed (primary keys {pks}{more}): {t.first_error}")
    opened: Counter[str] = Counter()
    for t in tallies:
        opened.update(t.untagged_opened_by)
    if opened:
        names = {key.fingerprint: f"{role} key {key.fingerprint}" for role, key in keys.roles()}
        parts = [f"{names.get(fp, fp)}: {n}" for fp, n in opened.most_common()]
        write(f"  Values without a key id open under: {'; '.join(parts)}.")


def _advice(totals: dict[str, Any], keys: KeyStatus, write: Write) -> None:
    plaintext = totals["plaintext"]
    if not plaintext:
        _strict_mode_advice(totals, keys, write)
        return
    write("")
    values = f"{plaintext} value{'s are' if plaintext != 1 else ' is'} still stored as plaintext"
    if keys.ring is None:
        write(
            f"{values}. Fix the key settings above first; then run `manage.py "
            "encryption_migrate` to encrypt them."
        )
    elif keys.ring.active is None:
        write(
            f"{values}, and ENCRYPTION_KEY is not set, so nothing is encrypted yet. Set "
            "ENCRYPTION_KEY, then run `manage.py encryption_migrate` to encrypt them."
        )
    else:
        write(
            f"{values}. Each is encrypted the next time its row is saved; run `manage.py "
            "encryption_migrate` to encrypt them all now."
        )
    if conf.ENCRYPTION_REJECT_PLAINTEXT:
        write(
            "Strict mode is on (ENCRYPTION_REJECT_PLAINTEXT): reading those values raises "
            "DecryptionError until they are encrypted."
        )


def _strict_mode_advice(totals: dict[str, Any], keys: KeyStatus, write: Write) -> None:
    # The other half of check W005, which cannot scan tables: say when strict mode can go on.
    if not totals["encrypted"] or keys.ring is None or keys.ring.active is None:
        return
    if conf.ENCRYPTION_REJECT_PLAINTEXT is True:
        return
    write("")
    write(
        "No plaintext is left in the fields above. Set ENCRYPTION_REJECT_PLAINTEXT = True "
        "(strict mode) so that a value stored without the enc:v1:/env:v1: prefix is refused "
        "when read instead of being taken as the secret."
    )


def _by_key_text(by_key: Counter[str]) -> str:
    # Every label is a key id, NO_KEY_ID or MALFORMED, an envelope one prefixed with its
    # provider: never other text from a row (see key_label).
    return ", ".join(f"{_label_text(label)}: {n}" for label, n in sorted(by_key.items()))


def _label_text(label: str) -> str:
    provider, sep, key_id = label.partition(":")
    if sep and provider in (LOCAL, AWS_KMS):
        return f"{provider} {key_id}"  # "local 2026-06", "local (no key id)"
    return label


def _index_text(report: StatusReport, write: Write) -> None:
    """One row per blind index column, the leakage warnings and what to run."""
    if not report.indexes:
        return
    write("")
    write("Blind indexes:")
    header = ["Index column", "Key", "With value", "Filled", "Missing", "Stale", "Orphaned"]
    header += ["Mismatched"] if report.verified else []
    header += ["Distinct", "Largest", "Tags, by key id"]
    rows = [header]
    for t in report.indexes:
        share = t.largest_share
        row = [f"{t.index.model._meta.label}.{t.index.name}", t.expected or "(none)"]
        row += [str(n) for n in (t.with_value, t.filled, t.missing, t.stale, t.orphaned)]
        row += [str(t.mismatched)] if report.verified else []
        row += [str(t.distinct), f"{share:.0%}"] if share is not None else ["-", "-"]
        row.append(", ".join(f"{k}: {n}" for k, n in sorted(t.by_key.items())) or "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric = range(2, len(header) - 1)
    for r in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        write("  ".join(cells).rstrip())
    for t in report.indexes:
        if t.near_boolean:
            write(
                f"Warning: {t.index.label()} has {t.distinct} distinct tag(s) over {t.filled} "
                f"rows, the largest group {t.largest_share or 0:.0%} of them: near-boolean "
                "data. Equal values have equal tags, so the tags all but show each row's value "
                "to whoever reads the table; consider not indexing it."
            )
    totals = report.index_totals()
    if totals["missing"] or totals["stale"] or totals["orphaned"]:
        write(
            f"{totals['missing']} tag(s) missing, {totals['stale']} not under their column's "
            f"key, {totals['orphaned']} on rows without a value: run `manage.py "
            "encryption_migrate`."
        )
    if totals.get("mismatched"):
        write(
            f"{totals['mismatched']} tag(s) do not match their value (a normalizer changed, or "
            "a row written by hand): run `manage.py encryption_migrate`, which recomputes them."
        )
