"""A local cloud for Castelet: LXD with Debian cloud images (13 by default, 12 on request) and
the real terraform-provider-lxd.

`castelet local setup` prepares it, idempotently; `status` reports it; `teardown` removes what
setup created (not the LXD package). See docs/local-cloud.md.
"""
