"""Stand-in for the get-pip.py that ansible-test downloads to put pip into its sanity venvs.

ansible-test creates every sanity virtual environment without pip and bootstraps pip with a
get-pip script it fetches from its own download site, caching it as
~/.ansible/test/cache/get_pip_<version>.py; when that file exists nothing is fetched (its own
error message says to save the script there by hand). tools/sanity.sh writes this file there,
with PIP_WHEEL set to a pip wheel downloaded from PyPI.

Called the way ansible-test calls get-pip.py (through its quiet_pip.py, which runs this module
as __main__): the arguments are pip install arguments (`pip==24.2 --no-setuptools --no-wheel
--disable-pip-version-check`); --no-setuptools and --no-wheel are get-pip's own options: without
them get-pip also installs setuptools and wheel.
"""

import os
import sys

PIP_WHEEL = "@PIP_WHEEL@"


def main():
    args = sys.argv[1:]
    extra = []
    if "--no-setuptools" not in args:
        extra.append("setuptools")
    if "--no-wheel" not in args:
        extra.append("wheel")
    args = [arg for arg in args if arg not in ("--no-setuptools", "--no-wheel")]

    # pip runs from its wheel (a supported way to run pip) and installs itself from the same
    # wheel's folder first, from the index only what that folder does not have.
    sys.path.insert(0, PIP_WHEEL)
    from pip._internal.cli.main import main as pip_main

    find_links = ["--find-links", os.path.dirname(PIP_WHEEL)]
    return pip_main(["install", "--upgrade", "--force-reinstall", *find_links, *args, *extra])


if __name__ == "__main__":
    sys.exit(main())
