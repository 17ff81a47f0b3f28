"""The console's form base class."""

from __future__ import annotations

from django import forms


class ConsoleForm(forms.Form):
    """A form whose over-long input is refused with a message, never cut.

    Django renders `maxlength` on text inputs, and browsers then silently truncate what is
    typed or pasted: a 300-character name arrives as its first 100 characters and is saved
    as if that were what the user meant. Without the attribute the field's own max_length
    validator refuses the whole value and says by how much it is too long.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.pop("maxlength", None)
