# Castelet: the only node definition. Every node includes the role class its hiera data
# names: `castelet::role_class` (Terraform's terraform.role_class, aliased in data/common.yaml).
# Packages are installed by castelet's apt provider (modules/castelet/lib/puppet/provider/
# package/castelet_apt.rb): Puppet's apt provider, putting in one apt-get call the packages whose
# prerequisites are all applied. Set here, at top scope, so that it reaches every class,
# stdlib's ensure_packages included.
Package {
  provider => 'castelet_apt',
}

node default {
  $role = $facts['castelet_role']
  if $role =~ Undef or $role == '' {
    fail(@(MSG/L))
      castelet: the fact 'castelet_role' is not set. cloud-init writes it to \
      /etc/facter/facts.d/castelet.yaml (castelet_role: <manifest role name>); \
      without it Castelet cannot tell which role this node has.
      | MSG
  }

  # common.yaml aliases it to terraform.role_class: an absent value comes out empty.
  $role_class = lookup('castelet::role_class', Optional[String], 'first', undef)
  if $role_class =~ Undef or $role_class == '' {
    fail(@("MSG"/L))
      castelet: the hiera key 'castelet::role_class' is empty for role '${role}': \
      data/terraform.yaml is missing or its terraform.role_class is not set \
      (Terraform writes it from the manifest role's puppet_class, e.g. castelet::role::lamp).
      | MSG
  }

  include $role_class
}
