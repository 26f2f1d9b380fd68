# Provider-free rendering of each instance's cloud-init user-data (Magic Castle's
# "configuration" step): admin account, Terraform hieradata, role fact, the castelet scripts and
# the castelet-bootstrap run. The Puppet environment itself is pushed by the provision step.

locals {
  environment_root = "/etc/puppet/code/environments/production"
  hieradata_path   = "${local.environment_root}/data/terraform.yaml"

  # Every file of the Puppet environment, sorted so the user-data is deterministic. A stale
  # data/terraform.yaml in the directory would clash with the one rendered here: skip it.
  # Documentation (*.md) stays in the deployment: Puppet never reads it.
  environment_files = sort([
    for f in fileset(var.puppet_environment_path, "**") : f if f != "data/terraform.yaml" && !endswith(f, ".md")
  ])

  environment_hash = sha256(join("\n", [
    for f in local.environment_files : "${f} ${filesha256("${var.puppet_environment_path}/${f}")}"
  ]))

  nodes = { for hostname, instance in var.instances : hostname => { role = instance.role } }

  # hostname => {volume name => {mount}}: what first boot knows. A cloud attaches volumes after
  # the instance exists, so their devices reach Puppet with the day-2 data (`hieradata`), and
  # the user-data does not depend on volume ids (its size is known at plan).
  boot_volumes = {
    for hostname in keys(var.instances) : hostname => {
      for key, volume in var.volumes : volume.name => { mount = volume.mount } if volume.instance == hostname
    }
  }

  # hostname => {volume name => {mount, device (only when known)}}
  node_volumes = {
    for hostname in keys(var.instances) : hostname => {
      for key, volume in var.volumes : volume.name => {
        for attr, value in {
          mount  = volume.mount
          device = lookup(var.volume_devices, key, null)
        } : attr => value if value != null
      } if volume.instance == hostname
    }
  }

  # hostname => mount point of the node's first volume in volume-name order (null: no volume),
  # the directory where applications keep their state (terraform.data_dir).
  data_dirs = {
    for hostname, volumes in local.boot_volumes : hostname => (
      length(volumes) > 0 ? volumes[sort(keys(volumes))[0]].mount : null
    )
  }

  # The blueprint's backups (terraform.backups) go to the nodes of one role: backups.role when
  # given, else the role of the first volume (by design key), else the first role; null elsewhere.
  backup_role = var.backups == null ? null : coalesce(
    var.backups.role,
    try(var.volumes[sort(keys(var.volumes))[0]].role, null),
    try(sort(distinct([for instance in values(var.instances) : instance.role]))[0], null),
    "-",
  )

  # Hiera interpolates %{...} in every string it reads: text from terraform.tfvars (a key's
  # comment, a project name) must reach Puppet as written, never as a lookup.
  hiera_percent = "%%{literal('%')}{"
  settings      = { for name, value in var.settings : name => replace(value, "%%{", local.hiera_percent) }
  public_keys   = [for key in var.public_keys : replace(trimspace(key), "%%{", local.hiera_percent)]
  # Canonical (as the design's firewall rules) and each once; a CIDR holds no `%`.
  client_cidrs = distinct([for cidr in var.client_cidrs : cidrsubnet(cidr, 0, 0)])
  backups = var.backups == null ? null : {
    paths     = [for path in var.backups.paths : replace(path, "%%{", local.hiera_percent)]
    databases = [for db in var.backups.databases : { for k, v in db : k => replace(v, "%%{", local.hiera_percent) }]
  }

  # role => host firewall rules for Puppet: a public service is open to 0.0.0.0/0 and ::/0, an
  # admin one to admin_cidr, a clients one to each client network (one rule each, from the
  # design); SSH from admin_cidr is added by Puppet itself (lock-out guard).
  puppet_firewall_rules = {
    for role, rules in var.firewall_rules : role => flatten([
      for rule in rules : rule.exposure == "public" ? [
        { name = rule.name, port = rule.port, protocol = rule.protocol, source = "0.0.0.0/0" },
        { name = "${rule.name}-ipv6", port = rule.port, protocol = rule.protocol, source = "::/0" },
        ] : [
        { name = rule.name, port = rule.port, protocol = rule.protocol, source = rule.cidr },
      ] if rule.name != "ssh"
    ])
  }

  # The one writer of deployment data for Puppet (Magic Castle's terraform_data.yaml): the
  # library's hiera data aliases these keys (%{alias('terraform.<key>')}).
  terraform_data = {
    for hostname, instance in var.instances : hostname => {
      deployment     = var.name
      domain         = replace(var.domain, "%%{", local.hiera_percent)
      admin_email    = replace(var.admin_email, "%%{", local.hiera_percent)
      admin_user     = var.admin_user
      admin_users    = { (var.admin_user) = { ssh_keys = local.public_keys } }
      admin_cidr     = var.admin_cidr
      client_cidrs   = local.client_cidrs
      timezone       = replace(var.timezone, "%%{", local.hiera_percent)
      settings       = local.settings
      nodes          = local.nodes
      role           = instance.role
      role_class     = instance.puppet_class
      firewall_rules = lookup(local.puppet_firewall_rules, instance.role, [])
      data_dir       = local.data_dirs[hostname] == null ? null : replace(local.data_dirs[hostname], "%%{", local.hiera_percent)
      backups        = instance.role == local.backup_role ? local.backups : null
    }
  }
  hieradata = {
    for hostname, data in local.terraform_data : hostname => yamlencode({
      terraform = merge(data, { volumes = local.node_volumes[hostname] })
    })
  }
  boot_hieradata = {
    for hostname, data in local.terraform_data : hostname => yamlencode({
      terraform = merge(data, { volumes = local.boot_volumes[hostname] })
    })
  }

  bootstrap_conf = join("\n", [
    "# Written by Terraform (castelet common/configuration); read by castelet-bootstrap.",
    "CASTELET_PACKAGES=\"${join(" ", var.puppet_packages)}\"",
    "",
  ])

  script_files = [
    {
      path        = "/usr/local/lib/castelet/castelet-status.sh"
      content     = file("${path.module}/files/castelet-status.sh")
      permissions = "0644"
    },
    {
      path        = "/usr/local/sbin/castelet-bootstrap"
      content     = file("${path.module}/files/castelet-bootstrap.sh")
      permissions = "0755"
    },
    {
      path        = "/usr/local/sbin/castelet-puppet-apply"
      content     = file("${path.module}/files/castelet-puppet-apply.sh")
      permissions = "0755"
    },
    {
      path        = "/usr/local/sbin/castelet-secrets"
      content     = file("${path.module}/files/castelet-secrets.sh")
      permissions = "0700"
    },
    {
      path        = "/usr/local/sbin/castelet-install-environment"
      content     = file("${path.module}/files/castelet-install-environment.sh")
      permissions = "0755"
    },
    {
      path        = "/usr/local/sbin/castelet-volumes"
      content     = file("${path.module}/files/castelet-volumes.py")
      permissions = "0755"
    },
  ]

  cloud_config = {
    for hostname, instance in var.instances : hostname => {
      hostname         = hostname
      manage_etc_hosts = true
      disable_root     = true
      ssh_pwauth       = false
      # cloud-init's schema refuses an empty ssh_authorized_keys (LXD deployments may have no key)
      users = [merge({
        name        = var.admin_user
        gecos       = "Castelet administrator"
        shell       = "/bin/bash"
        sudo        = "ALL=(ALL) NOPASSWD:ALL"
        lock_passwd = true
        }, length(var.public_keys) == 0 ? {} : {
        ssh_authorized_keys = [for k in var.public_keys : trimspace(k)]
      })]
      # The Puppet environment is not in user-data: the provision step pushes it (SSH, or
      # `lxc exec` locally), so user-data stays a few KiB whatever the blueprint (Nova's limit
      # is 64 KiB, and some metadata services fail to serve gzipped user-data).
      write_files = concat(
        [
          {
            path        = local.hieradata_path
            content     = local.boot_hieradata[hostname]
            owner       = "root:root"
            permissions = "0644"
          },
          {
            path        = "/etc/castelet/bootstrap.conf"
            content     = local.bootstrap_conf
            owner       = "root:root"
            permissions = "0644"
          },
          {
            path        = "/etc/facter/facts.d/castelet.yaml"
            content     = yamlencode({ castelet_role = instance.role })
            owner       = "root:root"
            permissions = "0644"
          },
        ],
        # gz+b64 is decoded by cloud-init itself (not the metadata service): it halves the scripts.
        [for s in local.script_files : merge(s, { owner = "root:root", encoding = "gz+b64", content = base64gzip(s.content) })],
      )
      runcmd = [["/usr/local/sbin/castelet-bootstrap"]]
    }
  }

  user_data = {
    for hostname, config in local.cloud_config : hostname => "#cloud-config\n${yamlencode(config)}"
  }
}
