from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.validators import MaxLengthValidator


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django sets only the widget's maxlength here: a longer username went on to the lockout table (varchar
        # 255), a 500 on PostgreSQL. No account has one, so it is a field error and never reaches authenticate().
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Sign in", css_class="w-100"))


class ClinicPasswordChangeForm(PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Change password"))


def parse_id(text: str) -> int | None:
    """A database id as typed or posted, or None: ASCII digits only ("²" is a digit to str.isdigit(), and int()
    refuses it) that fit in a bigint."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
