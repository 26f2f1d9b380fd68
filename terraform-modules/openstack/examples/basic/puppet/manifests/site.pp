# Minimal environment for the example: a real deployment copies Castelet's puppet/ here.
node default {
  notify { "castelet example: ${facts['castelet_role']}": }
}
