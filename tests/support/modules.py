"""The collection's modules run in-process, the way Ansible runs them."""

from __future__ import annotations

import contextlib
import json
from types import ModuleType

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(
    module: ModuleType, capsys: pytest.CaptureFixture, *within: contextlib.AbstractContextManager, **args
) -> tuple[int, dict]:
    """``module.main()`` with ``args`` as its arguments, inside ``within`` (a deadline): the module's exit
    status and the JSON result it printed."""
    with patch_module_args(args), contextlib.ExitStack() as stack:
        for context in within:
            stack.enter_context(context)
        with pytest.raises(SystemExit) as exited:
            module.main()
    return exited.value.code, json.loads(capsys.readouterr().out)
