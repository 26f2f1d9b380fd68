# Day 2 (Magic Castle's "provision" step): when the Puppet environment or a node's hieradata
# changes, push them over SSH and re-run Puppet. Instances themselves are never replaced for a
# configuration change (the cloud modules ignore user_data changes).

locals {
  staging     = "/home/${var.admin_user}/.castelet-staging"
  private_key = var.ssh_private_key_file == null ? null : file(pathexpand(var.ssh_private_key_file))

  # Pinned host keys: the recorded key only while the instance is the one it was learned from
  # (a replaced instance has new keys: trusted on first use, learned again after the apply).
  pinned = {
    for hostname, instance in var.instances : hostname => (
      instance.id != null && try(var.host_keys[hostname].id, null) == instance.id ? try(var.host_keys[hostname].key, null) : null
    )
  }
  # The jump host is a directly reached instance: pin it by its address.
  pinned_by_address = {
    for hostname, instance in var.instances : instance.address => local.pinned[hostname]
    if instance.bastion_host == null && local.pinned[hostname] != null
  }
}

resource "terraform_data" "puppet" {
  for_each = var.instances

  triggers_replace = {
    environment_hash = var.environment_hash
    hieradata        = var.hieradata[each.key]
    instance         = coalesce(each.value.id, each.value.address)
  }

  connection {
    type                = "ssh"
    host                = each.value.address
    user                = var.admin_user
    private_key         = local.private_key
    agent               = local.private_key == null
    timeout             = var.connection_timeout
    bastion_host        = each.value.bastion_host
    bastion_user        = var.admin_user
    bastion_private_key = local.private_key
    host_key            = local.pinned[each.key]
    bastion_host_key    = each.value.bastion_host == null ? null : lookup(local.pinned_by_address, each.value.bastion_host, null)
  }

  # 1. Wait for the first boot to finish so apply returns only once the instance has converged.
  #    A failed first boot is reported here but not fatal: step 3 retries it.
  provisioner "remote-exec" {
    inline = [
      "cloud-init status --wait >/dev/null 2>&1 || { echo 'castelet: cloud-init reported an error:'; cat /var/lib/castelet/status 2>/dev/null || true; }",
      "rm -rf '${local.staging}' && mkdir -p '${local.staging}/environment'",
    ]
  }

  # 2. Push the environment and this node's hieradata to a staging directory.
  provisioner "file" {
    source      = "${var.puppet_environment_path}/"
    destination = "${local.staging}/environment"
  }

  provisioner "file" {
    content     = var.hieradata[each.key]
    destination = "${local.staging}/terraform.yaml"
  }

  # 3. Install it as the production environment and apply it (or finish a failed first boot).
  provisioner "remote-exec" {
    inline = [
      "sudo /usr/local/sbin/castelet-install-environment '${local.staging}' && rm -rf '${local.staging}' && if [ -e /var/lib/castelet/bootstrap.done ]; then sudo /usr/local/sbin/castelet-puppet-apply; else sudo /usr/local/sbin/castelet-bootstrap; fi",
    ]
  }
}
