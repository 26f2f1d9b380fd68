"""A local cloud for Castelet: LXD with a Debian 12 cloud image and the real terraform-provider-lxd.

`castelet local setup` prepares it, idempotently; `status` reports it; `teardown` removes what
setup created (not the LXD package). See docs/local-cloud.md.
"""
