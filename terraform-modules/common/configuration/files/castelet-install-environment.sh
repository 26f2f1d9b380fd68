#!/bin/bash
# castelet-install-environment STAGING_DIR: replace the production Puppet environment with the
# copy that Terraform pushed to STAGING_DIR (day 2, common/provision).
#
# STAGING_DIR holds `environment/` (the deployment's puppet/ directory) and `terraform.yaml`
# (this node's Terraform hieradata, installed as data/terraform.yaml). The swap is done with
# renames so a half-copied environment is never applied.
set -eu

staging="${1:?usage: castelet-install-environment STAGING_DIR}"
CASTELET_ENVIRONMENT_DIR="${CASTELET_ENVIRONMENT_DIR:-/etc/puppet/code/environments/production}"

if [ ! -d "${staging}/environment" ] || [ ! -f "${staging}/terraform.yaml" ]; then
    echo "castelet-install-environment: ${staging} must contain environment/ and terraform.yaml" >&2
    exit 64
fi

new="${CASTELET_ENVIRONMENT_DIR}.castelet-new"
old="${CASTELET_ENVIRONMENT_DIR}.castelet-old"
rm -rf "$new" "$old"
mkdir -p "$(dirname "$CASTELET_ENVIRONMENT_DIR")"
cp -R "${staging}/environment" "$new"
mkdir -p "${new}/data"
cp "${staging}/terraform.yaml" "${new}/data/terraform.yaml"
chmod -R u=rwX,go=rX "$new"
if [ "$(id -u)" -eq 0 ]; then
    chown -R root:root "$new"
fi
if [ -e "$CASTELET_ENVIRONMENT_DIR" ]; then
    mv "$CASTELET_ENVIRONMENT_DIR" "$old"
fi
mv "$new" "$CASTELET_ENVIRONMENT_DIR"
rm -rf "$old"
