# Castelet: the only node definition. Every node includes the role class its hiera data
# names: `castelet::role_class`, from `data/roles/<castelet_role fact>.yaml`.
node default {
  $role = $facts['castelet_role']
  if $role =~ Undef or $role == '' {
    fail(@(MSG/L))
      castelet: the fact 'castelet_role' is not set. cloud-init writes it to \
      /etc/facter/facts.d/castelet.yaml (castelet_role: <manifest role name>); \
      without it Castelet cannot tell which role this node has.
      | MSG
  }

  $role_class = lookup('castelet::role_class', Optional[String[1]], 'first', undef)
  if $role_class =~ Undef {
    fail(@("MSG"/L))
      castelet: the hiera key 'castelet::role_class' is not set for role '${role}': \
      data/roles/${role}.yaml is missing or does not name the role class \
      (e.g. castelet::role_class: castelet::role::lamp).
      | MSG
  }

  include $role_class
}
