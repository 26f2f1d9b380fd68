# Day 2 (Magic Castle's "provision" step): when the Puppet environment or a node's hieradata
# changes, push them over SSH and re-run Puppet. Instances themselves are never replaced for a
# configuration change (the cloud modules ignore user_data changes).

locals {
  staging     = "/home/${var.admin_user}/.castelet-staging"
  private_key = var.ssh_private_key_file == null ? null : file(pathexpand(var.ssh_private_key_file))
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
