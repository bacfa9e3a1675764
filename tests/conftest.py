"""Every lane: the helpers of tests/support assert with pytest's rewriting, like the tests themselves
(registered here, before any test or lane conftest imports them)."""

import pytest

pytest.register_assert_rewrite("support")
