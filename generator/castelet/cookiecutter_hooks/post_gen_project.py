#!/usr/bin/env python3
"""Add the shared skeleton, Terraform modules, Puppet environment and hieradata."""
import json
import sys
from pathlib import Path

REPO_DIR = Path({{ cookiecutter._repo_dir | tojson }})
sys.path.append(str(REPO_DIR.resolve().parents[1] / "generator"))  # a library checkout
try:
    from castelet.hooks import post_generate
except ImportError:
    sys.exit("castelet is not importable: pip install -e <library> (see README)")
sys.exit(post_generate(str(REPO_DIR), json.loads({{ cookiecutter | tojson | tojson }})))
