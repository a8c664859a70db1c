"""The write-only secret widget: a password input (a textarea for multi-line secrets such as PEM
keys) that is always rendered empty, and a checkbox.

Its template is ``authhero_encrypt/widgets/write_only_secret.html``; the admin's stylesheet
``authhero_encrypt/admin.css`` lays the two out on one line.
"""

from __future__ import annotations

from typing import Any

from django import forms

__all__ = ["WriteOnlySecretWidget"]


class WriteOnlySecretWidget(forms.MultiWidget):
    """A password input that never renders a value, and a "clear" checkbox beside it.

    With ``multiline`` (text fields: PEM keys, certificate bundles, notes) the input is a
    textarea, which is never rendered with a value either (see :meth:`get_context`).
    """

    template_name = "authhero_encrypt/widgets/write_only_secret.html"
    # One label, for the password input; the checkbox carries its own.
    use_fieldset = False

    def __init__(self, attrs: dict[str, Any] | None = None, *, multiline: bool = False) -> None:
        secret: forms.Widget
        if multiline:
            secret = forms.Textarea(
                attrs={
                    "autocomplete": "off",
                    "spellcheck": "false",
                    "class": "vLargeTextField authhero-secret-text",
                    "rows": 6,
                }
            )
        else:
            secret = forms.PasswordInput(
                attrs={"autocomplete": "new-password", "class": "vTextField"},
                render_value=False,
            )
        super().__init__({"": secret, "clear": forms.CheckboxInput()}, attrs)
        self.multiline = multiline
        self.can_clear = True

    def decompress(self, value: Any) -> list[Any]:
        return [None, False]

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0" if id_ else ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        # Whatever comes in (the plaintext as initial, or what was typed before an error), the
        # password input is rendered empty; only the checkbox keeps its state.
        clear = bool(value[1]) if isinstance(value, (list, tuple)) and len(value) > 1 else False
        context = super().get_context(name, [None, clear], attrs)
        context["widget"]["can_clear"] = self.can_clear
        return context
