# @summary The name of a deployment: 2-30 lowercase letters, digits and hyphens, starting with a
#   letter, not ending with a hyphen (the same rule as the manifest's `slug` answers and the
#   Terraform design module's `name`).
type Castelet::Deployment = Pattern[/\A[a-z][a-z0-9-]{0,28}[a-z0-9]\z/]
